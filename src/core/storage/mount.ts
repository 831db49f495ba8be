/**
 * Perform and undo the mounts a storage driver returns. Overlay option strings longer than a page
 * (deep layer chains) are shortened by opening each lower directory and naming it
 * `/proc/self/fd/<n>` for the duration of the mount call, so 128 layers fit one mount.
 */
import { readFileSync } from "node:fs";
import { EngineError } from "../errors.ts";
import { AT_FDCWD, MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT, O_CLOEXEC, O_DIRECTORY, O_PATH, type Sys } from "../sys/sys.ts";
import type { Mount } from "./driver.ts";

/** The kernel's limit on mount data: one page. */
const MAX_MOUNT_DATA = 4095;

const FLAG_OPTIONS: Record<string, number> = {
  ro: MS_RDONLY,
  rbind: MS_BIND | MS_REC,
  bind: MS_BIND,
  nosuid: MS_NOSUID,
  nodev: MS_NODEV,
  noexec: MS_NOEXEC,
};

/** Split options into mount flags and the data string. */
export function mountFlags(options: string[]): { flags: number; data: string[] } {
  let flags = 0;
  const data: string[] = [];
  for (const o of options) {
    if (o in FLAG_OPTIONS) flags |= FLAG_OPTIONS[o]!;
    else if (o !== "rw") data.push(o);
  }
  return { flags, data };
}

/** True when something is mounted on `path` (this process's mount table). */
export function isMountPoint(path: string): boolean {
  try {
    return readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .some((l) => l.split(" ")[4] === path);
  } catch {
    return false;
  }
}

/** Mount `mounts` on `target` in order. */
export function mountAll(sys: Sys, mounts: Mount[], target: string): void {
  for (const m of mounts) {
    const { flags, data } = mountFlags(m.options);
    if (m.type === "bind" || flags & MS_BIND) {
      const bindFlags = flags & (MS_BIND | MS_REC) || MS_BIND;
      sys.mount(m.source, target, "", bindFlags, "");
      // A bind mount ignores MS_RDONLY until remounted.
      if (flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)) sys.mount("", target, "", MS_REMOUNT | MS_BIND | (flags & ~(MS_BIND | MS_REC)), "");
      continue;
    }
    let text = data.join(",");
    const fds: number[] = [];
    try {
      if (text.length > MAX_MOUNT_DATA) text = shortenLowerdirs(sys, data, fds);
      if (text.length > MAX_MOUNT_DATA) throw new EngineError("resource-exhausted", `mount options for ${target} exceed ${MAX_MOUNT_DATA} bytes even shortened`);
      sys.mount(m.source, target, m.type, flags, text);
    } finally {
      for (const fd of fds) sys.close(fd);
    }
  }
}

function shortenLowerdirs(sys: Sys, data: string[], fds: number[]): string {
  return data
    .map((o) => {
      if (!o.startsWith("lowerdir=")) return o;
      const dirs = o
        .slice("lowerdir=".length)
        .split(":")
        .map((d) => {
          const fd = sys.openat2(AT_FDCWD, d, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0);
          fds.push(fd);
          return `/proc/self/fd/${fd}`;
        });
      return `lowerdir=${dirs.join(":")}`;
    })
    .join(",");
}

/** Unmount `target`; a busy mount is detached lazily rather than left behind. */
export function unmount(sys: Sys, target: string): void {
  try {
    sys.umount2(target, 0);
  } catch (err) {
    if ((err as { errnoName?: string }).errnoName === "EBUSY") sys.umount2(target, MNT_DETACH);
    else throw err;
  }
}
