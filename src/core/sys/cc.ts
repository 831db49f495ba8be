/**
 * C compiled at run time with `bun:ffi`'s TinyCC, for the few steps that must run where no
 * JavaScript may (a freshly cloned child of a multi-threaded process). The source is written to
 * a real file first (tcc cannot read the executable's embedded files) and compiled with
 * `-nostdlib`, because devices rarely have libc's development files; the code reaches libc only
 * through function pointers handed in at call time. Part of the `core/sys` FFI boundary.
 */
import { cc, FFIType, ptr, type Pointer } from "bun:ffi";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export { FFIType };

/** Compile `source` and return its symbols. */
export function compileC<S extends Record<string, { args: readonly FFIType[]; returns: FFIType }>>(name: string, source: string, symbols: S, dir = tmpdir()) {
  const work = mkdtempSync(join(dir, "bunker-cc-"));
  const file = join(work, `${name}.c`);
  writeFileSync(file, source, { mode: 0o600 });
  try {
    return cc({ source: file, symbols, flags: ["-nostdlib"] }).symbols;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The address of a buffer's first byte (valid while the buffer is alive and not resized). */
export function addressOf(buf: Uint8Array): number {
  return ptr(buf) as unknown as number;
}

export type { Pointer };
