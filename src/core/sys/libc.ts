/**
 * libc bindings through `bun:ffi`. This directory is the only place that imports `bun:ffi`.
 * The library is opened lazily so client commands that never make a raw syscall pay nothing.
 * Works on glibc (`libc.so.6`) and musl (`libc.musl-<arch>.so.1`) builds.
 */
import { dlopen, FFIType, read, type Pointer } from "bun:ffi";

const symbols = {
  flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
} as const;

type Libc = ReturnType<typeof dlopen<typeof symbols>>["symbols"];

let libc: Libc | undefined;

/** Candidate sonames, glibc first, then musl's loader-as-libc. */
export function libcCandidates(arch: string = process.arch): string[] {
  const muslArch = arch === "arm64" ? "aarch64" : "x86_64";
  return ["libc.so.6", `libc.musl-${muslArch}.so.1`, `/lib/ld-musl-${muslArch}.so.1`, "libc.so"];
}

/** Open libc on first use and return its symbols. */
export function getLibc(): Libc {
  if (libc) return libc;
  const errors: string[] = [];
  for (const name of libcCandidates()) {
    try {
      libc = dlopen(name, symbols).symbols;
      return libc;
    } catch (err) {
      errors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(`cannot open libc: ${errors.join("; ")}`);
}

/** The calling thread's errno after a failed libc call. */
export function errno(): number {
  const p = getLibc().__errno_location() as Pointer | null;
  return p ? read.i32(p, 0) : 0;
}
