/**
 * The platforms this host can build for: its own, and each one the kernel can run through a
 * registered binfmt_misc handler (Debian's qemu-user-static registers `qemu-aarch64` and more).
 */
import { existsSync, readFileSync } from "node:fs";

const NATIVE: Record<string, string> = { x64: "linux/amd64", arm64: "linux/arm64", arm: "linux/arm/v7", ppc64: "linux/ppc64le", s390x: "linux/s390x", riscv64: "linux/riscv64" };

/** binfmt_misc handler names (Debian's and tonistiigi/binfmt's) → the platform they run. */
const HANDLERS: [string, string][] = [
  ["qemu-aarch64", "linux/arm64"],
  ["qemu-x86_64", "linux/amd64"],
  ["qemu-arm", "linux/arm/v7"],
  ["qemu-riscv64", "linux/riscv64"],
  ["qemu-ppc64le", "linux/ppc64le"],
  ["qemu-s390x", "linux/s390x"],
];

/** The native platform, then the emulated ones with an enabled handler. */
export function hostPlatforms(binfmtDir = "/proc/sys/fs/binfmt_misc"): string[] {
  const out = [NATIVE[process.arch] ?? `linux/${process.arch}`];
  for (const [name, platform] of HANDLERS) {
    const f = `${binfmtDir}/${name}`;
    if (!out.includes(platform) && existsSync(f) && readFileSync(f, "utf8").startsWith("enabled")) out.push(platform);
  }
  return out;
}
