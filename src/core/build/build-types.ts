/**
 * The builder's shared types: what a build is asked and uses, a stage, the build cache index,
 * a build's running state, and the classic builder's error with a RUN's exit code.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { posix } from "node:path";
import { writeFileAtomic } from "../atomic-file.ts";
import type { ContainerService } from "../container/container-service.ts";

import { EngineError } from "../errors.ts";
import type { ImageService } from "../image/image-service.ts";
import type { ImageRecord } from "../image/image-store.ts";

import { type Sys } from "../sys/sys.ts";

/** Build-args usable without an ARG line, and not written to history (Docker's list). */
export const PROXY_ARGS = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"];

/** A failed build; `code` is a failing RUN's exit status. */
export class BuildError extends EngineError {
  constructor(
    message: string,
    readonly exitCode = 1,
    /** A failing RUN's command as it ran (for BuildKit's wording of the failure). */
    readonly command?: string,
  ) {
    super("invalid-argument", message);
  }
}

/** What a build is asked to do. */
export interface BuildOptions {
  /** The extracted context directory. */
  context: string;
  dockerfile: string;
  tags: string[];
  buildArgs: Record<string, string | null>;
  labels: Record<string, string>;
  target?: string;
  noCache: boolean;
  pull: boolean;
  network?: string;
  /** The Dockerfile's text, when it was read before the context was trimmed (.dockerignore may name it). */
  dockerfileText?: string;
  /** `--cache-from`: only these images (and the steps they were built from) may be cache hits. */
  cacheFrom?: string[];
  /** `--add-host host:ip` entries for RUN containers' /etc/hosts. */
  extraHosts?: string[];
  /** Output lines (the classic builder's `stream` messages). */
  out: (text: string) => void;
  /** Pull an image that is missing (FROM), with progress shown; for `platform` when given. */
  pullImage: (name: string, platform?: string) => Promise<void>;
  /** The platform to build for (`linux/arm64`) when it is not the host's: RUN steps run under its binfmt_misc emulator. */
  platform?: string;
  /** Named build contexts (`--build-context name=…`): an image to use for `name`, or a directory. */
  namedContexts?: Record<string, { image: string } | { dir: string }>;
  /** BuildKit's automatic platform ARGs (TARGETPLATFORM, BUILDARCH, …): an ARG without a default takes these. */
  platformArgs?: Record<string, string>;
  /** A secret by ID for RUN `--mount=type=secret` (the BuildKit session's); undefined when it has none. */
  secret?: (id: string) => Promise<Uint8Array | undefined>;
  /** A socket forwarding to the client's SSH agent `id` for RUN `--mount=type=ssh`; throws (with the reason) when it has none. */
  sshAgent?: (id: string, owner: { uid: number; gid: number; mode: number }) => Promise<{ path: string; close(): void }>;
  /** Entitlements the client asked for and the daemon grants (`security.insecure`, `network.host`). */
  entitlements?: string[];
  /** Layers as BuildKit's Dockerfile frontend makes them: a RUN layer keeps the /dev, /proc and /sys mount points. */
  buildkitLayers?: boolean;
  /** Step-level progress for BuildKit's status stream (the gRPC path); `out` still gets the text. */
  events?: BuildEvents;
}

/** A step as BuildKit's progress shows it. */
export interface BuildStep {
  /** The stage's index and name (`AS name`), and how many stages will be built. */
  stage: number;
  stageName?: string;
  stages: number;
  /** The step's position in its stage (FROM is 1) and the stage's step count. */
  index: number;
  count: number;
  /** The stage's instruction keywords in order (lower case), FROM first. */
  keywords: string[];
  /** FROM's base image as resolved (`docker.io/library/busybox:latest`), or the stage it names. */
  base?: string;
  /** The instruction as written. */
  text: string;
}

/** Step-level progress callbacks. */
export interface BuildEvents {
  /** A step starts (the previous one, if any, is complete). */
  step(step: BuildStep): void;
  /** The current step was a cache hit. */
  cached(): void;
  /** Output of the current step's RUN (1 stdout, 2 stderr). */
  output(stream: 1 | 2, data: Uint8Array): void;
}

/** Services the builder uses. */
export interface BuildDeps {
  sys: Sys;
  images: ImageService;
  containers: ContainerService;
  /** The cache index file. */
  cacheFile: string;
  /** RUN `--mount=type=cache` directories (absent: such mounts are refused). */
  cacheMounts?: import("./cache-mounts.ts").CacheMounts;
  /** Where scratch copies (read-write binds) go; the system temp directory when absent. */
  scratchRoot?: string;
}

export type Config = Record<string, unknown> & {
  Env?: string[];
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object>;
  Labels?: Record<string, string>;
  OnBuild?: string[] | null;
  Shell?: string[];
  Healthcheck?: Record<string, unknown>;
  StopSignal?: string;
};

export interface Stage {
  name?: string;
  image?: ImageRecord;
  config: Config;
  /** ARG values declared in this stage. */
  args: Map<string, string>;
  /** True once CMD was set in this stage (ENTRYPOINT then keeps it). */
  cmdSet: boolean;
  author?: string;
}

export const short = (id: string) => id.replace(/^sha256:/, "").slice(0, 12);
export const sha256 = (s: string) => new Bun.CryptoHasher("sha256").update(s).digest("hex");

/** The cache index: step key → image ID. */
export class BuildCache {
  private map: Record<string, string>;
  constructor(private readonly file: string) {
    this.map = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, string>) : {};
  }
  get(key: string): string | undefined {
    return this.map[key];
  }
  set(key: string, id: string): void {
    this.map[key] = id;
    mkdirSync(posix.dirname(this.file), { recursive: true });
    writeFileAtomic(this.file, JSON.stringify(this.map), 0o600, { durable: false });
  }
}

/** One build's state, shared by its steps. */
export interface BuildRun {
  deps: BuildDeps;
  opts: BuildOptions;
  cache: BuildCache;
  /** `--cache-from`'s images and their ancestors, when given: the only cache hits allowed. */
  cacheFrom: Set<string> | undefined;
  /** The Dockerfile's escape character. */
  escape: string;
  /** Build args some ARG consumed (the others are warned about). */
  usedArgs: Set<string>;
  /** ARGs before the first FROM. */
  globals: Map<string, string>;
  /** The stages built so far, by name. */
  built: { name?: string; image: ImageRecord | undefined }[];
  /** The empty image of FROM scratch, once made. */
  empty?: ImageRecord;
}

/** Whether the image store has `name`. */
export function exists(images: ImageService, name: string): boolean {
  try {
    images.image(name);
    return true;
  } catch {
    return false;
  }
}

/** The directory a named build context stands for, if `name` is one. */
export function namedDir(opts: BuildOptions, name: string): string | undefined {
  const c = opts.namedContexts?.[name];
  return c && "dir" in c ? c.dir : undefined;
}

/** The image a named build context stands for, if `name` is one. */
export function namedImage(opts: BuildOptions, name: string): string | undefined {
  const c = opts.namedContexts?.[name];
  return c && "image" in c ? c.image : undefined;
}
