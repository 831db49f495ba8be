/**
 * Bench setup: a Debian minbase root filesystem (about 200 MB, 6,800 entries) made with
 * debootstrap into bench/.cache/minbase, the corpus of bench/layer-extract.ts. Needs root, the
 * debootstrap package and a Debian mirror (DEBIAN_MIRROR, default deb.debian.org). Run once:
 *   bun bench/setup-minbase.ts
 */
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { resolve } from "node:path";

const target = resolve(import.meta.dir, ".cache/minbase");
if (existsSync(`${target}/etc`)) {
  console.log(`${target} exists`);
  process.exit(0);
}
if (!Bun.which("debootstrap")) throw new Error("debootstrap is not installed: apt-get install debootstrap");
const suite = process.env.DEBIAN_SUITE ?? "bookworm";
const mirror = process.env.DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
const partial = `${target}.partial`;
rmSync(partial, { recursive: true, force: true });
mkdirSync(resolve(import.meta.dir, ".cache"), { recursive: true });
const r = Bun.spawnSync(["debootstrap", "--variant=minbase", suite, partial, mirror], { stdout: "inherit", stderr: "inherit" });
if (r.exitCode !== 0) throw new Error(`debootstrap failed with ${r.exitCode}`);
renameSync(partial, target); // only a complete rootfs is ever used
console.log(`made ${target}`);
