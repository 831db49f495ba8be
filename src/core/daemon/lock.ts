/**
 * The data-root lock: one daemon per data root. flock(2) on `<data-root>/bunker.lock` is released
 * by the kernel when the process dies, so a crash never leaves a stale lock behind.
 */
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { EngineError, SyscallError } from "../errors.ts";
import { EWOULDBLOCK, LOCK_EX, LOCK_NB, LOCK_UN, type Sys } from "../sys/sys.ts";

/** A held lock; `release` unlocks and closes. */
export interface DataRootLock {
  readonly path: string;
  release(): void;
}

/** Take the lock or throw `unavailable` naming the holder's pid. */
export function lockDataRoot(sys: Sys, dataRoot: string): DataRootLock {
  const path = join(dataRoot, "bunker.lock");
  const fd = openSync(path, "a+", 0o600);
  try {
    sys.flock(fd, LOCK_EX | LOCK_NB, path);
  } catch (err) {
    closeSync(fd);
    if (err instanceof SyscallError && err.errno === EWOULDBLOCK) {
      const holder = readFileSync(path, "utf8").trim();
      throw new EngineError("unavailable", `another bunker daemon${holder ? ` (pid ${holder})` : ""} is already using data root ${dataRoot}: ${path} is locked`, { cause: err });
    }
    throw err;
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`, 0);
  return {
    path,
    release() {
      try {
        sys.flock(fd, LOCK_UN, path);
      } finally {
        closeSync(fd);
      }
    },
  };
}
