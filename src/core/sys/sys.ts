/**
 * The `Sys` seam: every raw system call the engine makes goes through this interface, so code
 * above it can be unit-tested without root against `createFakeSys()` (see `fake-sys.ts`), and the
 * real implementation stays a thin, errno-checking wrapper around libc.
 */
import { SyscallError } from "../errors.ts";
import { errno, getLibc } from "./libc.ts";

/** flock(2) operations, under their C names. */
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
/** errno values the engine branches on. */
export const EWOULDBLOCK = 11;
export const EINTR = 4;

/** The system calls Bunker makes directly. Failures throw SyscallError{syscall, errno, path}. */
export interface Sys {
  /** flock(2) on an open descriptor; `path` is only used in the error. */
  flock(fd: number, operation: number, path?: string): void;
}

/** The real implementation on Linux, through `bun:ffi`. */
export function createLinuxSys(): Sys {
  return {
    flock(fd, operation, path) {
      for (;;) {
        if (getLibc().flock(fd, operation) === 0) return;
        const e = errno();
        if (e === EINTR) continue;
        throw new SyscallError("flock", e, path);
      }
    },
  };
}

let shared: Sys | undefined;
/** The process-wide real Sys; composition roots pass it down, tests pass a fake. */
export function linuxSys(): Sys {
  return (shared ??= createLinuxSys());
}
