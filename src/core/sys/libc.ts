/**
 * libc bindings through `bun:ffi`. This directory is the only place that imports `bun:ffi`.
 * The library is opened lazily so client commands that never make a raw syscall pay nothing.
 * Works on glibc (`libc.so.6`) and musl (`libc.musl-<arch>.so.1`) builds.
 */
import { dlopen, FFIType, read, type Pointer } from "bun:ffi";

const { i32, u32, i64, u64, ptr } = FFIType;
/**
 * Two groups, each opened on first use: bun:ffi compiles a trampoline per symbol at dlopen time,
 * so a daemon that only takes its lock does not pay for the file-system calls (about 1.5 MB RSS).
 */
const coreSymbols = {
  flock: { args: [i32, i32], returns: i32 },
  __errno_location: { args: [], returns: ptr },
} as const;
const symbols = {
  /** Raw syscall for calls glibc 2.36 has no wrapper for (openat2). Integer arguments only. */
  syscall: { args: [i64, i64, i64, i64, i64, i64, i64], returns: i64 },
  close: { args: [i32], returns: i32 },
  mkdirat: { args: [i32, ptr, u32], returns: i32 },
  mknodat: { args: [i32, ptr, u32, u64], returns: i32 },
  symlinkat: { args: [ptr, i32, ptr], returns: i32 },
  linkat: { args: [i32, ptr, i32, ptr, i32], returns: i32 },
  unlinkat: { args: [i32, ptr, i32], returns: i32 },
  fchownat: { args: [i32, ptr, u32, u32, i32], returns: i32 },
  fchmodat: { args: [i32, ptr, u32, i32], returns: i32 },
  utimensat: { args: [i32, ptr, ptr, i32], returns: i32 },
  fsetxattr: { args: [i32, ptr, ptr, u64, i32], returns: i32 },
  mount: { args: [ptr, ptr, ptr, u64, ptr], returns: i32 },
  umount2: { args: [ptr, i32], returns: i32 },
  syncfs: { args: [i32], returns: i32 },
  fchown: { args: [i32, u32, u32], returns: i32 },
  fchmod: { args: [i32, u32], returns: i32 },
  futimens: { args: [i32, ptr], returns: i32 },
  ioctl: { args: [i32, u64, ptr], returns: i32 },
  llistxattr: { args: [ptr, ptr, u64], returns: i64 },
  lgetxattr: { args: [ptr, ptr, ptr, u64], returns: i64 },
} as const;

type Libc = ReturnType<typeof dlopen<typeof symbols>>["symbols"];
type LibcCore = ReturnType<typeof dlopen<typeof coreSymbols>>["symbols"];

let libc: Libc | undefined;
let core: LibcCore | undefined;

/** Candidate sonames, glibc first, then musl's loader-as-libc. */
export function libcCandidates(arch: string = process.arch): string[] {
  const muslArch = arch === "arm64" ? "aarch64" : "x86_64";
  return ["libc.so.6", `libc.musl-${muslArch}.so.1`, `/lib/ld-musl-${muslArch}.so.1`, "libc.so"];
}

function open<S extends Record<string, { args: readonly FFIType[]; returns: FFIType }>>(syms: S) {
  const errors: string[] = [];
  for (const name of libcCandidates()) {
    try {
      return dlopen(name, syms).symbols;
    } catch (err) {
      errors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(`cannot open libc: ${errors.join("; ")}`);
}

/** flock and errno. */
export function getLibcCore(): LibcCore {
  return (core ??= open(coreSymbols));
}

/** The file-system, mount and ioctl calls. */
export function getLibc(): Libc {
  return (libc ??= open(symbols));
}

/** The calling thread's errno after a failed libc call. */
export function errno(): number {
  const p = getLibcCore().__errno_location() as Pointer | null;
  return p ? read.i32(p, 0) : 0;
}
