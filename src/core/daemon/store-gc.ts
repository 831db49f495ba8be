/**
 * The start-up sweep of what no record owns, run while the daemon holds the data-root lock (so
 * nothing else can be using it): what a daemon killed mid-operation left. Staging directories
 * under `<data-root>/tmp` (a load's, a build's context; anything mounted there unmounted first),
 * snapshots that are neither a layer some image names nor a container's writable layer (an
 * interrupted layer extraction, a commit's or diff's view, a layer committed by a load or commit
 * whose image record was never written), container directories whose record was never written,
 * and blobs no image references. Records are the truth; the disk is brought in line with them.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { ContentStore } from "../content/content-store.ts";
import { messageOf } from "../errors.ts";
import type { ImageStore } from "../image/image-store.ts";
import type { Logger } from "../log.ts";
import type { StorageDriver } from "../storage/driver.ts";
import { isMountPoint, unmount } from "../storage/mount.ts";
import type { Sys } from "../sys/sys.ts";

/** What the sweep removed, by kind (for the log and the tests). */
export interface Swept {
  staging: string[];
  snapshots: string[];
  containerDirs: string[];
  blobs: number;
}

/** Unmount every mount point at or below `dir` (deepest first), then remove the tree. */
export function removeTree(sys: Sys, dir: string): void {
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4]?.replace(/\\040/g, " "))
    .filter((m): m is string => !!m && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) unmount(sys, m);
  rmSync(dir, { recursive: true, force: true });
}

/** The container records' writable-layer keys, read from `<data-root>/containers/*\/config.v2.json`; directories without a record are removed. */
function containerLayers(sys: Sys, dataRoot: string, swept: Swept): Set<string> {
  const keys = new Set<string>();
  const dir = join(dataRoot, "containers");
  if (!existsSync(dir)) return keys;
  for (const id of readdirSync(dir)) {
    const file = join(dir, id, "config.v2.json");
    if (!existsSync(file)) {
      // A create killed before its record was written: nothing names this directory.
      if (!isMountPoint(join(dir, id, "rootfs"))) {
        removeTree(sys, join(dir, id));
        swept.containerDirs.push(id);
      }
      continue;
    }
    try {
      keys.add((JSON.parse(readFileSync(file, "utf8")) as { RwLayer: string }).RwLayer);
    } catch {
      keys.add(id); // an unreadable record still owns what it may name
    }
  }
  return keys;
}

/**
 * Sweep the data root. `images` and `content` are the stores as the records on disk have them;
 * `driver` the selected storage driver.
 */
export async function sweepDataRoot(deps: { sys: Sys; dataRoot: string; driver: StorageDriver; images: ImageStore; content: ContentStore; log: Logger }): Promise<Swept> {
  const { sys, dataRoot, driver, log } = deps;
  const swept: Swept = { staging: [], snapshots: [], containerDirs: [], blobs: 0 };
  const tmp = join(dataRoot, "tmp");
  if (existsSync(tmp))
    for (const name of readdirSync(tmp)) {
      removeTree(sys, join(tmp, name));
      swept.staging.push(name);
    }
  const owned = containerLayers(sys, dataRoot, swept);
  const layers = new Set<string>(deps.images.list().flatMap((i) => i.chainIds));
  // Leaves first: a snapshot with children cannot go until they have.
  for (let changed = true; changed; ) {
    changed = false;
    const all = driver.list();
    const parents = new Set(all.map((s) => s.parent).filter(Boolean));
    for (const s of all) {
      if (parents.has(s.key) || (s.kind === "committed" ? layers.has(s.key) : owned.has(s.key))) continue;
      try {
        await driver.remove(s.key);
        swept.snapshots.push(s.key);
        changed = true;
      } catch (err) {
        log.warn("unowned snapshot not removed", { snapshot: s.key, error: messageOf(err) });
      }
    }
  }
  swept.blobs = deps.content.sweep(deps.images.liveBlobs()).length;
  if (swept.staging.length || swept.snapshots.length || swept.containerDirs.length || swept.blobs)
    log.info("removed what an interrupted operation left", { staging: swept.staging.length, snapshots: swept.snapshots.length, containers: swept.containerDirs.length, blobs: swept.blobs });
  return swept;
}
