/**
 * A container's files: the archive API (`docker cp`: stat, read, extract) on the host directory
 * that holds a path (a volume, a bind, the /etc files, or the root, paused while it runs), the
 * changes of its writable layer, and export of its whole filesystem.
 */
import { existsSync, statSync } from "node:fs";
import { basename, dirname, posix } from "node:path";
import { EngineError, notFound } from "../errors.ts";
import { archivePath, extractTo, type PathStat, statPath } from "./archive.ts";
import type { ContainerContext } from "./context.ts";

/** Thaw a container frozen for a copy or a commit; killed while frozen (docker kill meanwhile) is fine. */
export function thaw(ctx: ContainerContext, id: string): void {
  try {
    ctx.deps.runtime.resume(id);
  } catch (err) {
    if (!(err instanceof EngineError && (err.code === "failed-precondition" || err.code === "not-found"))) throw err;
  }
}

/** A running container is frozen while `fn` runs (with `pause`), and thawed after. */
async function whilePaused<T>(ctx: ContainerContext, id: string, pause: boolean, fn: () => Promise<T>): Promise<T> {
  if (pause) ctx.deps.runtime.pause(id);
  try {
    return await fn();
  } finally {
    if (pause) thaw(ctx, id);
  }
}

/**
 * Run `fn` on the host directory holding the container's `path` and the path inside it: the
 * volume or bind mount whose destination contains it (volumes and binds live outside the root
 * on the host), else the container's root, mounted if it is not running. A running container is
 * paused meanwhile (CVE-2018-15664); `fn` resolves `path` inside that directory only.
 */
export async function withRoot<T>(ctx: ContainerContext, ref: string, path: string, fn: (root: string, path: string) => Promise<T>, event?: { action: string; path: string }): Promise<T> {
  const c = ctx.store.get(ref);
  if (event) ctx.publish(c, event.action, { path: event.path });
  const clean = posix.normalize(`/${path}`);
  const mounts = [
    ...(c.MountPoints ?? []).filter((m) => m.Type !== "tmpfs" && m.Source).map((m) => ({ dest: m.Destination, src: m.Source })),
    { dest: "/etc/hosts", src: c.HostsPath },
    { dest: "/etc/hostname", src: c.HostnamePath },
    { dest: "/etc/resolv.conf", src: c.ResolvConfPath },
  ].filter((m) => clean === m.dest || clean.startsWith(`${m.dest}/`));
  const mount = mounts.sort((a, b) => b.dest.length - a.dest.length)[0];
  // Paused for a path under a mount too: the container could otherwise swap a directory of a
  // volume for a symlink while the copy walks it (the walk goes by descriptor as well).
  const pause = c.State.Running && !c.State.Paused;
  if (mount && existsSync(mount.src)) {
    // A file bind mount is reached through its directory, by its own name.
    if (!statSync(mount.src).isDirectory()) return whilePaused(ctx, c.Id, pause, () => fn(dirname(mount.src), `/${basename(mount.src)}`));
    return whilePaused(ctx, c.Id, pause, () => fn(mount.src, clean.slice(mount.dest.length) || "/"));
  }
  const images = await ctx.deps.images();
  if (!c.State.Running) return images.layers.withMount(c.RwLayer, (root) => fn(root, clean));
  return whilePaused(ctx, c.Id, pause, () => fn(ctx.rootfsOf(c), clean));
}

/**
 * A missing path is reported as dockerd words it, with the path the client asked for (not the
 * one inside a mount) and the container as the client named it.
 */
async function namedErrors<T>(container: string, path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof EngineError && err.code === "not-found" && err.message.startsWith("Could not find the file")) throw notFound(`Could not find the file ${path} in container ${container}`);
    throw err;
  }
}

/** The stat header's object: the entry's stat with the name the client asked for. */
function statOf(ctx: ContainerContext, root: string, inner: string, path: string): PathStat & { name: string } {
  return { ...statPath(ctx.deps.sys, root, inner, path), name: posix.basename(posix.normalize(`/${path}`)) || "/" };
}

/** `HEAD /containers/{id}/archive`: the stat of `path`. */
export function pathStat(ctx: ContainerContext, ref: string, path: string): Promise<PathStat & { name: string }> {
  return namedErrors(ref, path, () => withRoot(ctx, ref, path, async (root, inner) => statOf(ctx, root, inner, path), { action: "archive-path", path }));
}

/** `GET /containers/{id}/archive`: `path` as a tar, its stat given to `begin` before the first chunk. */
export function readArchive(ctx: ContainerContext, ref: string, path: string, begin: (stat: PathStat & { name: string }) => { write(chunk: Uint8Array): Promise<void> | void; end(): void }): Promise<void> {
  return namedErrors(ref, path, () =>
    withRoot(
      ctx,
      ref,
      path,
      async (root, inner) => {
        const out = begin(statOf(ctx, root, inner, path));
        for await (const chunk of archivePath(ctx.deps.sys, root, inner, path)) await out.write(chunk);
        out.end();
      },
      { action: "archive-path", path },
    ),
  );
}

/** `PUT /containers/{id}/archive`: extract `tar` into directory `path` (refused on a read-only root). */
export function writeArchive(ctx: ContainerContext, ref: string, path: string, tar: AsyncIterable<Uint8Array>): Promise<void> {
  const c = ctx.store.get(ref);
  if (c.HostConfig.ReadonlyRootfs) throw new EngineError("permission-denied", "container rootfs is marked read-only");
  return namedErrors(ref, path, () => withRoot(ctx, ref, path, (root, inner) => extractTo(ctx.deps.sys, root, inner, tar), { action: "extract-to-dir", path }));
}

/** `GET /containers/{id}/changes`, sorted by path, with the directories holding a change. */
export async function changes(ctx: ContainerContext, ref: string): Promise<{ Path: string; Kind: number }[]> {
  const c = ctx.store.get(ref);
  const images = await ctx.deps.images();
  // What the engine itself puts there (mount points, the /etc files it binds) is not a change
  // of the container's, as Docker's init layer keeps it out of sight.
  const hidden = new Set(["/dev", "/proc", "/sys", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/.dockerenv", ...(c.MountPoints ?? []).map((m) => m.Destination)]);
  const own = (await images.layers.changes(c.RwLayer)).filter((x) => !hidden.has(x.path) && !x.path.startsWith("/dev/") && !x.path.startsWith("/proc/") && !x.path.startsWith("/sys/")).map((x) => ({ Path: x.path, Kind: x.kind }));
  // A directory holding a change is itself changed (Docker lists `C /etc` above `A /etc/x`),
  // unless it is new or gone itself.
  const listed = new Set(own.map((x) => x.Path));
  for (const x of [...own]) {
    for (let p = x.Path.slice(0, x.Path.lastIndexOf("/")); p; p = p.slice(0, p.lastIndexOf("/"))) {
      if (listed.has(p)) break;
      listed.add(p);
      own.push({ Path: p, Kind: 0 });
    }
  }
  return own.sort((a, b) => (a.Path < b.Path ? -1 : a.Path > b.Path ? 1 : 0));
}

/** `GET /containers/{id}/export`: the container's whole filesystem as a tar. */
export async function* exportFs(ctx: ContainerContext, ref: string): AsyncGenerator<Uint8Array> {
  const c = ctx.store.get(ref);
  const images = await ctx.deps.images();
  yield* images.layers.exportTar(c.RwLayer);
  ctx.publish(c, "export");
}
