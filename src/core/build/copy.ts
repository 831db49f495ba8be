/**
 * COPY and ADD: sources from the context, another stage or an image (globs, here-documents,
 * URLs, local archives), a checksum of them for the cache, and the write into the target root,
 * resolved inside it (a symlink in the image cannot lead out).
 */
import { ignore } from "../log.ts";
import { closeSync, createReadStream, fstatSync, mkdirSync, mkdtempSync, readdirSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";

import { extractTo, mkdirInRoot, sourceEntries } from "../container/archive.ts";
import { resolveUser } from "../container/user.ts";
import { Digester } from "../content/digest.ts";

import type { ImageRecord } from "../image/image-store.ts";
import { decompressStream, detectCompression } from "../layer/compression.ts";
import { type TarInput, writeTar } from "../layer/tar-stream.ts";
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW, O_PATH, O_RDONLY, RESOLVE_IN_ROOT, type Sys } from "../sys/sys.ts";
import { type Instruction } from "./dockerfile.ts";
import { expandFields, expandWord } from "./shell-lex.ts";

import { fetchGit, isGitUrl } from "./git-source.ts";
import { type BuildDeps, BuildError, type BuildRun, namedDir, type Stage } from "./build-types.ts";
import { container, fromImage, stepImage } from "./build-steps.ts";

/** COPY/ADD: sources from the context, another stage or an image, written inside the target root. */
export async function copy(run: BuildRun, s: Stage, ins: Instruction, env: Record<string, string>) {
  const { deps, opts, escape } = run;
  const isAdd = ins.name === "add";
  // --parents and --exclude are BuildKit's (the classic builder refuses them, as dockerd's does).
  const known = ["from", "chown", "chmod", "link", "keep-git-dir", "checksum", ...(opts.buildkitLayers ? ["parents", "exclude"] : [])];
  for (const f of Object.keys(ins.flags)) if (!known.includes(f)) throw new BuildError(`Unknown flag: ${f}`);
  // --exclude (repeatable): patterns, .dockerignore's syntax, matched against each source's paths;
  // --parents: a matched path keeps its directories under the destination.
  const excluded = await excludeMatcher((ins.flagList ?? []).filter(([k]) => k === "exclude").map(([, v]) => expandWord(v, env, escape)));
  const parents = ins.flags.parents === "true" || ins.flags.parents === "";
  if (isAdd && ins.flags.from) throw new BuildError("ADD does not support --from");
  const words = ins.json ?? expandFields(ins.args, env, escape);
  if (words.length < 2 && !ins.heredocs.length) throw new BuildError(`${ins.name.toUpperCase()} requires at least two arguments, but only one was provided. Destination could not be determined.`);
  const dest = words.at(-1)!;
  const isMarker = (x: string) => ins.heredocs.some((h) => new RegExp(`^<<-?(["']?)${h.name}\\1$`).test(x));
  const srcs = words.slice(0, -1).filter((x) => !isMarker(x));
  let destAbs = dest.startsWith("/") ? dest : posix.join(s.config.WorkingDir || "/", dest);
  // A directory destination: a trailing slash, ".", several sources (or an existing directory, checked in the root).
  let destIsDir = dest.endsWith("/") || dest === "." || dest.endsWith("/.") || srcs.length + ins.heredocs.length > 1 || srcs.some((x) => /[*?[]/.test(x));
  destAbs = posix.normalize(destAbs);
  if (destIsDir && !destAbs.endsWith("/")) destAbs += "/";
  // Where sources come from.
  const fromName = ins.flags.from ? expandWord(ins.flags.from, env, escape).toLowerCase() : undefined;
  // A named build context that is a directory is a source root like the context itself.
  const fromDir = fromName ? namedDir(opts, fromName) : undefined;
  let srcRoot = fromDir ?? opts.context;
  const srcImage = fromName && !fromDir ? await fromImage(run, fromName) : undefined;
  let srcContainer: string | undefined;
  const cleanups: (() => void)[] = [];
  // ADD --checksum=<algorithm>:<hex>: a downloaded file must have that digest.
  const expected = ins.flags.checksum ? expandWord(ins.flags.checksum, env, escape) : undefined;
  if (expected !== undefined && !/^sha(256:[0-9a-f]{64}|384:[0-9a-f]{96}|512:[0-9a-f]{128})$/.test(expected)) throw new BuildError(`invalid checksum digest format: ${expected}`);
  if (expected !== undefined && (!isAdd || srcs.some((x) => !/^https?:\/\//.test(x)) || ins.heredocs.length)) throw new BuildError("checksum can't be specified for non-HTTP(S) sources");
  const chmod = ins.flags.chmod ? Number.parseInt(ins.flags.chmod, 8) : undefined;
  if (ins.flags.chmod && (Number.isNaN(chmod) || chmod! > 0o7777)) throw new BuildError(`invalid chmod parameter: ${ins.flags.chmod}`);
  const items: Item[] = [];
  for (const h of ins.heredocs) items.push({ kind: "inline", name: h.name, body: new TextEncoder().encode(h.quoted ? h.content : expandWord(h.content.replace(/"/g, '\\"'), env, escape)) });
  const withSource = async <T>(fn: (root: string) => Promise<T>): Promise<T> => {
    if (!srcImage) return fn(srcRoot);
    srcContainer ??= (await deps.containers.create({ Image: srcImage.id, Cmd: ["true"], Entrypoint: [] }, undefined, undefined, undefined, { transient: true })).Id;
    return deps.containers.withRoot(srcContainer, "/", (root) => fn(root));
  };
  try {
    const checksum = await collectSources(deps, { srcs, isAdd, srcImage, srcRoot, withSource, items, excluded, keepGitDir: ins.flags["keep-git-dir"] === "true", cleanups, buildkit: !!opts.buildkitLayers });
    const key = `${ins.name.toUpperCase()} ${JSON.stringify(ins.flags)} ${srcImage?.id ?? ""} ${checksum} ${destAbs}`;
    await stepImage(run, s, key, async () => {
      const id = await container(run, s, null, s.config.Env ?? []);
      try {
        await deps.containers.withRoot(id, "/", async (root) => {
          const owner = ins.flags.chown ? resolveUser(deps.sys, root, expandWord(ins.flags.chown, env, escape)) : undefined;
          const fix = (e: TarInput): TarInput => ({
            ...e,
            header: {
              ...e.header,
              ...(owner ? { uid: owner.uid, gid: owner.gid } : !srcImage ? { uid: 0, gid: 0 } : {}),
              ...(chmod !== undefined && e.header.type !== "symlink" ? { mode: chmod } : {}),
            },
          });
          if (!destIsDir && isDirIn(deps.sys, root, destAbs)) {
            destIsDir = true;
            destAbs += "/";
          }
          const targetDir = destIsDir ? destAbs : posix.dirname(destAbs);
          mkdirInRoot(deps.sys, root, targetDir, owner?.uid ?? 0, owner?.gid ?? 0);
          const place: Placement = { sys: deps.sys, root, destAbs, destIsDir, targetDir, owner, fix, withSource, excluded, parents, expected, srcRoot };
          for (const it of items) await writeItem(place, it);
        });
        const fileSum = checksum.slice(7);
        return await deps.containers.commit(id, {
          config: s.config,
          exactConfig: true,
          pause: false,
          createdBy: `/bin/sh -c #(nop) ${ins.name.toUpperCase()} ${items.length === 1 && items[0]!.kind !== "inline" ? "file" : "multi"}:${fileSum} in ${destAbs} `,
        });
      } finally {
        await deps.containers.remove(id, { force: true }).catch(ignore("build container removal failed"));
      }
    });
  } finally {
    for (const c of cleanups) c();
    if (srcContainer) await deps.containers.remove(srcContainer, { force: true }).catch(ignore("COPY --from source container removal failed"));
  }
}

/** Where a COPY/ADD step writes, and how (shared by each of its sources). */
interface Placement {
  sys: Sys;
  root: string;
  destAbs: string;
  destIsDir: boolean;
  targetDir: string;
  owner: { uid: number; gid: number } | undefined;
  fix: (e: TarInput) => TarInput;
  withSource: <T>(fn: (root: string) => Promise<T>) => Promise<T>;
  excluded: ((path: string) => boolean) | undefined;
  parents: boolean;
  expected: string | undefined;
  srcRoot: string;
}

/** Write one source of a COPY/ADD into the step's root. */
async function writeItem(p: Placement, it: Item): Promise<void> {
  let entries: AsyncIterable<TarInput>;
  let into = p.targetDir;
  if (it.kind === "inline")
    entries = [p.fix({ header: { name: p.destIsDir ? it.name : posix.basename(p.destAbs), type: "file", mode: 0o644, uid: 0, gid: 0, size: it.body.length, mtime: Date.now() / 1000 }, body: it.body })] as unknown as AsyncIterable<TarInput>;
  else if (it.kind === "url") {
    const res = await fetch(it.url);
    if (!res.ok) throw new BuildError(`ADD failed: ${it.url}: HTTP ${res.status}`);
    const body = new Uint8Array(await res.arrayBuffer());
    if (p.expected) {
      const [algo, hex] = p.expected.split(":") as [string, string];
      const got = new Bun.CryptoHasher(algo as "sha256" | "sha384" | "sha512").update(body).digest("hex");
      if (got !== hex) throw new BuildError(`ADD failed: digest mismatch for ${it.url}: p.expected ${p.expected}, got ${algo}:${got}`);
    }
    const name = p.destIsDir ? posix.basename(new URL(it.url).pathname) || "index.html" : posix.basename(p.destAbs);
    const mtime = Date.parse(res.headers.get("last-modified") ?? "") / 1000 || Date.now() / 1000;
    entries = [p.fix({ header: { name, type: "file", mode: 0o600, uid: 0, gid: 0, size: body.length, mtime }, body })] as unknown as AsyncIterable<TarInput>;
  } else if (it.kind === "tree") {
    // A fetched git repository: its tree into the destination directory.
    into = p.destAbs.endsWith("/") ? p.destAbs : `${p.destAbs}/`;
    mkdirInRoot(p.sys, p.root, into, p.owner?.uid ?? 0, p.owner?.gid ?? 0);
    const src = sourceEntries(p.sys, it.root, ".");
    try {
      await extractTo(p.sys, p.root, into, writeTar(mapEntries(src.entries, p.fix)));
    } finally {
      src.done();
    }
    return;
  } else if (it.kind === "archive") {
    // ADD of a local archive: its contents are extracted at the destination.
    into = p.destAbs.endsWith("/") ? p.destAbs : `${p.destAbs}/`;
    mkdirInRoot(p.sys, p.root, into);
    const { stream } = await decompressStream(openInRoot(p.sys, p.srcRoot, it.path));
    await extractTo(p.sys, p.root, into, stream);
    return;
  } else {
    const src = await p.withSource(async (r) => sourceEntries(p.sys, r, it.path));
    const renamed = !src.isDir && !p.destIsDir;
    const base = renamed ? posix.basename(p.destAbs) : src.name;
    const ex = p.excluded;
    const kept = ex ? keepEntries(src.entries, (name) => !(src.isDir ? ex(name) || ex(posix.join(it.path, name)) : ex(it.path))) : src.entries;
    entries = mapEntries(kept, (e) => p.fix(src.isDir ? e : { ...e, header: { ...e.header, name: base } }));
    if (src.isDir) into = p.parents ? posix.join(p.destAbs, it.path) : p.destAbs;
    else if (p.parents && posix.dirname(it.path) !== ".") into = posix.join(p.targetDir, posix.dirname(it.path));
    mkdirInRoot(p.sys, p.root, into, p.owner?.uid ?? 0, p.owner?.gid ?? 0);
    try {
      await extractTo(p.sys, p.root, into, writeTar(entries));
    } finally {
      src.done();
    }
    return;
  }
  await extractTo(p.sys, p.root, into, writeTar(entries));
}

/** A source of COPY/ADD: a path (in the context or a stage's root), a here-document, a URL, or a local archive to extract. */
type Item = { kind: "path"; path: string } | { kind: "inline"; name: string; body: Uint8Array } | { kind: "url"; url: string } | { kind: "archive"; path: string } | { kind: "tree"; root: string; label: string };

/**
 * The sources matched (globs, archives, URLs) added to `items`, and the step's checksum of what
 * would be copied: names, types, modes, link targets and bytes, not times or owners.
 */
async function collectSources(
  deps: BuildDeps,
  c: {
    srcs: string[];
    isAdd: boolean;
    srcImage: ImageRecord | undefined;
    srcRoot: string;
    withSource: <T>(fn: (root: string) => Promise<T>) => Promise<T>;
    items: Item[];
    excluded: ((path: string) => boolean) | undefined;
    keepGitDir: boolean;
    buildkit: boolean;
    cleanups: (() => void)[];
  },
): Promise<string> {
  const { srcs, isAdd, srcImage, srcRoot, withSource, items, excluded } = c;
  const dfInContext = (p: string) => posix.normalize(`/${p}`).slice(1);
  for (const src of srcs) {
    // Git sources are BuildKit's; the classic builder treats such a URL as any other.
    if (isAdd && c.buildkit && isGitUrl(src)) {
      // A git repository: fetched now, so the commit it resolves to is in the cache key.
      mkdirSync(deps.scratchRoot ?? tmpdir(), { recursive: true });
      const dir = mkdtempSync(join(deps.scratchRoot ?? tmpdir(), "git-"));
      c.cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const got = await fetchGit(src, dir, c.keepGitDir);
      items.push({ kind: "tree", root: got.root, label: `git ${src.split("#")[0]} ${got.commit} ${c.keepGitDir}` });
      continue;
    }
    if (isAdd && /^https?:\/\//.test(src)) {
      items.push({ kind: "url", url: src });
      continue;
    }
    const rel = dfInContext(src);
    if (!srcImage && (posix.normalize(src).startsWith("../") || posix.normalize(src) === "..")) throw new BuildError(`COPY failed: forbidden path outside the build context: ${src} ()`);
    const matches = await withSource(async (root) => glob(deps.sys, root, rel));
    if (!matches.length) throw new BuildError(`COPY failed: file not found in build context or excluded by .dockerignore: stat ${rel}: file does not exist`);
    for (const m of matches) {
      if (excluded && (excluded(m) || excluded(posix.basename(m)))) continue;
      if (isAdd && !srcImage && isArchive(deps.sys, srcRoot, m)) items.push({ kind: "archive", path: m });
      else items.push({ kind: "path", path: m });
    }
  }
  // The cache key: the instruction and a checksum of what would be copied.
  const sum = new Digester("sha256");
  for (const it of items) {
    if (it.kind === "inline") sum.update(new TextEncoder().encode(`inline ${it.name}\n`)), sum.update(it.body);
    else if (it.kind === "url") sum.update(new TextEncoder().encode(`url ${it.url}\n`));
    else if (it.kind === "tree") sum.update(new TextEncoder().encode(`${it.label}\n`));
    else {
      sum.update(new TextEncoder().encode(`${it.kind} ${it.path}\n`));
      if (srcImage) continue; // another stage or image: its ID is in the key already
      // Names, types, modes, link targets and bytes; not times or owners (copies from the context get root's).
      const src = sourceEntries(deps.sys, srcRoot, it.path);
      try {
        const kept = excluded ? keepEntries(src.entries, (name) => !(src.isDir ? excluded(name) || excluded(posix.join(it.path, name)) : excluded(it.path))) : src.entries;
        for await (const chunk of writeTar(mapEntries(kept, (e) => ({ ...e, header: { ...e.header, mtime: 0, uid: 0, gid: 0, uname: "", gname: "" } })))) sum.update(chunk);
      } finally {
        src.done();
      }
    }
  }
  return sum.digest();
}

/** A matcher for COPY `--exclude` patterns (none: undefined). */
async function excludeMatcher(patterns: string[]): Promise<((path: string) => boolean) | undefined> {
  if (!patterns.length) return undefined;
  const { DockerIgnore } = await import("./dockerignore.ts");
  const ig = new DockerIgnore(patterns.join("\n"));
  return (p) => ig.excludes(posix.normalize(`/${p}`).slice(1));
}

async function* keepEntries(it: AsyncIterable<TarInput>, keep: (name: string) => boolean): AsyncGenerator<TarInput> {
  for await (const e of it) {
    const name = e.header.name.replace(/^\.\//, "").replace(/\/$/, "");
    if (!name || keep(name)) yield e;
    else if (e.body && !(e.body instanceof Uint8Array)) for await (const _ of e.body) void _;
  }
}

async function* mapEntries(it: AsyncIterable<TarInput>, fn: (e: TarInput) => TarInput): AsyncGenerator<TarInput> {
  for await (const e of it) yield fn(e);
}

/**
 * A context file opened inside the context (openat2 RESOLVE_IN_ROOT, a final symlink not
 * followed): a symlink in a client's context cannot make the daemon read one of its own files.
 */
function openInRoot(sys: Sys, root: string, path: string): AsyncIterable<Uint8Array> {
  const rootFd = sys.openat2(AT_FDCWD, root, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0);
  try {
    const fd = sys.openat2(rootFd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, RESOLVE_IN_ROOT);
    return createReadStream("", { fd, autoClose: true }) as AsyncIterable<Uint8Array>;
  } finally {
    sys.close(rootFd);
  }
}

/** Whether a context file is a regular tar archive (plain or compressed) that ADD extracts; symlinks never are. */
function isArchive(sys: Sys, root: string, path: string): boolean {
  try {
    const rootFd = sys.openat2(AT_FDCWD, root, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0);
    let fd: number;
    try {
      fd = sys.openat2(rootFd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, RESOLVE_IN_ROOT);
    } finally {
      sys.close(rootFd);
    }
    const head = new Uint8Array(512);
    let n: number;
    try {
      if (!fstatSync(fd).isFile()) return false;
      n = readSync(fd, head, 0, 512, 0);
    } finally {
      closeSync(fd);
    }
    if (detectCompression(head.subarray(0, n)) !== "none") return true;
    return new TextDecoder().decode(head.subarray(257, 262)) === "ustar";
  } catch {
    return false;
  }
}

/**
 * Source paths matching a COPY source (Go filepath.Match per component); the path itself when it
 * has no wildcard. Directories are listed through descriptors resolved inside the root, so a
 * symlink in the context cannot list the daemon's own directories.
 */
function glob(sys: Sys, root: string, raw: string): string[] {
  const pattern = raw.replace(/\/+$/, "");
  const listIn = (dir: string): string[] | undefined => {
    const rootFd = sys.openat2(AT_FDCWD, root, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0);
    try {
      const fd = sys.openat2(rootFd, dir || ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_IN_ROOT);
      try {
        return readdirSync(`/proc/self/fd/${fd}`);
      } finally {
        closeSync(fd);
      }
    } catch {
      return undefined;
    } finally {
      sys.close(rootFd);
    }
  };
  if (!/[*?[]/.test(pattern)) {
    const dir = pattern.includes("/") ? pattern.slice(0, pattern.lastIndexOf("/")) : "";
    const base = pattern.slice(pattern.lastIndexOf("/") + 1);
    return !pattern || listIn(dir)?.includes(base) ? [pattern || "."] : [];
  }
  let current = [""];
  for (const part of pattern.split("/")) {
    const re = new RegExp(
      `^${part
        .replace(/[.+^${}()|\\]/g, "\\$&")
        .replace(/\*/g, "[^/]*")
        .replace(/\?/g, "[^/]")}$`,
    );
    const next: string[] = [];
    for (const dir of current) for (const n of (listIn(dir) ?? []).sort()) if (re.test(n)) next.push(dir ? `${dir}/${n}` : n);
    current = next;
  }
  return current;
}

/** Whether `path` is a directory inside `root` (resolved inside it). */
function isDirIn(sys: Sys, root: string, path: string): boolean {
  try {
    const rootFd = sys.openat2(AT_FDCWD, root, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0);
    try {
      sys.close(sys.openat2(rootFd, path.replace(/^\/+/, "") || ".", O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_IN_ROOT));
      return true;
    } finally {
      sys.close(rootFd);
    }
  } catch {
    return false;
  }
}
