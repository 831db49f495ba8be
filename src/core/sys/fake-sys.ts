/**
 * A recording fake of the `Sys` seam for unit tests: it keeps every call, and lets a test script
 * the errno a call fails with.
 */
import { SyscallError } from "../errors.ts";
import type { Sys } from "./sys.ts";

/** One recorded call: the method name and its arguments. */
export interface SysCall {
  name: keyof Sys;
  args: unknown[];
}

/** A fake Sys plus its call log and a failure script. */
export interface FakeSys extends Sys {
  calls: SysCall[];
  /** Make the next call of `name` fail with `errno` (consumed once). */
  failNext(name: keyof Sys, errno: number): void;
}

/** Create a fake whose calls succeed unless scripted to fail. */
export function createFakeSys(): FakeSys {
  const calls: SysCall[] = [];
  const failures = new Map<keyof Sys, number[]>();
  const maybeFail = (name: keyof Sys, path?: string) => {
    const queue = failures.get(name);
    const e = queue?.shift();
    if (e !== undefined) throw new SyscallError(name, e, path);
  };
  return {
    calls,
    failNext(name, errno) {
      failures.set(name, [...(failures.get(name) ?? []), errno]);
    },
    flock(fd, operation, path) {
      calls.push({ name: "flock", args: [fd, operation, path] });
      maybeFail("flock", path);
    },
  };
}
