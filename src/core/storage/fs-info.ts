/**
 * Facts about the filesystem under a driver's root, for selection and `info`: its type (from
 * /proc/self/mountinfo, longest matching mount point) in Docker's naming, and disk usage of a
 * directory tree.
 */
import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Usage } from "./driver.ts";

const DOCKER_NAMES: Record<string, string> = { ext2: "extfs", ext3: "extfs", ext4: "extfs" };

/** Filesystem type of the mount holding `path` (`ext4`, `tmpfs`, `btrfs`, `overlay`…). */
export function filesystemType(path: string, mountinfo = readFileSync("/proc/self/mountinfo", "utf8")): string {
  let best = "";
  let type = "unknown";
  for (const line of mountinfo.split("\n")) {
    const [pre, post] = line.split(" - ");
    if (!pre || !post) continue;
    const mountPoint = pre.split(" ")[4]!.replace(/\\040/g, " ");
    const inside = path === mountPoint || path.startsWith(mountPoint.endsWith("/") ? mountPoint : mountPoint + "/");
    if (inside && mountPoint.length >= best.length) {
      best = mountPoint;
      type = post.split(" ")[0]!;
    }
  }
  return type;
}

/** Docker's name for a backing filesystem (`extfs` for ext2/3/4). */
export function backingFsName(type: string): string {
  return DOCKER_NAMES[type] ?? type;
}

/** Bytes and inodes under `dir` (not following symlinks; hardlinked files counted once). */
export function diskUsage(dir: string): Usage {
  const seen = new Set<string>();
  const usage: Usage = { size: 0, inodes: 0 };
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p);
      const id = `${st.dev}:${st.ino}`;
      if (seen.has(id)) continue;
      seen.add(id);
      usage.inodes++;
      if (st.isFile()) usage.size += st.size;
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return usage;
}
