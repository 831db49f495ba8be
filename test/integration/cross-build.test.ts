/**
 * `npm run build:all` output for edge devices: the arm64 executable runs under qemu user-mode
 * emulation, and the musl executable is an x86-64 binary for musl's loader.
 *
 * The musl executable links musl's libstdc++ and libgcc (Alpine's), which Debian does not
 * package, so here it is checked by its ELF headers rather than run.
 */
import { skipUnless } from "../helpers/env.ts";
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, run } from "../helpers/daemon.ts";

const ARM64 = join(REPO, "dist/bunker-linux-arm64");
const MUSL = join(REPO, "dist/bunker-linux-x64-musl");
const QEMU = Bun.which("qemu-aarch64");
const ARM64_SYSROOT = "/usr/aarch64-linux-gnu";
/** In CI the executables must exist; elsewhere the test is skipped when build:all was not run. */
const REQUIRED = process.env.CI === "true";

/** e_machine and the PT_INTERP path of an ELF64 little-endian file. */
export function elfInfo(path: string): { machine: number; interpreter: string } {
  const b = readFileSync(path);
  if (b.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${path}: not ELF`);
  const machine = b.readUInt16LE(18);
  const phoff = Number(b.readBigUInt64LE(32));
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (b.readUInt32LE(ph) === 3 /* PT_INTERP */) {
      const off = Number(b.readBigUInt64LE(ph + 8));
      const size = Number(b.readBigUInt64LE(ph + 32));
      return { machine, interpreter: b.subarray(off, off + size - 1).toString() };
    }
  }
  return { machine, interpreter: "" };
}

describe.skipIf(skipUnless("cross-built executables", { "the arm64 executable (npm test builds it; required in CI)": REQUIRED || existsSync(ARM64) }))("cross-built executables", () => {
  test("the arm64 executable is aarch64 and prints its version under qemu-aarch64", async () => {
    expect(elfInfo(ARM64).machine).toBe(0xb7);
    if (!QEMU || !existsSync(ARM64_SYSROOT)) {
      if (REQUIRED) throw new Error("qemu-user and libc6-arm64-cross are required in CI");
      return;
    }
    const r = await run([QEMU, "-L", ARM64_SYSROOT, ARM64, "--version"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^Bunker version \d+\.\d+\.\d+, build \w+\n$/);
    const help = await run([QEMU, "-L", ARM64_SYSROOT, ARM64, "daemon", "--help"]);
    expect(help.stdout).toContain("--data-root");
  });

  test("the arm64 executable compiles the runtime's C stub with only libc's runtime files (no libc6-dev) and answers `runtime features`", async () => {
    if (!QEMU || !existsSync(ARM64_SYSROOT)) {
      if (REQUIRED) throw new Error("qemu-user and libc6-arm64-cross are required in CI");
      return;
    }
    // The sysroot is Debian's libc6-arm64-cross: shared libraries only, no libc.so linker script.
    expect(existsSync(`${ARM64_SYSROOT}/lib/libc.so`)).toBe(false);
    const r = await run([QEMU, "-L", ARM64_SYSROOT, ARM64, "runtime", "features"], {}, undefined);
    expect(r.stderr).toBe("");
    const f = JSON.parse(r.stdout);
    expect(f.annotations["org.bunker.runtime.stub"]).toMatch(/^compiled in [\d.]+ ms \(arm64\)$/);
    expect(f.linux.seccomp.archs).toEqual(["SCMP_ARCH_AARCH64"]);
  }, 60_000);

  test("the musl executable is x86-64 for musl's dynamic loader", () => {
    const info = elfInfo(MUSL);
    expect(info.machine).toBe(0x3e);
    expect(info.interpreter).toBe("/lib/ld-musl-x86_64.so.1");
    expect(elfInfo(join(REPO, "dist/bunker")).interpreter).toMatch(/ld-linux-x86-64\.so\.2$/);
  });
});
