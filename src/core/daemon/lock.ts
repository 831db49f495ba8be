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
  // A holder that is dead means the lock is still referenced by a descriptor one of its children
  // inherited for an instant (a process being set up when the daemon was killed, before it closed
  // what it inherited): wait a little for it rather than refuse to start.
  const deadline = Date.now() + 3000;
  for (;;) {
    try {
      sys.flock(fd, LOCK_EX | LOCK_NB, path);
      break;
    } catch (err) {
      if (!(err instanceof SyscallError && err.errno === EWOULDBLOCK)) {
        closeSync(fd);
        throw err;
      }
      const holder = readFileSync(path, "utf8").trim();
      if (Date.now() < deadline && holder && !alive(Number(holder))) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
        continue;
      }
      closeSync(fd);
      throw new EngineError("unavailable", `another bunker daemon${holder ? ` (pid ${holder})` : ""} is already using data root ${dataRoot}: ${path} is locked`, { cause: err });
    }
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

/** Whether process `pid` exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
