/**
 * Apply a layer tar to a directory, safely. Every path is resolved by the kernel inside the
 * layer root (openat2 with RESOLVE_IN_ROOT), so `..`, absolute names, and symlinks or hardlinks
 * pointing anywhere cannot reach outside it; the entry itself is then created with *at calls on
 * its parent's descriptor and its metadata set without following symlinks. Whiteouts are applied
 * in the driver's native form: removed from a merged copy (vfs, btrfs), or written as overlayfs
 * whiteouts (0/0 character device, `trusted.overlay.opaque`) into an overlay layer directory.
 */
import { readdirSync, writeSync } from "node:fs";
import { posix } from "node:path";
import { invalidArgument, SyscallError } from "../errors.ts";
import {
  AT_FDCWD,
  AT_REMOVEDIR,
  AT_SYMLINK_NOFOLLOW,
  EEXIST,
  EISDIR,
  ENOENT,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_PATH,
  O_RDONLY,
  O_WRONLY,
  RESOLVE_BENEATH,
  RESOLVE_IN_ROOT,
  RESOLVE_NO_MAGICLINKS,
  S_IFBLK,
  S_IFCHR,
  S_IFIFO,
  type Sys,
} from "../sys/sys.ts";
import type { TarHeader } from "./tar-header.ts";
import { readTar } from "./tar-stream.ts";

/** How whiteouts are represented on disk ("literal": `.wh.` names are ordinary files, as in `docker cp`). */
export type WhiteoutMode = "remove" | "overlay" | "literal";

/** Options for `applyLayer`. */
export interface ApplyOptions {
  whiteouts: WhiteoutMode;
  /** Set ownership from the archive (default: when running as root). */
  chown?: boolean;
  /** syncfs the target filesystem once at the end (default true): data is on disk when this returns. */
  sync?: boolean;
}

/** What was applied. */
export interface ApplyResult {
  /** Bytes of regular-file content written. */
  size: number;
  entries: number;
}

const WH_PREFIX = ".wh.";
const WH_OPAQUE = ".wh..wh..opq";
const IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

/** Clean an archive path lexically inside the root: `a/../../b` → `b`; `/x` → `x`; root → "". */
export function cleanEntryPath(name: string): string {
  return posix
    .normalize("/" + name)
    .replace(/^\/+/, "")
    .replace(/\/+$/, "");
}

/** Apply the tar stream `layer` onto `root`. */
export async function applyLayer(sys: Sys, root: string, layer: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, opts: ApplyOptions): Promise<ApplyResult> {
  const rootFd = sys.openat2(AT_FDCWD, root, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0);
  const chown = opts.chown ?? process.getuid?.() === 0;
  const unpacked = new Set<string>();
  const dirTimes: [string, number][] = [];
  const result: ApplyResult = { size: 0, entries: 0 };
  const parents = new ParentCache(sys, rootFd);
  try {
    for await (const { header, body } of readTar(layer)) {
      result.entries++;
      const path = cleanEntryPath(header.name);
      if (path === "") continue; // the root itself keeps its own metadata
      const dir = posix.dirname(path) === "." ? "" : posix.dirname(path);
      const base = posix.basename(path);
      const parentFd = parents.get(dir);

      if (base.startsWith(WH_PREFIX) && opts.whiteouts !== "literal") {
        if (base === WH_OPAQUE) opaque(sys, parentFd, dir, unpacked, opts.whiteouts, parents);
        else whiteout(sys, parentFd, dir, base.slice(WH_PREFIX.length), opts.whiteouts, parents);
        continue;
      }

      const fd = await create(sys, rootFd, parentFd, dir, base, header, body, parents);
      if (header.type === "file") result.size += header.size;
      if (fd !== undefined) {
        // Regular files: metadata through the open descriptor, no further path lookups.
        try {
          if (chown) sys.fchown(fd, header.uid, header.gid, path);
          sys.fchmod(fd, header.mode & 0o7777, path);
          for (const [n, v] of Object.entries(header.xattrs)) sys.fsetxattr(fd, n, v, 0);
          sys.futimens(fd, header.mtime, header.mtime, path);
        } finally {
          sys.close(fd);
        }
      } else if (header.type !== "hardlink") {
        // A hardlink shares its target's inode: its metadata is the target's, already set.
        setMetadata(sys, parentFd, base, header, chown);
        if (header.type === "directory") dirTimes.push([path, header.mtime]);
        else sys.utimensat(parentFd, base, header.mtime, header.mtime, AT_SYMLINK_NOFOLLOW);
      }
      unpacked.add(path);
    }
    parents.clear();
    // Directory times last: creating their children changed them.
    for (const [path, mtime] of dirTimes.reverse()) {
      const dir = posix.dirname(path) === "." ? "." : posix.dirname(path);
      let fd: number;
      try {
        fd = sys.openat2(rootFd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT);
      } catch (err) {
        if (err instanceof SyscallError && err.errno === ENOENT) continue; // removed by a later whiteout
        throw err;
      }
      try {
        sys.utimensat(fd, posix.basename(path), mtime, mtime, AT_SYMLINK_NOFOLLOW);
      } catch (err) {
        if (!(err instanceof SyscallError) || err.errno !== ENOENT) throw err;
      } finally {
        sys.close(fd);
      }
    }
    if (opts.sync ?? true) {
      const fd = sys.openat2(AT_FDCWD, root, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0); // syncfs refuses O_PATH fds
      try {
        sys.syncfs(fd, root);
      } finally {
        sys.close(fd);
      }
    }
  } finally {
    parents.clear();
    sys.close(rootFd);
  }
  return result;
}

/**
 * Open parent directories, by path inside the root. Consecutive entries mostly share a parent,
 * so this saves a resolution per entry. Entries under a removed path are dropped (their
 * descriptors would name directories no longer in the tree).
 */
class ParentCache {
  private readonly fds = new Map<string, number>();
  constructor(
    private readonly sys: Sys,
    private readonly rootFd: number,
  ) {}

  get(dir: string): number {
    const hit = this.fds.get(dir);
    if (hit !== undefined) return hit;
    const fd = ensureDir(this.sys, this.rootFd, dir);
    if (this.fds.size >= 32) {
      const [oldest, ofd] = this.fds.entries().next().value as [string, number];
      this.fds.delete(oldest);
      this.sys.close(ofd);
    }
    this.fds.set(dir, fd);
    return fd;
  }

  /** Forget `path` and everything below it (`path` itself kept when `childrenOnly`). */
  dropUnder(path: string, childrenOnly = false): void {
    for (const [p, fd] of [...this.fds]) {
      const below = path === "" ? p !== "" : p.startsWith(path + "/");
      if (below || (!childrenOnly && p === path)) {
        this.fds.delete(p);
        this.sys.close(fd);
      }
    }
  }

  clear(): void {
    for (const fd of this.fds.values()) this.sys.close(fd);
    this.fds.clear();
  }
}

/** Open (creating as needed) the directory `dir` inside the root; returns an O_PATH fd. */
function ensureDir(sys: Sys, rootFd: number, dir: string): number {
  const open = (p: string) => sys.openat2(rootFd, p === "" ? "." : p, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT);
  try {
    return open(dir);
  } catch (err) {
    if (!(err instanceof SyscallError) || err.errno !== ENOENT) throw err;
  }
  // Create missing components one by one, each resolved inside the root.
  const parts = dir.split("/");
  let fd = open("");
  for (let i = 0; i < parts.length; i++) {
    const prefix = parts.slice(0, i + 1).join("/");
    try {
      const next = open(prefix);
      sys.close(fd);
      fd = next;
      continue;
    } catch (err) {
      if (!(err instanceof SyscallError) || err.errno !== ENOENT) {
        sys.close(fd);
        throw err;
      }
    }
    try {
      sys.mkdirat(fd, parts[i]!, 0o755);
    } catch (err) {
      sys.close(fd);
      if (err instanceof SyscallError && err.errno === EEXIST) {
        throw invalidArgument(`layer: cannot create ${prefix}: a dangling symlink is in the way`);
      }
      throw err;
    }
    const next = open(prefix);
    sys.close(fd);
    fd = next;
  }
  return fd;
}

/**
 * Create one entry under `parentFd`, replacing what is there unless both are directories.
 * For a regular file, returns its open descriptor (the caller sets metadata and closes it).
 */
async function create(sys: Sys, rootFd: number, parentFd: number, dir: string, base: string, h: TarHeader, body: AsyncIterable<Uint8Array>, parents: ParentCache): Promise<number | undefined> {
  const attempt = async (): Promise<number | undefined> => {
    switch (h.type) {
      case "directory":
        sys.mkdirat(parentFd, base, 0o700);
        return;
      case "file": {
        const fd = sys.openat2(parentFd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
        try {
          for await (const chunk of body) {
            let off = 0;
            while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
          }
        } catch (err) {
          sys.close(fd);
          throw err;
        }
        return fd;
      }
      case "symlink":
        sys.symlinkat(h.linkname, parentFd, base);
        return;
      case "hardlink": {
        const target = cleanEntryPath(h.linkname);
        if (target === "") throw invalidArgument(`layer: hardlink ${base} to the root directory`);
        const tdir = posix.dirname(target) === "." ? "." : posix.dirname(target);
        const tfd = sys.openat2(rootFd, tdir, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT);
        try {
          sys.linkat(tfd, posix.basename(target), parentFd, base, 0);
        } finally {
          sys.close(tfd);
        }
        return;
      }
      case "chardev":
      case "blockdev":
      case "fifo": {
        const kind = h.type === "chardev" ? S_IFCHR : h.type === "blockdev" ? S_IFBLK : S_IFIFO;
        sys.mknodat(parentFd, base, kind | 0o600, h.devmajor, h.devminor);
        return;
      }
    }
  };
  try {
    return await attempt();
  } catch (err) {
    if (!(err instanceof SyscallError) || err.errno !== EEXIST) throw err;
    if (h.type === "directory" && isDir(sys, parentFd, base)) return undefined; // keep the directory, update metadata
    parents.dropUnder(dir ? `${dir}/${base}` : base);
    removeAll(sys, parentFd, base);
    return await attempt();
  }
}

function isDir(sys: Sys, parentFd: number, base: string): boolean {
  try {
    sys.close(sys.openat2(parentFd, base, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, RESOLVE_BENEATH));
    return true;
  } catch {
    return false;
  }
}

/** Ownership, mode (after chown, which clears set-id bits), then xattrs; never through symlinks. */
function setMetadata(sys: Sys, parentFd: number, base: string, h: TarHeader, chown: boolean): void {
  if (chown) sys.fchownat(parentFd, base, h.uid, h.gid, AT_SYMLINK_NOFOLLOW);
  if (h.type === "symlink") return;
  sys.fchmodat(parentFd, base, h.mode & 0o7777, 0);
  const names = Object.keys(h.xattrs);
  if (!names.length || (h.type !== "file" && h.type !== "directory")) return;
  const fd = sys.openat2(parentFd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (h.type === "directory" ? O_DIRECTORY : 0), 0, RESOLVE_BENEATH);
  try {
    for (const n of names) sys.fsetxattr(fd, n, h.xattrs[n]!, 0);
  } finally {
    sys.close(fd);
  }
}

/** Remove `base` under `parentFd`, recursively, without following symlinks. */
function removeAll(sys: Sys, parentFd: number, base: string): void {
  try {
    sys.unlinkat(parentFd, base, 0);
    return;
  } catch (err) {
    if (err instanceof SyscallError && err.errno === ENOENT) return;
    if (!(err instanceof SyscallError) || err.errno !== EISDIR) throw err;
  }
  const fd = sys.openat2(parentFd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, RESOLVE_BENEATH);
  try {
    for (const child of readdirSync(`/proc/self/fd/${fd}`)) removeAll(sys, fd, child);
  } finally {
    sys.close(fd);
  }
  sys.unlinkat(parentFd, base, AT_REMOVEDIR);
}

/** `.wh.<name>`: delete it from the merged tree, or mark it deleted for overlayfs. */
function whiteout(sys: Sys, parentFd: number, dir: string, name: string, mode: WhiteoutMode, parents: ParentCache): void {
  if (!name || name === "." || name === ".." || name.includes("/")) throw invalidArgument(`layer: invalid whiteout for ${JSON.stringify(name)}`);
  parents.dropUnder(dir ? `${dir}/${name}` : name);
  if (mode === "remove") removeAll(sys, parentFd, name);
  else {
    removeAll(sys, parentFd, name);
    sys.mknodat(parentFd, name, S_IFCHR, 0, 0);
  }
}

/** `.wh..wh..opq`: hide everything below from lower layers. */
function opaque(sys: Sys, parentFd: number, dir: string, unpacked: Set<string>, mode: WhiteoutMode, parents: ParentCache): void {
  if (mode === "overlay") {
    const fd = sys.openat2(parentFd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_BENEATH);
    try {
      sys.fsetxattr(fd, "trusted.overlay.opaque", new TextEncoder().encode("y"), 0);
    } finally {
      sys.close(fd);
    }
    return;
  }
  // Remove what lower layers put here, keeping what this layer already unpacked.
  for (const child of readdirSync(`/proc/self/fd/${parentFd}`)) {
    const p = dir ? `${dir}/${child}` : child;
    if (unpacked.has(p)) continue;
    parents.dropUnder(p);
    removeAll(sys, parentFd, child);
  }
}
