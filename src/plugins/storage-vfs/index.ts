/**
 * The `vfs` storage driver: every snapshot is a full copy of its parent in a plain directory.
 * Slow and space-hungry, but it works on any filesystem and needs no kernel feature, so it is
 * the fallback everywhere. Copies go through the layer code (tree → tar entries → secure apply),
 * which keeps ownership, modes, times, xattrs, hardlinks and devices, without spawning `cp`.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { failpoint } from "../../core/failpoints.ts";
import { definePlugin } from "../../core/plugin/types.ts";
import type { DirectApply, Mount, StorageDriver } from "../../core/storage/driver.ts";
import { backingFsName, filesystemType } from "../../core/storage/fs-info.ts";
import { fullCopyDriverReads, SnapshotMetadata, type SnapshotRecord } from "../../core/storage/snapshot-metadata.ts";
import type { Sys } from "../../core/sys/sys.ts";

/** Create a vfs driver rooted at `root`. */
export function createVfsDriver(sys: Sys, root: string): StorageDriver & DirectApply {
  mkdirSync(join(root, "snapshots"), { recursive: true, mode: 0o700 });
  const meta = new SnapshotMetadata(root);
  meta.removeOrphans(join(root, "snapshots"));
  const dirOf = (s: SnapshotRecord) => join(root, "snapshots", String(s.id));
  const mountsOf = (s: SnapshotRecord): Mount[] => {
    return [{ type: "bind", source: dirOf(s), options: [s.kind === "view" ? "ro" : "rw", "rbind"] }];
  };
  const create = async (key: string, kind: "active" | "view", parent?: string) => {
    const rec = meta.create(key, kind, parent);
    const dir = dirOf(rec);
    failpoint(`snapshot directory ${key}`);
    mkdirSync(dir, { mode: 0o755 });
    try {
      if (parent) {
        // Loaded when first needed, so a daemon that never copies a snapshot does not carry them.
        const [{ applyLayer }, { archiveDirectory }, { writeTar }] = await Promise.all([import("../../core/layer/apply.ts"), import("../../core/layer/archive-dir.ts"), import("../../core/layer/tar-stream.ts")]);
        const from = dirOf(meta.get(parent));
        await applyLayer(sys, dir, writeTar(archiveDirectory(sys, from)), { whiteouts: "remove", sync: false });
      }
      meta.add(rec);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return mountsOf(rec);
  };
  return {
    name: "vfs",
    status: () => [["Backing Filesystem", backingFsName(filesystemType(root))]],
    prepare: (key, parent) => create(key, "active", parent),
    view: (key, parent) => create(key, "view", parent),
    mounts: async (key) => mountsOf(meta.mountable(key)),
    commit: async (name, key) => void meta.commit(name, key),
    async remove(key) {
      const rec = meta.remove(key);
      failpoint(`snapshot files ${key}`);
      rmSync(dirOf(rec), { recursive: true, force: true });
    },
    ...fullCopyDriverReads(meta, dirOf),
  };
}

/** Plugin registration. */
export const vfsPlugin = definePlugin({
  type: "storage.v1",
  id: "vfs",
  async init(ctx) {
    return createVfsDriver(ctx.sys, ctx.root);
  },
});
