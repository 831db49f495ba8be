/**
 * Turn a directory tree into tar entries (for vfs copies, `export`, and full-layer diffs):
 * depth-first in name order (deterministic, so the same tree always gives the same diff ID),
 * hardlinks detected by inode, devices with their numbers, xattrs read without following links
 * (overlayfs' own `trusted.overlay.*` attributes are never copied into a layer).
 */
import { closeSync, lstatSync, readdirSync, readlinkSync, readSync, type Stats } from "node:fs";
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW, O_RDONLY, RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS, type Sys } from "../sys/sys.ts";
import type { EntryType } from "./tar-header.ts";
import type { TarInput } from "./tar-stream.ts";

/** Glibc's major()/minor() for a st_rdev value. */
export function splitDev(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  return {
    major: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)),
    minor: Number((d & 0xffn) | ((d >> 12n) & ~0xffn)),
  };
}

/** Inode (`dev:ino`) → first archived path, for hardlink detection across one archive. */
export type HardlinkMap = Map<string, string>;

/**
 * The tar entry for the file at `full`, archived under the name `path` (relative, no leading
 * slash). Returns undefined for sockets, which do not belong in layers.
 */
export function entryFor(sys: Sys, full: string, path: string, st: Stats, links: HardlinkMap): TarInput | undefined {
  let type: EntryType;
  let linkname = "";
  let dev = { major: 0, minor: 0 };
  if (st.isDirectory()) type = "directory";
  else if (st.isSymbolicLink()) {
    type = "symlink";
    linkname = readlinkSync(full);
  } else if (st.isFile()) {
    const id = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? links.get(id) : undefined;
    if (first !== undefined) {
      type = "hardlink";
      linkname = first;
    } else {
      type = "file";
      if (st.nlink > 1) links.set(id, path);
    }
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    type = st.isCharacterDevice() ? "chardev" : "blockdev";
    dev = splitDev(st.rdev);
  } else if (st.isFIFO()) type = "fifo";
  else return undefined;
  const xattrs = Object.fromEntries(Object.entries(sys.lgetxattrs(full)).filter(([k]) => !k.startsWith("trusted.overlay.")));
  return {
    header: {
      name: type === "directory" ? `${path}/` : path,
      type,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      size: type === "file" ? st.size : 0,
      mtime: st.mtimeMs / 1000,
      linkname,
      devmajor: dev.major,
      devminor: dev.minor,
      xattrs,
    },
    ...(type === "file" ? { body: Bun.file(full).stream() as unknown as AsyncIterable<Uint8Array> } : {}),
  };
}

/** A file's body read through a descriptor opened beneath `dirFd` without following a link (opened when the tar writer gets to it, closed after). */
export async function* bodyBeneath(sys: Sys, dirFd: number, name: string, size: number): AsyncGenerator<Uint8Array> {
  const fd = sys.openat2(dirFd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
  try {
    let left = size;
    while (left > 0) {
      const buf = new Uint8Array(Math.min(left, 1 << 17));
      const n = readSync(fd, buf);
      if (n === 0) break; // shrunk meanwhile: the writer pads the member to its declared size
      left -= n;
      yield buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

/** Open directory `name` beneath `dirFd` (or the path `name` itself): a symlink there is refused, never followed. */
function openDir(sys: Sys, dirFd: number, name: string): number {
  return sys.openat2(dirFd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, dirFd === AT_FDCWD ? 0 : RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
}

/**
 * Entries for everything under `dir` (not `dir` itself), names relative to it. The walk goes by
 * descriptor: each directory is opened beneath its parent's descriptor with no symlink followed
 * (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), entries are stat'ed through that descriptor,
 * and file bodies are read from descriptors opened the same way. A directory swapped for a
 * symlink while the walk runs (by a container sharing a volume) makes the walk fail; it can
 * never lead it out of the tree. The last component of `dir` itself is not followed either.
 */
export async function* archiveDirectory(sys: Sys, dir: string): AsyncGenerator<TarInput> {
  const links: HardlinkMap = new Map();
  async function* walk(dirFd: number, rel: string): AsyncGenerator<TarInput> {
    const here = `/proc/self/fd/${dirFd}`;
    for (const name of readdirSync(here).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const full = `${here}/${name}`; // the directory by its descriptor, the last component never followed (lstat, readlink, lgetxattr)
      const st = lstatSync(full);
      const entry = entryFor(sys, full, path, st, links);
      if (!entry) continue;
      yield entry.body ? { ...entry, body: bodyBeneath(sys, dirFd, name, entry.header.size) } : entry;
      if (st.isDirectory()) {
        const child = openDir(sys, dirFd, name);
        try {
          yield* walk(child, path);
        } finally {
          closeSync(child);
        }
      }
    }
  }
  // A descriptor's own path (/proc/self/fd/N, a directory the caller resolved) is its magic link, followed by design.
  const top = /^\/proc\/self\/fd\/\d+$/.test(dir) ? sys.openat2(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0) : openDir(sys, AT_FDCWD, dir);
  try {
    yield* walk(top, "");
  } finally {
    closeSync(top);
  }
}
