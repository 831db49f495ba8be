/**
 * Turn a directory tree into tar entries (for vfs copies, `export`, and full-layer diffs):
 * depth-first in name order (deterministic, so the same tree always gives the same diff ID),
 * hardlinks detected by inode, devices with their numbers, xattrs read without following links
 * (overlayfs' own `trusted.overlay.*` attributes are never copied into a layer).
 */
import { lstatSync, readdirSync, readlinkSync, type Stats } from "node:fs";
import { join } from "node:path";
import type { Sys } from "../sys/sys.ts";
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

/** Entries for everything under `dir` (not `dir` itself), names relative to it. */
export async function* archiveDirectory(sys: Sys, dir: string): AsyncGenerator<TarInput> {
  const links: HardlinkMap = new Map();
  async function* walk(rel: string): AsyncGenerator<TarInput> {
    for (const name of readdirSync(rel ? join(dir, rel) : dir).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const full = join(dir, path);
      const st = lstatSync(full);
      const entry = entryFor(sys, full, path, st, links);
      if (!entry) continue;
      yield entry;
      if (st.isDirectory()) yield* walk(path);
    }
  }
  yield* walk("");
}
