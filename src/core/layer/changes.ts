/**
 * What changed in a writable layer, and that change as a layer tar (for commit, build and push).
 *
 * Two sources, one output format:
 * - `changesBetween(sys, upper, lower)` compares two mounted trees, as moby's naive differ does:
 *   a path is added when only the upper tree has it, deleted when only the lower one does, and
 *   modified when its type, mode, owner, device number or xattrs differ, or, for non-directories,
 *   its size or modification time (a directory's size and time change whenever its children do,
 *   so they say nothing of the directory itself). Works for every driver.
 * - `overlayUpperEntries(sys, upperDir)` reads an overlayfs upper directory directly (the native
 *   fast path): 0/0 character devices are deletions and `trusted.overlay.opaque=y` directories
 *   hide everything beneath them in the lower layers.
 * Both give tar entries with deletions as `.wh.<name>` and opaque directories as `.wh..wh..opq`,
 * in path order, so the same changes always make the same tar (and the same diff ID).
 */
import { lstatSync, readdirSync, type Stats } from "node:fs";
import { join, posix } from "node:path";
import type { Sys } from "../sys/sys.ts";
import { entryFor, type HardlinkMap } from "./archive-dir.ts";
import type { TarInput } from "./tar-stream.ts";

/** moby's change kinds: 0 modified, 1 added, 2 deleted (the numbers GraphDriver.Changes sends). */
export const ChangeKind = { Modify: 0, Add: 1, Delete: 2 } as const;
export type ChangeKind = (typeof ChangeKind)[keyof typeof ChangeKind];

/** One changed path, absolute inside the layer (`/etc/passwd`). */
export interface Change {
  path: string;
  kind: ChangeKind;
}

const WH_PREFIX = ".wh.";
const WH_OPAQUE = ".wh..wh..opq";
const S_IFMT = 0o170000;

function xattrsEqual(sys: Sys, a: string, b: string): boolean {
  const x = sys.lgetxattrs(a);
  const y = sys.lgetxattrs(b);
  const keys = Object.keys(x).filter((k) => !k.startsWith("trusted.overlay."));
  if (keys.length !== Object.keys(y).filter((k) => !k.startsWith("trusted.overlay.")).length) return false;
  return keys.every((k) => y[k] !== undefined && Buffer.compare(x[k]!, y[k]!) === 0);
}

/** True when `b` (upper) differs from `a` (lower) in a way a layer must record. */
function statDiffers(a: Stats, b: Stats): boolean {
  if ((a.mode & S_IFMT) !== (b.mode & S_IFMT)) return true;
  if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.rdev !== b.rdev) return true;
  if (b.isDirectory()) return false;
  return a.size !== b.size || a.mtimeMs !== b.mtimeMs;
}

/** Changes that turn tree `lower` into tree `upper`, sorted by path. */
export function changesBetween(sys: Sys, upper: string, lower: string): Change[] {
  const out: Change[] = [];
  const walk = (rel: string, lowerExists: boolean) => {
    const newNames = readdirSync(join(upper, rel));
    const oldNames = new Set(lowerExists ? readdirSync(join(lower, rel)) : []);
    const newSet = new Set(newNames);
    for (const name of oldNames) if (!newSet.has(name)) out.push({ path: `/${join(rel, name)}`, kind: ChangeKind.Delete });
    for (const name of newNames) {
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(upper, path));
      if (!oldNames.has(name)) {
        out.push({ path: `/${path}`, kind: ChangeKind.Add });
        if (st.isDirectory()) walk(path, false);
        continue;
      }
      const old = lstatSync(join(lower, path));
      if (statDiffers(old, st) || !xattrsEqual(sys, join(lower, path), join(upper, path))) out.push({ path: `/${path}`, kind: ChangeKind.Modify });
      if (st.isDirectory()) walk(path, old.isDirectory());
    }
  };
  walk("", true);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A whiteout entry hiding `path` (relative). */
function whiteoutEntry(path: string): TarInput {
  const dir = posix.dirname(path);
  const name = `${dir === "." ? "" : `${dir}/`}${WH_PREFIX}${posix.basename(path)}`;
  return { header: { name, type: "file", mode: 0, uid: 0, gid: 0, size: 0, mtime: 0, linkname: "", devmajor: 0, devminor: 0, xattrs: {} } };
}

/** Tar entries for `changes`, content read from `root` (the upper tree). */
export function* changesToEntries(sys: Sys, root: string, changes: Iterable<Change>): Generator<TarInput> {
  const links: HardlinkMap = new Map();
  for (const c of changes) {
    const path = c.path.replace(/^\/+/, "");
    if (c.kind === ChangeKind.Delete) {
      yield whiteoutEntry(path);
      continue;
    }
    const full = join(root, path);
    const e = entryFor(sys, full, path, lstatSync(full), links);
    if (e) yield e;
  }
}

/** Tar entries read straight from an overlayfs upper directory. */
export function* overlayUpperEntries(sys: Sys, upperDir: string): Generator<TarInput> {
  const links: HardlinkMap = new Map();
  function* walk(rel: string): Generator<TarInput> {
    for (const name of readdirSync(rel ? join(upperDir, rel) : upperDir).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const full = join(upperDir, path);
      const st = lstatSync(full);
      if (st.isCharacterDevice() && st.rdev === 0) {
        yield whiteoutEntry(path);
        continue;
      }
      const e = entryFor(sys, full, path, st, links);
      if (!e) continue;
      yield e;
      if (!st.isDirectory()) continue;
      const opaque = sys.lgetxattrs(full)["trusted.overlay.opaque"];
      if (opaque && new TextDecoder().decode(opaque) === "y") yield whiteoutEntry(`${path}/${WH_OPAQUE.slice(WH_PREFIX.length)}`);
      yield* walk(path);
    }
  }
  yield* walk("");
}
