/**
 * `POST /commit`: the container's writable layer as a new image on top of its image, the
 * container paused meanwhile (unless asked not to), without the mount points the engine made.
 */
import { EngineError } from "../errors.ts";
import type { ContainerContext } from "./context.ts";
import { thaw } from "./files.ts";

/** What a commit is asked for (the query of `POST /commit` and its body's config). */
export interface CommitOptions {
  repo?: string;
  tag?: string;
  comment?: string;
  author?: string;
  pause?: boolean;
  changes?: string[];
  config?: Record<string, unknown>;
  createdBy?: string;
  exactConfig?: boolean;
  /** Keep the /dev, /proc and /sys mount-point directories the runtime made (BuildKit's RUN layers hold them). */
  keepMountDirs?: boolean;
  /** Paths (no leading slash) left out of the layer, with their parent directories: a build step's mount targets. */
  dropPaths?: string[];
}

/**
 * Paths the runtime creates in a container's root only as mount points (Docker keeps them in an
 * "init" layer below the container's): left out of committed layers, so a commit or a build step
 * holds only what the container itself wrote.
 */
const MOUNT_POINTS = new Set(["dev/", "proc/", "sys/", "etc/hostname", "etc/hosts", "etc/resolv.conf", ".dockerenv"]);

const MOUNT_DIRS = new Set(["dev/", "proc/", "sys/"]);

async function* withoutMountPoints(diff: AsyncIterable<Uint8Array>, keepDirs = false, dropPaths: string[] = []): AsyncGenerator<Uint8Array> {
  const { readTar, writeTar } = await import("../layer/tar-stream.ts");
  // A mount target the runtime created, and the directories made to hold it (a parent that
  // was only touched loses nothing but its times by being left out).
  const targets = new Set(dropPaths.map((p) => p.replace(/\/+$/, "")));
  const parents = new Set(
    [...targets].flatMap((p) =>
      p
        .split("/")
        .slice(0, -1)
        .map((_, i, a) => a.slice(0, i + 1).join("/")),
    ),
  );
  const dropped = (name: string, type: string, size: number) => {
    const n = name.replace(/\/+$/, "");
    return (targets.has(n) && (type === "directory" || size === 0)) || (parents.has(n) && type === "directory");
  };
  async function* kept() {
    for await (const e of readTar(diff)) {
      const name = e.header.name.replace(/^\.\//, "");
      if ((MOUNT_POINTS.has(name) && !(keepDirs && MOUNT_DIRS.has(name)) && (e.header.type === "directory" || e.header.size === 0)) || dropped(name, e.header.type, e.header.size)) {
        for await (const _ of e.body) void _;
        continue;
      }
      yield { header: e.header, body: e.body };
    }
  }
  yield* writeTar(kept());
}

/** Freeze `id` for a commit: false when it exited between its record and the pause (nothing to freeze). */
function tryPause(ctx: ContainerContext, id: string): boolean {
  try {
    ctx.deps.runtime.pause(id);
    return true;
  } catch (err) {
    if (!(err instanceof EngineError && (err.code === "failed-precondition" || err.code === "not-found"))) throw err;
    return false;
  }
}

/** `POST /commit`: the new image's ID. */
export async function commitContainer(ctx: ContainerContext, ref: string, opts: CommitOptions): Promise<string> {
  const c = ctx.store.get(ref);
  const images = await ctx.deps.images();
  const base = images.image(c.Image);
  const pause = (opts.pause ?? true) && c.State.Running && !c.State.Paused && tryPause(ctx, c.Id);
  try {
    const { applyChanges } = await import("../image/config-changes.ts");
    let config: Record<string, unknown> = opts.exactConfig ? { ...(opts.config ?? {}) } : { ...c.Config, ...(opts.config ?? {}) };
    delete config.Hostname;
    if (opts.changes?.length) config = applyChanges(config, opts.changes);
    const id = await images.commit(base, withoutMountPoints(images.layers.diff(c.RwLayer), opts.keepMountDirs, opts.dropPaths), {
      config,
      containerId: c.Id,
      containerConfig: { ...c.Config },
      ...(opts.repo ? { repo: opts.repo } : {}),
      ...(opts.tag ? { tag: opts.tag } : {}),
      ...(opts.comment ? { comment: opts.comment } : {}),
      ...(opts.author ? { author: opts.author } : {}),
      ...(opts.createdBy ? { createdBy: opts.createdBy } : {}),
    });
    ctx.publish(c, "commit", { comment: opts.comment ?? "" });
    return id;
  } finally {
    if (pause) thaw(ctx, c.Id);
  }
}
