/**
 * `docker cp`: the archive API on a container's filesystem. Paths are resolved inside the
 * container's root with openat2(RESOLVE_IN_ROOT) and everything after that goes through the
 * resolved descriptor (/proc/self/fd/N), never through a host path built from the user's string;
 * the container is paused meanwhile, so nothing in it can swap a directory for a symlink halfway
 * (security.md: CVE-2018-15664 and CVE-2019-14271, whose fix was the same pause). Extraction goes
 * through the layer code, which refuses entries that would leave the destination.
 */
import { ignored } from "../log.ts";
import { closeSync, lstatSync, readlinkSync, type Stats } from "node:fs";
import { posix } from "node:path";
import { invalidArgument, notFound } from "../errors.ts";
import { type HardlinkMap, archiveDirectory, bodyBeneath, entryFor } from "../layer/archive-dir.ts";
import { applyLayer } from "../layer/apply.ts";
import { type TarInput, writeTar } from "../layer/tar-stream.ts";
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_PATH, O_RDONLY, RESOLVE_IN_ROOT, type Sys } from "../sys/sys.ts";

/** Docker's path stat (X-Docker-Container-Path-Stat, base64 JSON). */
export interface PathStat {
  name: string;
  size: number;
  /** Go's os.FileMode: permission bits plus type bits (dir 1<<31, symlink 1<<27…). */
  mode: number;
  mtime: string;
  linkTarget: string;
}

/**
 * `path` (container view) as a host path that cannot leave the root: its parent directory opened
 * inside the root (RESOLVE_IN_ROOT), then the last component under that descriptor, not
 * followed by lstat/readlink. Returns the path and the fd to close.
 */
function inRoot(sys: Sys, rootfs: string, path: string): { full: string; base: string; fd: number } {
  const clean = posix.normalize(`/${path}`);
  const root = sys.openat2(AT_FDCWD, rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0);
  if (clean === "/") return { full: `/proc/self/fd/${root}/.`, base: ".", fd: root }; // "/." : the directory, not the fd's magic link
  try {
    const parent = posix.dirname(clean).replace(/^\/+/, "") || ".";
    const fd = sys.openat2(root, parent, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_IN_ROOT);
    const base = posix.basename(clean);
    return { full: `/proc/self/fd/${fd}/${base}`, base, fd };
  } catch (err) {
    if (/ENOENT|ENOTDIR/.test(String(err))) throw notFound(`Could not find the file ${path} in container`);
    throw err;
  } finally {
    closeSync(root);
  }
}

function lstatIn(full: string, path: string): Stats {
  try {
    return lstatSync(full);
  } catch {
    throw notFound(`Could not find the file ${path} in container`);
  }
}

/** A path ending in `/` or `/.` names a directory: a symlink there is followed (inside the root). */
const followsLink = (path: string) => /\/\.?$/.test(path) && path.replace(/[/.]+$/, "") !== "";

/**
 * Like `inRoot`, but for a path that ends in `/` or `/.`: the whole path is resolved inside the
 * root, following a last symlink as the kernel does for such a path; a file there is ENOTDIR.
 */
function resolveIn(sys: Sys, rootfs: string, path: string, asked = path): { full: string; base: string; fd: number } {
  if (!followsLink(asked)) return inRoot(sys, rootfs, path);
  const root = sys.openat2(AT_FDCWD, rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0);
  try {
    const fd = sys.openat2(root, posix.normalize(`/${path}`).replace(/^\/+/, "").replace(/\/+$/, "") || ".", O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_IN_ROOT);
    return { full: `/proc/self/fd/${fd}/.`, base: ".", fd };
  } catch (err) {
    if (/ENOTDIR/.test(String(err))) throw invalidArgument(`lstat ${path}: not a directory`);
    if (/ENOENT/.test(String(err))) throw notFound(`Could not find the file ${path} in container`);
    throw err;
  } finally {
    closeSync(root);
  }
}

/**
 * The name the archive's top entry gets, as docker cp's rebase does: `/` for the root, `.` for
 * a path ending in `/.` (its contents), else the last component (`/bar/root/` → `root`).
 */
function rebaseName(path: string): string {
  if (/^\/+$/.test(path)) return "/";
  if (path === "." || /\/\.$/.test(path) || /^(\.\/)+$/.test(path) || /^\/(\.\/?)+$/.test(path)) return ".";
  return posix.basename(path.replace(/\/+$/, "")) || "/";
}

function goMode(st: Stats): number {
  let m = Number(st.mode) & 0o777;
  if (st.isDirectory()) m += 2 ** 31;
  else if (st.isSymbolicLink()) m += 2 ** 27;
  else if (st.isFIFO()) m += 2 ** 25;
  else if (st.isSocket()) m += 2 ** 24;
  else if (st.isCharacterDevice()) m += 2 ** 26 + 2 ** 21;
  else if (st.isBlockDevice()) m += 2 ** 26;
  return m;
}

/** `HEAD /containers/{id}/archive`. */
export function statPath(sys: Sys, rootfs: string, path: string, asked = path): PathStat {
  const r = resolveIn(sys, rootfs, path, asked);
  try {
    const st = lstatIn(r.full, path);
    return { name: posix.basename(path) || "/", size: Number(st.size), mode: goMode(st), mtime: new Date(Number(st.mtimeMs)).toISOString(), linkTarget: st.isSymbolicLink() ? readlinkSync(r.full) : "" };
  } finally {
    closeSync(r.fd);
  }
}

/**
 * `GET /containers/{id}/archive`: a tar whose top entry is named as docker cp names it (see
 * `rebaseName`). `path` is what to read (inside a mount, perhaps), `asked` what the client wrote.
 */
export async function* archivePath(sys: Sys, rootfs: string, path: string, asked = path): AsyncGenerator<Uint8Array> {
  const r = resolveIn(sys, rootfs, path, asked);
  try {
    const st = lstatIn(r.full, path);
    const base = rebaseName(asked);
    const links: HardlinkMap = new Map();
    const found = entryFor(sys, r.full, base === "/" ? "" : base, st, links); // the root directory's entry is named "/"
    // A file's body through a descriptor opened beneath its directory's, never following a link swapped in.
    const top = found?.body ? { ...found, body: bodyBeneath(sys, r.fd, r.base, found.header.size) } : found;
    const under = (name: string) => (base === "/" ? `/${name}` : `${base}/${name}`);
    async function* entries(): AsyncGenerator<TarInput> {
      if (top) yield top;
      if (!st.isDirectory()) return;
      for await (const e of archiveDirectory(sys, r.full)) yield { ...e, header: { ...e.header, name: under(e.header.name), ...(e.header.type === "hardlink" ? { linkname: under(e.header.linkname ?? "") } : {}) } };
    }
    yield* writeTar(entries());
  } finally {
    closeSync(r.fd);
  }
}

/** `PUT /containers/{id}/archive`: extract `tar` into the directory `path` (followed inside the root). */
export async function extractTo(sys: Sys, rootfs: string, path: string, tar: AsyncIterable<Uint8Array>): Promise<void> {
  const root = sys.openat2(AT_FDCWD, rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0);
  let fd: number;
  try {
    fd = sys.openat2(root, posix.normalize(`/${path}`).replace(/^\/+/, "") || ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_IN_ROOT);
  } catch (err) {
    if (/ENOTDIR/.test(String(err))) throw invalidArgument("extraction point is not a directory");
    if (/ENOENT/.test(String(err))) throw notFound(`Could not find the file ${path} in container`);
    throw err;
  } finally {
    closeSync(root);
  }
  try {
    await applyLayer(sys, `/proc/self/fd/${fd}`, tar, { whiteouts: "literal", sync: false });
  } finally {
    closeSync(fd);
  }
}

/**
 * `mkdir -p` of `path` inside `root`: each component created or followed with openat2
 * (RESOLVE_IN_ROOT), so a symlink in the image can only lead to another place inside the root.
 * New directories get mode 0755 and `uid`/`gid`.
 */
export function mkdirInRoot(sys: Sys, root: string, path: string, uid = 0, gid = 0): void {
  const parts = posix.normalize(`/${path}`).split("/").filter(Boolean);
  const rootFd = sys.openat2(AT_FDCWD, root, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0);
  try {
    for (let i = 1; i <= parts.length; i++) {
      const rel = parts.slice(0, i).join("/");
      try {
        closeSync(sys.openat2(rootFd, rel, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_IN_ROOT));
        continue;
      } catch (err) {
        ignored("missing: created below", err);
      }
      const parent = i === 1 ? "." : parts.slice(0, i - 1).join("/");
      const pfd = sys.openat2(rootFd, parent, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_IN_ROOT);
      try {
        sys.mkdirat(pfd, parts[i - 1]!, 0o755);
        sys.fchownat(pfd, parts[i - 1]!, uid, gid, 0x100 /* AT_SYMLINK_NOFOLLOW */);
      } finally {
        closeSync(pfd);
      }
    }
  } finally {
    closeSync(rootFd);
  }
}

/**
 * Tar entries for `path` of a root (resolved inside it, the last component not followed): a
 * directory gives its contents (names relative to it, as COPY copies a directory's contents), a
 * file (or symlink, copied as a link) gives one entry named by its base name. `done()` releases the resolved descriptor.
 */
export function sourceEntries(sys: Sys, root: string, path: string): { isDir: boolean; name: string; entries: AsyncGenerator<TarInput>; done(): void } {
  const r = inRoot(sys, root, path);
  let st: Stats;
  try {
    st = lstatIn(r.full, path); // a symlink source is copied as the link: following it could read host files
  } catch (err) {
    closeSync(r.fd);
    throw err;
  }
  const links: HardlinkMap = new Map();
  const isDir = st.isDirectory();
  const name = posix.basename(posix.normalize(`/${path}`));
  async function* entries(): AsyncGenerator<TarInput> {
    if (isDir) {
      yield* archiveDirectory(sys, r.full);
      return;
    }
    const e = entryFor(sys, r.full, name, st, links);
    if (e) yield e.body ? { ...e, body: bodyBeneath(sys, r.fd, r.base, e.header.size) } : e;
  }
  return { isDir, name, entries: entries(), done: () => closeSync(r.fd) };
}
