/**
 * The Dockerfile builder with the classic builder's semantics and output. Each instruction
 * gives an image (the build cache): RUN runs in a build container made from the stage's image and
 * commits its writable layer; COPY and ADD write into a container's root (resolved inside it, so
 * a symlink in the image cannot lead out) and commit; the other instructions only change the
 * config. A step is reused when its parent image, its instruction (after substitution), the
 * build args it sees and, for COPY/ADD, a checksum of its sources (names, modes, owners, bytes)
 * are unchanged; the cache index lives on disk, so it survives daemon restarts.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, posix } from "node:path";

import { invalidArgument } from "../errors.ts";
import type { ImageService } from "../image/image-service.ts";
import type { ImageRecord } from "../image/image-store.ts";
import { formatReference, parseWithDefaultTag } from "../image/reference.ts";

import { type Instruction, parseDockerfile } from "./dockerfile.ts";
import { expandWord, parseKeyValues } from "./shell-lex.ts";

import { BuildCache, type BuildDeps, BuildError, type BuildOptions, type BuildRun, type Config, exists, namedDir, namedImage, PROXY_ARGS, short, type Stage } from "./build-types.ts";
import { configStep, emptyImage } from "./build-steps.ts";
import { dispatch } from "./instructions.ts";

export { BuildError, PROXY_ARGS } from "./build-types.ts";
export type { BuildDeps, BuildOptions } from "./build-types.ts";

/** Run one build; resolves with the final image ID. */
export async function build(deps: BuildDeps, opts: BuildOptions): Promise<string> {
  const dfPath = posix.normalize(`/${opts.dockerfile || "Dockerfile"}`).slice(1);
  const dfFull = join(opts.context, dfPath);
  if (opts.dockerfileText === undefined && !existsSync(dfFull)) throw new BuildError(`Cannot locate specified Dockerfile: ${opts.dockerfile || "Dockerfile"}`);
  const df = parseDockerfile(opts.dockerfileText ?? readFileSync(dfFull, "utf8"));
  // --cache-from: the named images and their ancestors are the only cache there is (an unknown
  // name brings nothing), as the classic builder's cache-from image cache does.
  const cacheFrom = opts.cacheFrom?.length ? cacheSources(deps.images, opts.cacheFrom) : undefined;
  const escape = df.escape;
  const cache = new BuildCache(deps.cacheFile);
  const usedArgs = new Set<string>();

  // Global ARGs (before the first FROM) and the stages.
  const globals = new Map<string, string>();
  const stagesText: Instruction[][] = [];
  let i = 0;
  for (; i < df.instructions.length && df.instructions[i]!.name !== "from"; i++) {
    const ins = df.instructions[i]!;
    if (ins.name !== "arg") throw new BuildError(`dockerfile parse error on line ${ins.line}: ${ins.name.toUpperCase()} before the first FROM: only ARG can precede FROM`);
    for (const [k, v] of parseKeyValues(ins.args, Object.fromEntries(globals), escape, "ARG")) {
      const given = opts.buildArgs[k];
      globals.set(k, given ?? (!v && !ins.args.includes("=") && opts.platformArgs?.[k] !== undefined ? opts.platformArgs[k]! : v));
      if (given !== undefined) usedArgs.add(k);
    }
  }
  for (; i < df.instructions.length; i++) {
    const ins = df.instructions[i]!;
    if (ins.name === "from") stagesText.push([]);
    stagesText.at(-1)!.push(ins);
  }
  if (!stagesText.length) throw new BuildError("No build stages in the Dockerfile: it needs a FROM");
  const names = stagesText.map((s) => /\s+as\s+(\S+)\s*$/i.exec(s[0]!.args)?.[1]?.toLowerCase());
  let last = stagesText.length - 1;
  if (opts.target) {
    last = names.indexOf(opts.target.toLowerCase());
    if (last < 0) throw new BuildError(`failed to reach build target ${opts.target} in Dockerfile`);
  }
  const metaArgs = df.instructions.slice(
    0,
    df.instructions.findIndex((x) => x.name === "from"),
  );
  const total = metaArgs.length + stagesText.slice(0, last + 1).reduce((n, s) => n + s.length, 0);
  let step = 0;
  // As moby: the ARGs before the first FROM are numbered steps too (they make no image).
  for (const a of metaArgs) opts.out(`Step ${++step}/${total} : ${a.original}\n`);
  const built: { name?: string; image: ImageRecord | undefined }[] = [];
  let stage: Stage | undefined;

  const run: BuildRun = { deps, opts, cache, cacheFrom, escape, usedArgs, globals, built };

  for (let n = 0; n <= last; n++) {
    const insts = stagesText[n]!;
    const from = insts[0]!;
    step++;
    opts.out(`Step ${step}/${total} : ${from.original}\n`);
    const where = { stage: n, ...(names[n] ? { stageName: names[n] } : {}), stages: last + 1, count: insts.length, keywords: insts.map((x) => x.name) };
    const fromArgs = Object.fromEntries(globals);
    const words = from.args.split(/\s+/);
    let baseName = expandWord(words[0]!, fromArgs, escape);
    if (!baseName) throw new BuildError(`base name (${words[0]}) should not be blank`);
    // A named build context replaces the image (or stage) FROM names.
    if (namedDir(opts, baseName.toLowerCase())) throw new BuildError(`FROM ${baseName}: a local directory as a named context cannot be a base image in Bunker's builder yet (use it with COPY --from or RUN --mount from=)`);
    baseName = namedImage(opts, baseName.toLowerCase()) ?? baseName;
    stage = { ...(names[n] ? { name: names[n] } : {}), config: {}, args: new Map(), cmdSet: false };
    const prior = built.find((b) => b.name === baseName.toLowerCase());
    opts.events?.step({ ...where, index: 1, text: from.original, base: prior || baseName === "scratch" ? baseName.toLowerCase() : fullName(baseName) });
    if (baseName === "scratch") stage.image = undefined;
    else if (prior) stage.image = prior.image;
    else {
      if (opts.pull || !exists(deps.images, baseName)) await opts.pullImage(baseName, opts.platform);
      stage.image = await platformImage(deps, opts, baseName, deps.images.image(baseName));
    }
    stage.config = structuredClone((stage.image?.config.config ?? {}) as Config);
    opts.out(stage.image ? ` ---> ${short(stage.image.id)}\n` : " ---> \n");
    const triggers = stage.config.OnBuild ?? [];
    if (triggers.length) {
      opts.out(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? "s" : ""}\n`);
      stage.config.OnBuild = [];
      for (const t of triggers) {
        const [trigger] = parseDockerfile(`${t}\n`).instructions;
        await dispatch(run, stage, trigger!, true);
      }
    }
    for (const [k, ins] of insts.slice(1).entries()) {
      step++;
      opts.out(`Step ${step}/${total} : ${ins.original}\n`);
      opts.events?.step({ ...where, index: k + 2, text: ins.original });
      await dispatch(run, stage, ins);
    }
    built.push({ ...(stage.name ? { name: stage.name } : {}), image: stage.image });
  }
  // Labels from the command line go on the final image.
  if (Object.keys(opts.labels).length) {
    stage!.config.Labels = { ...(stage!.config.Labels ?? {}), ...opts.labels };
    await configStep(
      run,
      stage!,
      `LABEL ${Object.entries(opts.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`,
    );
  }
  const unused = Object.keys(opts.buildArgs).filter((k) => !usedArgs.has(k) && !PROXY_ARGS.includes(k));
  if (unused.length) opts.out(`[Warning] One or more build-args [${unused.join(" ")}] were not consumed\n`);
  const finalImage = stage!.image ?? (await emptyImage(run));
  deps.images.markIntermediate(finalImage.id, false);
  return finalImage.id;
}

/** `os/arch[/variant]` of an image's config. */
function platformOf(img: ImageRecord): string {
  const c = img.config as { os?: string; architecture?: string; variant?: string };
  return [c.os ?? "linux", c.architecture ?? "amd64", ...(c.variant && c.architecture !== "arm64" ? [c.variant] : [])].join("/");
}

/**
 * The base image for the build's platform: the local one when it is for that platform, else the
 * platform's variant pulled; an error naming both when there is none.
 */
async function platformImage(deps: BuildDeps, opts: BuildOptions, name: string, local: ImageRecord): Promise<ImageRecord> {
  if (!opts.platform || platformOf(local) === opts.platform) return local;
  try {
    await opts.pullImage(name, opts.platform);
  } catch (err) {
    throw new BuildError(`${name} here is ${platformOf(local)}, not ${opts.platform}, and no ${opts.platform} variant could be pulled: ${(err as Error).message}`);
  }
  const pulled = deps.images.image(name);
  if (platformOf(pulled) !== opts.platform) throw new BuildError(`${name} is ${platformOf(pulled)}, not ${opts.platform}`);
  return pulled;
}

/** `busybox` as `docker.io/library/busybox:latest` (as BuildKit shows a base image); left as it is if it does not parse. */
function fullName(name: string): string {
  try {
    return formatReference(parseWithDefaultTag(name));
  } catch {
    return name;
  }
}

/** Go duration (`30s`, `1m30s`, `500ms`) in nanoseconds. */
export function parseDuration(s: string): number {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    const mult = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }[m[2] as "s"];
    total += Number(m[1]) * mult;
    consumed += m[0].length;
  }
  if (!consumed || consumed !== s.length) throw invalidArgument(`time: invalid duration "${s}"`);
  return Math.round(total);
}

/** The images `names` resolve to and all their ancestors (unknown names are skipped). */
function cacheSources(images: ImageService, names: string[]): Set<string> {
  const out = new Set<string>();
  for (const n of names) {
    let id: string | undefined;
    try {
      id = images.image(n).id;
    } catch {
      continue;
    }
    while (id && !out.has(id)) {
      out.add(id);
      try {
        id = images.image(id).parent;
      } catch {
        id = undefined;
      }
    }
  }
  return out;
}
