/**
 * The classic builder behind `POST /build`: the context (a tar, optionally compressed) read
 * whole and unpacked with the secure layer code into a private directory, `.dockerignore`
 * applied, the Dockerfile found (moby's removeDockerfile rules), then the build run with its
 * output as the classic builder's `stream`, `aux` and `errorDetail` messages.
 */
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, posix } from "node:path";
import type { ContainerService } from "../container/container-service.ts";
import { EngineError, invalidArgument, messageOf } from "../errors.ts";
import type { ImageService } from "../image/image-service.ts";
import type { Sys } from "../sys/sys.ts";
import type { BuildEvents, BuildOptions } from "./build-types.ts";
import type { CacheMounts } from "./cache-mounts.ts";

/** What the build service uses. */
export interface BuildDeps {
  images: () => Promise<ImageService>;
  containers: () => Promise<ContainerService>;
  sys: () => Sys;
  /** Where contexts are unpacked (a private directory each). */
  tmpRoot: string;
  /** The build cache's index file. */
  cacheFile: string;
  /** RUN --mount=type=cache directories. */
  cacheMounts?: CacheMounts;
}

/** A build request, parsed at the API's edge. */
export interface BuildRequest {
  dockerfile: string;
  tags: string[];
  buildArgs: Record<string, string | null>;
  labels: Record<string, string>;
  cacheFrom: string[];
  extraHosts: string[];
  target?: string;
  noCache: boolean;
  pull: boolean;
  network?: string;
  quiet: boolean;
  /** Secrets for RUN --mount=type=secret (the BuildKit session's). */
  secret?: (id: string) => Promise<Uint8Array | undefined>;
  /** Entitlements the client was granted (`security.insecure`, `network.host`). */
  entitlements?: string[];
  /** BuildKit's automatic platform ARGs. */
  platformArgs?: Record<string, string>;
  /** SSH agent forwarding for RUN --mount=type=ssh (the BuildKit session's). */
  sshAgent?: BuildOptions["sshAgent"];
  /** The platform to build for when it is not the host's (run under its emulator). */
  platform?: string;
  /** Named build contexts: an image or a directory per name. */
  namedContexts?: Record<string, { image: string } | { dir: string }>;
}

/** Remove what `.dockerignore` excludes (the Dockerfile and .dockerignore stay, as Docker keeps them). */
async function applyDockerignore(dir: string, keep: string[]): Promise<(path: string) => boolean> {
  const file = join(dir, ".dockerignore");
  if (!existsSync(file)) return () => false;
  const { DockerIgnore } = await import("./dockerignore.ts");
  const ig = new DockerIgnore(readFileSync(file, "utf8"));
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const p = rel ? `${rel}/${name}` : name;
      if (keep.includes(p)) continue;
      const isDir = lstatSync(join(dir, p)).isDirectory();
      if (ig.excludes(p)) {
        if (isDir && ig.hasExceptionsUnder(p)) walk(p);
        else rmSync(join(dir, p), { recursive: true, force: true });
        continue;
      }
      if (isDir) walk(p);
    }
  };
  walk("");
  return (p) => ig.excludes(posix.normalize(`/${p}`).slice(1));
}

/** An unpacked build context: its directory, the Dockerfile's text, and its removal. */
export interface BuildContext {
  dir: string;
  dockerfileText: string;
  dispose(): void;
}

/** The builder's options both paths take from a request. */
function commonOptions(context: string, dockerfileText: string, r: BuildRequest) {
  return {
    context,
    dockerfile: r.dockerfile,
    dockerfileText,
    ...(r.cacheFrom.length ? { cacheFrom: r.cacheFrom } : {}),
    ...(r.extraHosts.length ? { extraHosts: r.extraHosts } : {}),
    buildArgs: r.buildArgs,
    labels: r.labels,
    ...(r.target ? { target: r.target } : {}),
    noCache: r.noCache,
    pull: r.pull,
    ...(r.network ? { network: r.network } : {}),
  };
}

/** The classic builder's service. */
export class BuildService {
  constructor(private readonly deps: BuildDeps) {}

  /**
   * Read the whole context before any output (clients such as the docker CLI expect that),
   * apply `.dockerignore`, and find the Dockerfile: 500 without one, 400 for an empty one.
   */
  async unpack(tar: AsyncIterable<Uint8Array>, dockerfile: string): Promise<BuildContext> {
    mkdirSync(this.deps.tmpRoot, { recursive: true, mode: 0o700 });
    const dir = mkdtempSync(join(this.deps.tmpRoot, "build-"));
    const dispose = () => rmSync(dir, { recursive: true, force: true });
    try {
      const [{ applyLayer }, { decompressStream }] = await Promise.all([import("../layer/apply.ts"), import("../layer/compression.ts")]);
      try {
        const { stream } = await decompressStream(tar);
        await applyLayer(this.deps.sys(), dir, stream, { whiteouts: "literal", chown: false, sync: false });
      } catch (err) {
        throw invalidArgument(`failed to read the build context: ${messageOf(err)}`);
      }
      const excluded = await applyDockerignore(dir, [dockerfile, ".dockerignore"]);
      // moby's removeDockerfile: the Dockerfile and .dockerignore reach the builder even when
      // excluded, then leave the context if .dockerignore names them (docker-py names an
      // out-of-context Dockerfile there).
      const dfFile = join(dir, posix.normalize(`/${dockerfile}`).slice(1));
      const dockerfileText = existsSync(dfFile) ? readFileSync(dfFile, "utf8") : undefined;
      for (const f of [".dockerignore", dockerfile]) if (excluded(f)) rmSync(join(dir, posix.normalize(`/${f}`).slice(1)), { force: true });
      // Before any output: dockerd answers 500 when there is no Dockerfile (an empty context, say).
      if (dockerfileText === undefined) throw new EngineError("internal", `Cannot locate specified Dockerfile: ${dockerfile}`);
      // An empty one (only blanks and comments) is refused before any output too, as dockerd does.
      if (!dockerfileText.split("\n").some((l) => l.trim() && !l.trim().startsWith("#"))) throw invalidArgument(`the Dockerfile (${dockerfile}) cannot be empty`);
      return { dir, dockerfileText, dispose };
    } catch (err) {
      dispose();
      throw err;
    }
  }

  /** Build from an unpacked context, sending the classic builder's messages to `send`. */
  async build(context: BuildContext, r: BuildRequest, send: (message: unknown) => void): Promise<void> {
    const [images, containers, { build, BuildError }] = await Promise.all([this.deps.images(), this.deps.containers(), import("./builder.ts")]);
    try {
      const id = await build(this.buildDeps(images, containers), {
        ...commonOptions(context.dir, context.dockerfileText, r),
        tags: r.tags,
        out: (text) => {
          if (!r.quiet) send({ stream: text });
        },
        pullImage: (name) => images.pull(name, { progress: (m) => (r.quiet ? undefined : send(m)) }).then(() => {}),
      });
      send({ aux: { ID: id } });
      if (r.quiet) send({ stream: `${id}\n` });
      else send({ stream: `Successfully built ${id.slice(7, 19)}\n` });
      for (const t of r.tags) {
        const shown = images.tag(id, t);
        if (!r.quiet) send({ stream: `Successfully tagged ${shown}\n` });
      }
    } catch (err) {
      const code = err instanceof BuildError ? err.exitCode : 1;
      send({ errorDetail: { code, message: messageOf(err) }, error: messageOf(err) });
    }
  }

  private buildDeps(images: ImageService, containers: ContainerService) {
    return { sys: this.deps.sys(), images, containers, cacheFile: this.deps.cacheFile, scratchRoot: this.deps.tmpRoot, ...(this.deps.cacheMounts ? { cacheMounts: this.deps.cacheMounts } : {}) };
  }

  /** A private scratch directory under the daemon's tmp root, and its removal. */
  scratch(prefix: string): { dir: string; dispose(): void } {
    mkdirSync(this.deps.tmpRoot, { recursive: true, mode: 0o700 });
    const dir = mkdtempSync(join(this.deps.tmpRoot, prefix));
    return { dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
  }

  /**
   * Build from a context directory for the BuildKit path: step events instead of the classic
   * messages, nothing tagged; resolves with the image ID and its config.
   */
  async buildImage(dir: string, dockerfileText: string, r: BuildRequest, hooks: { events: BuildEvents; out: (text: string) => void }): Promise<{ id: string; config: unknown }> {
    const [images, containers, { build }] = await Promise.all([this.deps.images(), this.deps.containers(), import("./builder.ts")]);
    const id = await build(this.buildDeps(images, containers), {
      ...commonOptions(dir, dockerfileText, r),
      tags: [],
      out: hooks.out,
      events: hooks.events,
      buildkitLayers: true,
      ...(r.secret ? { secret: r.secret } : {}),
      ...(r.entitlements ? { entitlements: r.entitlements } : {}),
      ...(r.platformArgs ? { platformArgs: r.platformArgs } : {}),
      ...(r.namedContexts ? { namedContexts: r.namedContexts } : {}),
      ...(r.sshAgent ? { sshAgent: r.sshAgent } : {}),
      pullImage: (name, platform) => images.pull(name, { ...(platform ? { platform } : {}), progress: () => {} }).then(() => {}),
      ...(r.platform ? { platform: r.platform } : {}),
    });
    return { id, config: images.image(id).config };
  }

  /** `fn` with the root filesystem of image `id` mounted read-only in spirit (a transient container's, removed after). */
  async withImageRoot<T>(id: string, fn: (root: string) => Promise<T>): Promise<T> {
    const [{ withImageRootOf }, containers] = await Promise.all([import("./build-steps.ts"), this.deps.containers()]);
    return withImageRootOf(containers, id, fn);
  }

  /** Tag `id` with each name; the names as stored (`docker.io/library/x:latest` shown as Docker does). */
  async tag(id: string, names: string[]): Promise<string[]> {
    const images = await this.deps.images();
    return names.map((n) => images.tag(id, n));
  }

  /** The build cache as BuildKit lists it: intermediate images (`regular`) and cache mounts (`exec.cachemount`). */
  async usage(): Promise<{ id: string; type: string; size: number; createdAt: number; lastUsedAt?: number; inUse: boolean; description: string }[]> {
    const images = (await this.deps.images()).buildCacheUsage().map((r) => ({ id: r.ID, type: r.Type, size: r.Size, createdAt: Date.parse(r.CreatedAt) || 0, inUse: r.InUse, description: r.Description }));
    const mounts = (this.deps.cacheMounts?.list() ?? []).map((r) => ({
      id: r.shortId,
      type: "exec.cachemount",
      size: r.size,
      createdAt: r.createdAt,
      lastUsedAt: r.lastUsedAt,
      inUse: r.inUse,
      description: `cached mount ${r.id}`,
    }));
    return [...images, ...mounts];
  }

  /** `POST /build/prune`. */
  async prune(): Promise<{ CachesDeleted: string[]; SpaceReclaimed: number }> {
    const images = await (await this.deps.images()).pruneBuildCache();
    const mounts = this.deps.cacheMounts?.prune() ?? { removed: [], reclaimed: 0 };
    return { CachesDeleted: [...images.CachesDeleted, ...mounts.removed.map((r) => r.shortId)], SpaceReclaimed: images.SpaceReclaimed + mounts.reclaimed };
  }
}
