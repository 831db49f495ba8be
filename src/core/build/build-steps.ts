/**
 * The steps every instruction builds on: a step's image (a cache hit or a new one), config-only
 * steps, the build container made from a stage's image, the empty image of FROM scratch.
 */

import type { ImageRecord } from "../image/image-store.ts";
import { ignore } from "../log.ts";
import type { ContainerService } from "../container/container-service.ts";

import { type BuildRun, exists, namedImage, PROXY_ARGS, sha256, short, type Stage } from "./build-types.ts";

/** The stage's environment (and, with `withArgs`, its build args) as a map. */
export function envOf(s: Stage, withArgs: boolean): Record<string, string> {
  const env: Record<string, string> = {};
  if (withArgs) for (const [k, v] of s.args) env[k] = v;
  for (const e of s.config.Env ?? []) {
    const eq = e.indexOf("=");
    env[e.slice(0, eq)] = e.slice(eq + 1);
  }
  return env;
}

/** The stage's build args as `K=V` for history (proxy args left out). */
export function argsText(s: Stage): string[] {
  return [...s.args].filter(([k]) => !PROXY_ARGS.includes(k)).map(([k, v]) => `${k}=${v}`);
}

/** Record a step's image: a cache hit or a new one made by `make`. */
export async function stepImage(run: BuildRun, s: Stage, key: string, make: () => Promise<string>): Promise<void> {
  const { deps, opts, cache, cacheFrom } = run;
  const parent = s.image?.id ?? "scratch";
  // BuildKit-style layers differ from classic ones (RUN keeps its mount points): separate caches.
  const cacheKey = sha256(`${opts.buildkitLayers ? "buildkit\n" : ""}${parent}\n${key}`);
  const hit = opts.noCache ? undefined : cache.get(cacheKey);
  if (hit && exists(deps.images, hit) && (!cacheFrom || cacheFrom.has(hit))) {
    opts.out(" ---> Using cache\n");
    opts.events?.cached();
    s.image = deps.images.image(hit);
  } else {
    const id = await make();
    deps.images.markIntermediate(id, true, s.image?.id);
    cache.set(cacheKey, id);
    s.image = deps.images.image(id);
  }
  opts.out(` ---> ${short(s.image.id)}\n`);
}

/** A config-only step. */
export async function configStep(run: BuildRun, s: Stage, text: string) {
  const { deps } = run;
  await stepImage(run, s, `#(nop) ${text}`, () => deps.images.derive(s.image, s.config, { created_by: `/bin/sh -c #(nop)  ${text}`, empty_layer: true }, s.author ? { author: s.author } : {}));
}

/** The stage's SHELL (default `/bin/sh -c`). */
export function shellOf(s: Stage): string[] {
  return s.config.Shell ?? ["/bin/sh", "-c"];
}

/** A container from the stage's image, for RUN and for writing files. */
export async function container(run: BuildRun, s: Stage, cmd: string[] | null, env: string[], host: Record<string, unknown> = {}) {
  const { deps, opts } = run;
  const image = s.image ?? (await emptyImage(run));
  const body = {
    Image: image.id,
    Cmd: cmd ?? ["#(nop)"], // never started when only its root is written
    Entrypoint: [],
    Env: env,
    User: s.config.User ?? "",
    WorkingDir: s.config.WorkingDir ?? "",
    AttachStdout: true,
    AttachStderr: true,
    HostConfig: { NetworkMode: opts.network || "default", ...(opts.extraHosts?.length ? { ExtraHosts: opts.extraHosts } : {}), ...host },
  };
  const { Id } = await deps.containers.create(body, undefined, undefined, undefined, { transient: true });
  return Id;
}

/** The empty image a FROM scratch stage starts from (made once per build). */
export async function emptyImage(run: BuildRun): Promise<ImageRecord> {
  return (run.empty ??= run.deps.images.image(await run.deps.images.derive(undefined, {}, { created_by: "", empty_layer: true })));
}

/** `--from`: an earlier stage (by name or index), else an image (pulled when missing). */
export async function fromImage(run: BuildRun, from: string): Promise<ImageRecord> {
  const named = namedImage(run.opts, from);
  if (named) {
    if (!exists(run.deps.images, named)) await run.opts.pullImage(named);
    return run.deps.images.image(named);
  }
  const byName = run.built.find((b, n) => b.name === from || String(n) === from);
  if (byName) return byName.image ?? (await emptyImage(run));
  if (!exists(run.deps.images, from)) await run.opts.pullImage(from);
  return run.deps.images.image(from);
}

/** `fn` with the root of image `imageId` mounted, through a transient container removed after. */
export async function withImageRootOf<T>(containers: ContainerService, imageId: string, fn: (root: string) => Promise<T>): Promise<T> {
  const { Id } = await containers.create({ Image: imageId, Cmd: ["true"], Entrypoint: [] }, undefined, undefined, undefined, { transient: true });
  try {
    return await containers.withRoot(Id, "/", (root) => fn(root));
  } finally {
    await containers.remove(Id, { force: true }).catch(ignore("image root container removal failed"));
  }
}
