/** OCI bundles for runtime tests: a busybox rootfs (from Debian's busybox-static) and a config.json. */
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { applyLayer } from "../../src/core/layer/apply.ts";
import { linuxSys } from "../../src/core/sys/sys.ts";
import { defaultSpec } from "../../src/plugins/runtime-linux/default-spec.ts";
import type { Spec } from "../../src/core/runtime/oci.ts";
import { busyboxLayer } from "./images.ts";

/** The busybox rootfs, unpacked into `dir/rootfs`. */
export async function busyboxRootfs(dir: string): Promise<string> {
  const rootfs = join(dir, "rootfs");
  mkdirSync(rootfs, { recursive: true });
  await applyLayer(linuxSys(), rootfs, [await busyboxLayer()], { whiteouts: "remove", sync: false });
  for (const d of ["proc", "sys", "dev", "etc", "tmp"]) mkdirSync(join(rootfs, d), { recursive: true });
  // Every applet, so tests can use tr, seq, dd and friends.
  const list = Bun.spawnSync([join(rootfs, "bin/busybox"), "--list"]).stdout.toString().split("\n").filter(Boolean);
  for (const a of list) {
    try {
      symlinkSync("busybox", join(rootfs, "bin", a));
    } catch {
      /* already there */
    }
  }
  return rootfs;
}

/** runc's default spec for a non-terminal `args` run, edited by `edit`. */
export function testSpec(args: string[], edit: (s: Spec) => void = () => {}): Spec {
  const s = defaultSpec();
  s.process!.terminal = false;
  s.process!.args = args;
  s.root!.readonly = false;
  s.mounts = s.mounts!.filter((m) => m.type !== "cgroup");
  edit(s);
  return s;
}

/** A bundle directory sharing `rootfs` (absolute path), with `spec` as its config.json. */
export function writeBundle(dir: string, rootfs: string, spec: Spec): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...spec, root: { ...spec.root!, path: rootfs } }));
  return dir;
}
