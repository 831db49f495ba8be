/**
 * The `overlay` storage driver: each snapshot is a directory; an active snapshot is an overlayfs
 * mount of its parents (lower, nearest first) with its own directory as the upper layer. Layers
 * are applied straight into that directory with overlayfs-native whiteouts (0/0 character
 * devices, `trusted.overlay.opaque`). Deep chains fit one mount call (see core/storage/mount.ts).
 * Active snapshots are mounted with `redirect_dir=off,metacopy=off`, so the upper directory always
 * holds whole copies of what changed and a layer diff can be read from it directly (NativeDiff).
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { EngineError, NotSupportedError } from "../../core/errors.ts";
import { definePlugin } from "../../core/plugin/types.ts";
import type { DirectApply, Mount, NativeDiff, StorageDriver, Usage } from "../../core/storage/driver.ts";
import { backingFsName, diskUsage, filesystemType } from "../../core/storage/fs-info.ts";
import { SnapshotMetadata, type SnapshotRecord } from "../../core/storage/snapshot-metadata.ts";

/** Why overlay cannot run under `root`, or undefined when it can. */
export function overlayUnsupportedReason(root: string): string | undefined {
  const fs = existsSync("/proc/filesystems") ? readFileSync("/proc/filesystems", "utf8") : "";
  if (!/\toverlay\n/.test(fs)) return "the kernel has no overlay filesystem (modprobe overlay)";
  const backing = filesystemType(root);
  if (backing === "overlay") return `the data root is itself on overlayfs, which cannot be an upper layer`;
  return undefined;
}

/** Create an overlay driver rooted at `root`. */
export function createOverlayDriver(root: string): StorageDriver & DirectApply & NativeDiff {
  mkdirSync(join(root, "snapshots"), { recursive: true, mode: 0o700 });
  const meta = new SnapshotMetadata(root);
  meta.removeOrphans(join(root, "snapshots"));
  const dirOf = (s: SnapshotRecord) => join(root, "snapshots", String(s.id));
  const fsOf = (s: SnapshotRecord) => join(dirOf(s), "fs");

  const mountsOf = (s: SnapshotRecord): Mount[] => {
    const lowers = meta.ancestors(s.key).map(fsOf);
    if (s.kind === "active") {
      if (lowers.length === 0) return [{ type: "bind", source: fsOf(s), options: ["rw", "rbind"] }];
      return [{ type: "overlay", source: "overlay", options: ["index=off", "redirect_dir=off", "metacopy=off", `lowerdir=${lowers.join(":")}`, `upperdir=${fsOf(s)}`, `workdir=${join(dirOf(s), "work")}`] }];
    }
    if (lowers.length === 0) return [{ type: "bind", source: fsOf(s), options: ["ro", "rbind"] }];
    if (lowers.length === 1) return [{ type: "bind", source: lowers[0]!, options: ["ro", "rbind"] }];
    return [{ type: "overlay", source: "overlay", options: ["ro", "index=off", `lowerdir=${lowers.join(":")}`] }];
  };

  const create = async (key: string, kind: "active" | "view", parent?: string) => {
    const rec = meta.create(key, kind, parent);
    try {
      mkdirSync(fsOf(rec), { recursive: true, mode: 0o755 });
      if (kind === "active") mkdirSync(join(dirOf(rec), "work"), { mode: 0o700 });
      meta.add(rec);
    } catch (err) {
      rmSync(dirOf(rec), { recursive: true, force: true });
      throw err;
    }
    return mountsOf(rec);
  };

  return {
    name: "overlay",
    status: () => [
      ["Backing Filesystem", backingFsName(filesystemType(root))],
      ["Supports d_type", "true"],
    ],
    prepare: (key, parent) => create(key, "active", parent),
    view: (key, parent) => create(key, "view", parent),
    mounts: async (key) => mountsOf(meta.mountable(key)),
    async commit(name, key) {
      const rec = meta.commit(name, key);
      rmSync(join(dirOf(rec), "work"), { recursive: true, force: true });
    },
    async remove(key) {
      const rec = meta.remove(key);
      rmSync(dirOf(rec), { recursive: true, force: true });
    },
    stat: (key) => meta.info(key),
    list: () => meta.infos(),
    usage: async (key): Promise<Usage> => diskUsage(fsOf(meta.get(key))),
    applyTarget(key) {
      const rec = meta.active(key);
      // A bottom layer has nothing beneath it to hide: whiteouts there are plain deletions.
      return { path: fsOf(rec), whiteouts: rec.parent ? "overlay" : "remove" };
    },
    upperDir(key) {
      const rec = meta.get(key);
      if (rec.kind === "view") throw new EngineError("failed-precondition", `snapshot ${key} is a view: it has no changes of its own`);
      return fsOf(rec);
    },
  };
}

/** Plugin registration: skipped with the reason where overlayfs cannot work. */
export const overlayPlugin = definePlugin({
  type: "storage.v1",
  id: "overlay",
  async init(ctx) {
    const reason = overlayUnsupportedReason(ctx.root);
    if (reason) throw new NotSupportedError(reason);
    return createOverlayDriver(ctx.root);
  },
});
