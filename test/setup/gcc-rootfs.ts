/**
 * Test setup: a Debian root filesystem with gcc (`debootstrap --variant=minbase
 * --include=gcc,libc6-dev`), the base of the multi-stage build test. Made once on the host
 * (the build itself never reaches the network) and kept at BUNKER_TEST_GCC_ROOTFS (default
 * /var/cache/bunker-test/gcc-rootfs). Needs root, debootstrap and a Debian mirror (DEBIAN_MIRROR).
 * A failure only means the test that needs it is skipped.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname } from "node:path";

const target = process.env.BUNKER_TEST_GCC_ROOTFS ?? "/var/cache/bunker-test/gcc-rootfs";
if (existsSync(`${target}/usr/bin/gcc`)) {
  console.log(`${target} exists`);
  process.exit(0);
}
if (!Bun.which("debootstrap")) {
  console.log("debootstrap is not installed: the gcc build test will be skipped");
  process.exit(0);
}
const partial = `${target}.partial`;
rmSync(partial, { recursive: true, force: true });
mkdirSync(dirname(target), { recursive: true });
const mirror = process.env.DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
const r = Bun.spawnSync(["debootstrap", "--variant=minbase", "--include=gcc,libc6-dev", process.env.DEBIAN_SUITE ?? "bookworm", partial, mirror], { stdout: "ignore", stderr: "inherit" });
if (r.exitCode !== 0) {
  console.log(`debootstrap failed (${r.exitCode}): the gcc build test will be skipped`);
  rmSync(partial, { recursive: true, force: true });
  process.exit(0);
}
renameSync(partial, target);
console.log(`made ${target}`);
