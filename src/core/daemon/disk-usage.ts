/** The containers', volumes' and cache mounts' parts of `GET /system/df`. */
import { lstatSync, readdirSync } from "node:fs";
import type { CacheMounts } from "../build/cache-mounts.ts";
import type { ContainerService } from "../container/container-service.ts";
import type { ContainerRecord } from "../container/container-store.ts";
import type { VolumeService } from "../volume/volume-service.ts";

/** What `system df` lists beside the images. */
export async function diskUsageParts(containers: ContainerService | undefined, volumes: VolumeService, cacheMounts: CacheMounts): Promise<{ Containers: unknown[]; Volumes: unknown[]; BuildCache: unknown[] }> {
  const [{ summaryOf }, { volumeView }] = await Promise.all([import("../api/views/container.ts"), import("../api/routes/volumes.ts")]);
  const sized = async (c: ContainerRecord) => ({ ...summaryOf(c), ...(await containers!.sizes(c.Id).catch(() => ({ SizeRw: 0, SizeRootFs: 0 }))) });
  return {
    Containers: containers ? await Promise.all(containers.store.all().map(sized)) : [],
    // A local volume's size is what its files hold (-1 for plugin volumes, as dockerd shows).
    Volumes: volumes.list().map((v) => ({ ...volumeView(v), UsageData: { Size: v.Driver === "local" ? treeSize(v.Mountpoint) : -1, RefCount: volumes.inUse(v.Name).length } })),
    // RUN --mount=type=cache directories, as BuildKit lists them (type exec.cachemount).
    BuildCache: cacheMounts.list().map((r) => ({
      ID: r.shortId,
      Type: "exec.cachemount",
      Size: r.size,
      CreatedAt: new Date(r.createdAt).toISOString(),
      LastUsedAt: new Date(r.lastUsedAt).toISOString(),
      InUse: r.inUse,
      Shared: false,
      Description: `cached mount ${r.id}`,
      UsageCount: 1,
    })),
  };
}

/** Bytes of the regular files under `dir` (each inode once), without following links. */
function treeSize(dir: string): number {
  const seen = new Set<number>();
  let total = 0;
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = `${d}/${n}`;
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && !seen.has(st.ino)) {
        seen.add(st.ino);
        total += st.size;
      }
    }
  };
  walk(dir);
  return total;
}
