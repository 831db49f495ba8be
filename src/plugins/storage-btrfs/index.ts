/**
 * The `btrfs` storage driver: every snapshot is a btrfs subvolume; a child is a copy-on-write
 * snapshot of its parent, made instantly by the kernel through ioctls (not the `btrfs` program).
 * Committed layers are made read-only. Runs only where the driver's root is on btrfs.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { NotSupportedError } from "../../core/errors.ts";
import { definePlugin } from "../../core/plugin/types.ts";
import type { DirectApply, Mount, StorageDriver } from "../../core/storage/driver.ts";
import { filesystemType } from "../../core/storage/fs-info.ts";
import { fullCopyDriverReads, SnapshotMetadata, type SnapshotRecord } from "../../core/storage/snapshot-metadata.ts";
import type { Sys } from "../../core/sys/sys.ts";
import { subvolumeCreate, subvolumeDestroy, subvolumeSetReadonly, subvolumeSnapshot } from "./btrfs-ioctl.ts";

/** Create a btrfs driver rooted at `root` (which must be on btrfs). */
export function createBtrfsDriver(sys: Sys, root: string): StorageDriver & DirectApply {
  const snapshots = join(root, "snapshots");
  mkdirSync(snapshots, { recursive: true, mode: 0o700 });
  const meta = new SnapshotMetadata(root);
  const dirOf = (s: SnapshotRecord) => join(snapshots, String(s.id));
  const mountsOf = (s: SnapshotRecord): Mount[] => {
    return [{ type: "bind", source: dirOf(s), options: [s.kind === "view" ? "ro" : "rw", "rbind"] }];
  };
  const create = async (key: string, kind: "active" | "view", parent?: string) => {
    const rec = meta.create(key, kind, parent);
    if (parent) subvolumeSnapshot(sys, dirOf(meta.get(parent)), snapshots, String(rec.id), kind === "view");
    else subvolumeCreate(sys, snapshots, String(rec.id));
    try {
      meta.add(rec);
    } catch (err) {
      subvolumeDestroy(sys, snapshots, String(rec.id));
      throw err;
    }
    return mountsOf(rec);
  };
  return {
    name: "btrfs",
    status: () => [["Btrfs", ""]],
    prepare: (key, parent) => create(key, "active", parent),
    view: (key, parent) => create(key, "view", parent),
    mounts: async (key) => mountsOf(meta.mountable(key)),
    async commit(name, key) {
      subvolumeSetReadonly(sys, dirOf(meta.get(key)));
      meta.commit(name, key);
    },
    async remove(key) {
      const rec = meta.remove(key); // refuses while children exist
      try {
        subvolumeDestroy(sys, snapshots, String(rec.id));
      } catch (err) {
        meta.add(rec); // keep the record of a subvolume that is still there
        throw err;
      }
    },
    ...fullCopyDriverReads(meta, dirOf),
  };
}

/** Plugin registration: skipped with the reason unless the data root is on btrfs. */
export const btrfsPlugin = definePlugin({
  type: "storage.v1",
  id: "btrfs",
  async init(ctx) {
    const fs = filesystemType(ctx.root);
    if (fs !== "btrfs") throw new NotSupportedError(`${ctx.root} is on ${fs}, not btrfs`);
    return createBtrfsDriver(ctx.sys, ctx.root);
  },
});
