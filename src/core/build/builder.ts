/**
 * The Dockerfile builder with the classic builder's semantics and output. Each instruction
 * gives an image (the build cache): RUN runs in a build container made from the stage's image and
 * commits its writable layer; COPY and ADD write into a container's root (resolved inside it, so
 * a symlink in the image cannot lead out) and commit; the other instructions only change the
 * config. A step is reused when its parent image, its instruction (after substitution), the
 * build args it sees and, for COPY/ADD, a checksum of its sources (names, modes, owners, bytes)
 * are unchanged; the cache index lives on disk, so it survives daemon restarts.
 */
import { closeSync, createReadStream, existsSync, fstatSync, mkdirSync, readdirSync, readFileSync, readSync } from "node:fs";
import { join, posix } from "node:path";
import { writeFileAtomic } from "../atomic-file.ts";
import type { ContainerService } from "../container/container-service.ts";
import { extractTo, mkdirInRoot, sourceEntries } from "../container/archive.ts";
import { resolveUser } from "../container/user.ts";
import { Digester } from "../content/digest.ts";
import { EngineError, invalidArgument } from "../errors.ts";
import type { ImageService } from "../image/image-service.ts";
import type { ImageRecord } from "../image/image-store.ts";
import { decompressStream, detectCompression } from "../layer/compression.ts";
import { type TarInput, writeTar } from "../layer/tar-stream.ts";
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW, O_PATH, O_RDONLY, RESOLVE_IN_ROOT, type Sys } from "../sys/sys.ts";
import { type Instruction, parseDockerfile } from "./dockerfile.ts";
import { expandFields, expandWord, parseKeyValues } from "./shell-lex.ts";

/** Build-args usable without an ARG line, and not written to history (Docker's list). */
export const PROXY_ARGS = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"];

/** A failed build; `code` is a failing RUN's exit status. */
export class BuildError extends EngineError {
  constructor(
    message: string,
    readonly exitCode = 1,
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
  /** Pull an image that is missing (FROM), with progress shown. */
  pullImage: (name: string) => Promise<void>;
}

/** Services the builder uses. */
export interface BuildDeps {
  sys: Sys;
  images: ImageService;
  containers: ContainerService;
  /** The cache index file. */
  cacheFile: string;
}

type Config = Record<string, unknown> & {
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

interface Stage {
  name?: string;
  image?: ImageRecord;
  config: Config;
  /** ARG values declared in this stage. */
  args: Map<string, string>;
  /** True once CMD was set in this stage (ENTRYPOINT then keeps it). */
  cmdSet: boolean;
  author?: string;
}

const short = (id: string) => id.replace(/^sha256:/, "").slice(0, 12);
const sha256 = (s: string) => new Bun.CryptoHasher("sha256").update(s).digest("hex");

/** The cache index: step key → image ID. */
class BuildCache {
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
      globals.set(k, given ?? v);
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
  const metaArgs = df.instructions.slice(0, df.instructions.findIndex((x) => x.name === "from"));
  const total = metaArgs.length + stagesText.slice(0, last + 1).reduce((n, s) => n + s.length, 0);
  let step = 0;
  // As moby: the ARGs before the first FROM are numbered steps too (they make no image).
  for (const a of metaArgs) opts.out(`Step ${++step}/${total} : ${a.original}\n`);
  const built: { name?: string; image: ImageRecord | undefined }[] = [];
  let stage: Stage | undefined;

  const envOf = (s: Stage, withArgs: boolean): Record<string, string> => {
    const env: Record<string, string> = {};
    if (withArgs) for (const [k, v] of s.args) env[k] = v;
    for (const e of s.config.Env ?? []) {
      const eq = e.indexOf("=");
      env[e.slice(0, eq)] = e.slice(eq + 1);
    }
    return env;
  };
  const argsText = (s: Stage) => [...s.args].filter(([k]) => !PROXY_ARGS.includes(k)).map(([k, v]) => `${k}=${v}`);

  /** Record a step's image: a cache hit or a new one made by `make`. */
  const stepImage = async (s: Stage, key: string, make: () => Promise<string>): Promise<void> => {
    const parent = s.image?.id ?? "scratch";
    const cacheKey = sha256(`${parent}\n${key}`);
    const hit = opts.noCache ? undefined : cache.get(cacheKey);
    if (hit && exists(deps.images, hit) && (!cacheFrom || cacheFrom.has(hit))) {
      opts.out(" ---> Using cache\n");
      s.image = deps.images.image(hit);
    } else {
      const id = await make();
      deps.images.markIntermediate(id, true, s.image?.id);
      cache.set(cacheKey, id);
      s.image = deps.images.image(id);
    }
    opts.out(` ---> ${short(s.image.id)}\n`);
  };

  /** A config-only step. */
  const configStep = async (s: Stage, text: string) => {
    await stepImage(s, `#(nop) ${text}`, () => deps.images.derive(s.image, s.config, { created_by: `/bin/sh -c #(nop)  ${text}`, empty_layer: true }, s.author ? { author: s.author } : {}));
  };

  const shellOf = (s: Stage) => s.config.Shell ?? ["/bin/sh", "-c"];

  /** A container from the stage's image, for RUN and for writing files. */
  const container = async (s: Stage, cmd: string[] | null, env: string[]) => {
    const image = s.image ?? (await emptyImage());
    const body = {
      Image: image.id,
      Cmd: cmd ?? ["#(nop)"], // never started when only its root is written
      Entrypoint: [],
      Env: env,
      User: s.config.User ?? "",
      WorkingDir: s.config.WorkingDir ?? "",
      AttachStdout: true,
      AttachStderr: true,
      HostConfig: { NetworkMode: opts.network || "default", ...(opts.extraHosts?.length ? { ExtraHosts: opts.extraHosts } : {}) },
    };
    const { Id } = await deps.containers.create(body);
    return Id;
  };
  let empty: ImageRecord | undefined;
  const emptyImage = async () => (empty ??= deps.images.image(await deps.images.derive(undefined, {}, { created_by: "", empty_layer: true })));

  const dispatch = async (s: Stage, ins: Instruction, fromOnbuild = false): Promise<void> => {
    const env = () => envOf(s, true);
    const word = (w: string) => expandWord(w, env(), escape);
    switch (ins.name) {
      case "run": {
        const shell = shellOf(s);
        let cmd: string[];
        if (ins.json) cmd = ins.json;
        else {
          // `RUN <<EOF` alone runs the document as the script; `RUN cmd <<EOF` gives it to the shell as a here-document.
          const only = ins.heredocs.length === 1 && /^<<-?(["']?)\w+\1$/.test(ins.args.trim());
          const script = only ? ins.heredocs[0]!.content : ins.heredocs.length ? `${ins.args}\n${ins.heredocs.map((h) => `${h.content}${h.name}`).join("\n")}` : ins.args;
          cmd = [...shell, script];
        }
        const args = argsText(s);
        const createdBy = `${args.length ? `|${args.length} ${args.join(" ")} ` : ""}${ins.json ? JSON.stringify(cmd) : cmd.join(" ")}`.trim();
        const history = `${args.length ? `|${args.length} ${args.join(" ")} ` : ""}${cmd.join(" ")}`;
        await stepImage(s, `RUN ${createdBy}`, async () => {
          const runEnv = [...(s.config.Env ?? []), ...[...s.args].filter(([k]) => !(s.config.Env ?? []).some((e) => e.startsWith(`${k}=`))).map(([k, v]) => `${k}=${v}`)];
          const id = await container(s, cmd, runEnv);
          opts.out(` ---> Running in ${short(id)}\n`);
          try {
            const done = deps.containers.wait(id, "next-exit");
            // stderr in red, as the classic builder marks it (docker-py's tests look for the escapes).
            const att = deps.containers.attach(id, { stdin: false }, { data: (rec) => opts.out(rec.stream === 2 ? `\x1b[91m${new TextDecoder().decode(rec.data)}\x1b[0m` : new TextDecoder().decode(rec.data)), end: () => {} });
            await deps.containers.start(id);
            const code = await done;
            att.detach();
            if (code !== 0) throw new BuildError(`The command '${ins.json ? JSON.stringify(cmd) : cmd.join(" ")}' returned a non-zero code: ${code}`, code);
            return await deps.containers.commit(id, { config: s.config, exactConfig: true, pause: false, createdBy: history, ...(s.author ? { author: s.author } : {}) });
          } finally {
            await deps.containers.remove(id, { force: true }).catch(() => {});
            opts.out(`Removing intermediate container ${short(id)}\n`);
          }
        });
        return;
      }
      case "copy":
      case "add":
        await copy(s, ins, env());
        return;
      case "cmd":
      case "entrypoint": {
        const value = ins.json ?? (ins.args ? [...shellOf(s), ins.args] : []);
        if (ins.name === "cmd") {
          s.config.Cmd = value;
          s.cmdSet = true;
        } else {
          s.config.Entrypoint = value.length ? value : null;
          if (!s.cmdSet) s.config.Cmd = null;
        }
        await configStep(s, `${ins.name.toUpperCase()} ${JSON.stringify(value)}`);
        return;
      }
      case "env": {
        const pairs = parseKeyValues(ins.args, env(), escape, "ENV");
        const list = [...(s.config.Env ?? [])];
        for (const [k, v] of pairs) {
          const at = list.findIndex((e) => e.startsWith(`${k}=`));
          if (at >= 0) list[at] = `${k}=${v}`;
          else list.push(`${k}=${v}`);
        }
        s.config.Env = list;
        await configStep(s, `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(" ")}`);
        return;
      }
      case "label": {
        const pairs = parseKeyValues(ins.args, env(), escape, "LABEL");
        s.config.Labels = { ...(s.config.Labels ?? {}), ...Object.fromEntries(pairs) };
        await configStep(s, `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(" ")}`);
        return;
      }
      case "maintainer":
        s.author = ins.args;
        await configStep(s, `MAINTAINER ${ins.args}`);
        return;
      case "expose": {
        const ports = expandFields(ins.args, env(), escape);
        const exposed = { ...(s.config.ExposedPorts ?? {}) };
        for (const p of ports) {
          if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/.test(p)) throw new BuildError(`Invalid containerPort: ${p}`);
          exposed[p.includes("/") ? p : `${p}/tcp`] = {};
        }
        s.config.ExposedPorts = exposed;
        await configStep(s, `EXPOSE ${Object.keys(exposed).sort().join(" ")}`);
        return;
      }
      case "volume": {
        const vols = ins.json ?? expandFields(ins.args, env(), escape);
        if (!vols.length || vols.some((v) => !v.trim())) throw new BuildError("VOLUME specified can not be an empty string");
        s.config.Volumes = { ...(s.config.Volumes ?? {}), ...Object.fromEntries(vols.map((v) => [v, {}])) };
        await configStep(s, `VOLUME ${JSON.stringify(vols)}`);
        return;
      }
      case "user":
        s.config.User = word(ins.args);
        await configStep(s, `USER ${s.config.User}`);
        return;
      case "workdir": {
        const dir = word(ins.args);
        const abs = posix.normalize(dir.startsWith("/") ? dir : posix.join(s.config.WorkingDir || "/", dir));
        s.config.WorkingDir = abs;
        // As the classic builder: the directory is made in a layer when the image lacks it.
        await stepImage(s, `WORKDIR ${abs}`, async () => {
          const id = await container(s, null, s.config.Env ?? []);
          try {
            await deps.containers.withRoot(id, "/", async (root) => {
              mkdirInRoot(deps.sys, root, abs);
            });
            return await deps.containers.commit(id, { config: s.config, exactConfig: true, pause: false, createdBy: `/bin/sh -c #(nop) WORKDIR ${abs}` });
          } finally {
            await deps.containers.remove(id, { force: true }).catch(() => {});
          }
        });
        return;
      }
      case "arg": {
        for (const [k, v] of parseKeyValues(ins.args, env(), escape, "ARG")) {
          const given = opts.buildArgs[k];
          const value = given ?? (v !== "" || ins.args.includes("=") ? v : globals.get(k) ?? "");
          if (given !== undefined) usedArgs.add(k);
          s.args.set(k, value ?? "");
        }
        await configStep(s, `ARG ${ins.args}`);
        return;
      }
      case "onbuild": {
        if (fromOnbuild) throw new BuildError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        const inner = ins.args.trim();
        if (/^(onbuild|from|maintainer)\b/i.test(inner)) throw new BuildError(`${inner.split(/\s/)[0]!.toUpperCase()} isn't allowed as an ONBUILD trigger`);
        s.config.OnBuild = [...(s.config.OnBuild ?? []), inner];
        await configStep(s, `ONBUILD ${inner}`);
        return;
      }
      case "stopsignal":
        s.config.StopSignal = word(ins.args);
        await configStep(s, `STOPSIGNAL ${s.config.StopSignal}`);
        return;
      case "shell":
        if (!ins.json) throw new BuildError("SHELL requires the arguments to be in JSON form");
        s.config.Shell = ins.json;
        await configStep(s, `SHELL ${JSON.stringify(ins.json)}`);
        return;
      case "healthcheck": {
        const rest = ins.args.trim();
        if (/^none$/i.test(rest)) s.config.Healthcheck = { Test: ["NONE"] };
        else {
          const m = /^cmd\s+([\s\S]*)$/i.exec(rest);
          if (!m) throw new BuildError("Unknown type in HEALTHCHECK (try CMD)");
          let json: string[] | undefined;
          try {
            const parsed = JSON.parse(m[1]!) as unknown;
            if (Array.isArray(parsed)) json = parsed as string[];
          } catch {
            /* shell form */
          }
          const dur = (v: string | undefined) => (v ? parseDuration(v) : undefined);
          s.config.Healthcheck = {
            Test: json ? ["CMD", ...json] : ["CMD-SHELL", m[1]!],
            ...(ins.flags.interval ? { Interval: dur(ins.flags.interval) } : {}),
            ...(ins.flags.timeout ? { Timeout: dur(ins.flags.timeout) } : {}),
            ...(ins.flags["start-period"] ? { StartPeriod: dur(ins.flags["start-period"]) } : {}),
            ...(ins.flags.retries ? { Retries: Number(ins.flags.retries) } : {}),
          };
        }
        await configStep(s, `HEALTHCHECK ${JSON.stringify(s.config.Healthcheck)}`);
        return;
      }
      case "from":
        throw new BuildError("FROM inside a stage");
    }
  };

  /** COPY/ADD: sources from the context, another stage or an image, written inside the target root. */
  const copy = async (s: Stage, ins: Instruction, env: Record<string, string>) => {
    const isAdd = ins.name === "add";
    for (const f of Object.keys(ins.flags)) if (!["from", "chown", "chmod", "link", "keep-git-dir", "checksum"].includes(f)) throw new BuildError(`Unknown flag: ${f}`);
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
    let srcRoot = opts.context;
    let srcImage: ImageRecord | undefined;
    let srcContainer: string | undefined;
    if (ins.flags.from) {
      const from = expandWord(ins.flags.from, env, escape).toLowerCase();
      const byName = built.find((b, n) => b.name === from || String(n) === from);
      if (byName) srcImage = byName.image ?? (await emptyImage());
      else {
        if (!exists(deps.images, from)) await opts.pullImage(from);
        srcImage = deps.images.image(from);
      }
    }
    // ADD --checksum=<algorithm>:<hex>: a downloaded file must have that digest.
    const expected = ins.flags.checksum ? expandWord(ins.flags.checksum, env, escape) : undefined;
    if (expected !== undefined && !/^sha(256:[0-9a-f]{64}|384:[0-9a-f]{96}|512:[0-9a-f]{128})$/.test(expected)) throw new BuildError(`invalid checksum digest format: ${expected}`);
    if (expected !== undefined && (!isAdd || srcs.some((x) => !/^https?:\/\//.test(x)) || ins.heredocs.length)) throw new BuildError("checksum can't be specified for non-HTTP(S) sources");
    const chmod = ins.flags.chmod ? Number.parseInt(ins.flags.chmod, 8) : undefined;
    if (ins.flags.chmod && (Number.isNaN(chmod) || chmod! > 0o7777)) throw new BuildError(`invalid chmod parameter: ${ins.flags.chmod}`);
    const dfInContext = (p: string) => posix.normalize(`/${p}`).slice(1);
    type Item = { kind: "path"; path: string } | { kind: "inline"; name: string; body: Uint8Array } | { kind: "url"; url: string } | { kind: "archive"; path: string };
    const items: Item[] = [];
    for (const h of ins.heredocs) items.push({ kind: "inline", name: h.name, body: new TextEncoder().encode(h.quoted ? h.content : expandWord(h.content.replace(/"/g, '\\"'), env, escape)) });
    const withSource = async <T>(fn: (root: string) => Promise<T>): Promise<T> => {
      if (!srcImage) return fn(srcRoot);
      srcContainer ??= (await deps.containers.create({ Image: srcImage.id, Cmd: ["true"], Entrypoint: [] })).Id;
      return deps.containers.withRoot(srcContainer, "/", (root) => fn(root));
    };
    try {
      for (const src of srcs) {
        if (isAdd && /^https?:\/\//.test(src)) {
          items.push({ kind: "url", url: src });
          continue;
        }
        const rel = dfInContext(src);
        if (!srcImage && (posix.normalize(src).startsWith("../") || posix.normalize(src) === "..")) throw new BuildError(`COPY failed: forbidden path outside the build context: ${src} ()`);
        const matches = await withSource(async (root) => glob(deps.sys, root, rel));
        if (!matches.length) throw new BuildError(`COPY failed: file not found in build context or excluded by .dockerignore: stat ${rel}: file does not exist`);
        for (const m of matches) {
          if (isAdd && !srcImage && isArchive(deps.sys, srcRoot, m)) items.push({ kind: "archive", path: m });
          else items.push({ kind: "path", path: m });
        }
      }
      // The cache key: the instruction and a checksum of what would be copied.
      const sum = new Digester("sha256");
      for (const it of items) {
        if (it.kind === "inline") sum.update(new TextEncoder().encode(`inline ${it.name}\n`)), sum.update(it.body);
        else if (it.kind === "url") sum.update(new TextEncoder().encode(`url ${it.url}\n`));
        else {
          sum.update(new TextEncoder().encode(`${it.kind} ${it.path}\n`));
          if (srcImage) continue; // another stage or image: its ID is in the key already
          // Names, types, modes, link targets and bytes; not times or owners (copies from the context get root's).
          const src = sourceEntries(deps.sys, srcRoot, it.path);
          try {
            for await (const chunk of writeTar(mapEntries(src.entries, (e) => ({ ...e, header: { ...e.header, mtime: 0, uid: 0, gid: 0, uname: "", gname: "" } })))) sum.update(chunk);
          } finally {
            src.done();
          }
        }
      }
      const checksum = sum.digest();
      const key = `${ins.name.toUpperCase()} ${JSON.stringify(ins.flags)} ${srcImage?.id ?? ""} ${checksum} ${destAbs}`;
      await stepImage(s, key, async () => {
        const id = await container(s, null, s.config.Env ?? []);
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
            for (const it of items) {
              let entries: AsyncIterable<TarInput>;
              let into = targetDir;
              if (it.kind === "inline") entries = [fix({ header: { name: destIsDir ? it.name : posix.basename(destAbs), type: "file", mode: 0o644, uid: 0, gid: 0, size: it.body.length, mtime: Date.now() / 1000 }, body: it.body })] as unknown as AsyncIterable<TarInput>;
              else if (it.kind === "url") {
                const res = await fetch(it.url);
                if (!res.ok) throw new BuildError(`ADD failed: ${it.url}: HTTP ${res.status}`);
                const body = new Uint8Array(await res.arrayBuffer());
                if (expected) {
                  const [algo, hex] = expected.split(":") as [string, string];
                  const got = new Bun.CryptoHasher(algo as "sha256" | "sha384" | "sha512").update(body).digest("hex");
                  if (got !== hex) throw new BuildError(`ADD failed: digest mismatch for ${it.url}: expected ${expected}, got ${algo}:${got}`);
                }
                const name = destIsDir ? posix.basename(new URL(it.url).pathname) || "index.html" : posix.basename(destAbs);
                const mtime = Date.parse(res.headers.get("last-modified") ?? "") / 1000 || Date.now() / 1000;
                entries = [fix({ header: { name, type: "file", mode: 0o600, uid: 0, gid: 0, size: body.length, mtime }, body })] as unknown as AsyncIterable<TarInput>;
              } else if (it.kind === "archive") {
                // ADD of a local archive: its contents are extracted at the destination.
                into = destAbs.endsWith("/") ? destAbs : `${destAbs}/`;
                mkdirInRoot(deps.sys, root, into);
                const { stream } = await decompressStream(openInRoot(deps.sys, srcRoot, it.path));
                await extractTo(deps.sys, root, into, stream);
                continue;
              } else {
                const src = await withSource(async (r) => sourceEntries(deps.sys, r, it.path));
                const renamed = !src.isDir && !destIsDir;
                const base = renamed ? posix.basename(destAbs) : src.name;
                entries = mapEntries(src.entries, (e) => fix(src.isDir ? e : { ...e, header: { ...e.header, name: base } }));
                if (src.isDir) into = destAbs;
                mkdirInRoot(deps.sys, root, into, owner?.uid ?? 0, owner?.gid ?? 0);
                try {
                  await extractTo(deps.sys, root, into, writeTar(entries));
                } finally {
                  src.done();
                }
                continue;
              }
              await extractTo(deps.sys, root, into, writeTar(entries));
            }
          });
          const fileSum = checksum.slice(7);
          return await deps.containers.commit(id, { config: s.config, exactConfig: true, pause: false, createdBy: `/bin/sh -c #(nop) ${ins.name.toUpperCase()} ${items.length === 1 && items[0]!.kind !== "inline" ? "file" : "multi"}:${fileSum} in ${destAbs} ` });
        } finally {
          await deps.containers.remove(id, { force: true }).catch(() => {});
        }
      });
    } finally {
      if (srcContainer) await deps.containers.remove(srcContainer, { force: true }).catch(() => {});
    }
  };

  for (let n = 0; n <= last; n++) {
    const insts = stagesText[n]!;
    const from = insts[0]!;
    step++;
    opts.out(`Step ${step}/${total} : ${from.original}\n`);
    const fromArgs = Object.fromEntries(globals);
    const words = from.args.split(/\s+/);
    const baseName = expandWord(words[0]!, fromArgs, escape);
    if (!baseName) throw new BuildError(`base name (${words[0]}) should not be blank`);
    stage = { ...(names[n] ? { name: names[n] } : {}), config: {}, args: new Map(), cmdSet: false };
    const prior = built.find((b) => b.name === baseName.toLowerCase());
    if (baseName === "scratch") stage.image = undefined;
    else if (prior) stage.image = prior.image;
    else {
      if (opts.pull || !exists(deps.images, baseName)) await opts.pullImage(baseName);
      stage.image = deps.images.image(baseName);
    }
    stage.config = structuredClone((stage.image?.config.config ?? {}) as Config);
    opts.out(stage.image ? ` ---> ${short(stage.image.id)}\n` : " ---> \n");
    const triggers = stage.config.OnBuild ?? [];
    if (triggers.length) {
      opts.out(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? "s" : ""}\n`);
      stage.config.OnBuild = [];
      for (const t of triggers) {
        const [trigger] = parseDockerfile(`${t}\n`).instructions;
        await dispatch(stage, trigger!, true);
      }
    }
    for (const ins of insts.slice(1)) {
      step++;
      opts.out(`Step ${step}/${total} : ${ins.original}\n`);
      await dispatch(stage, ins);
    }
    built.push({ ...(stage.name ? { name: stage.name } : {}), image: stage.image });
  }
  // Labels from the command line go on the final image.
  if (Object.keys(opts.labels).length) {
    stage!.config.Labels = { ...(stage!.config.Labels ?? {}), ...opts.labels };
    await configStep(stage!, `LABEL ${Object.entries(opts.labels).map(([k, v]) => `${k}=${v}`).join(" ")}`);
  }
  const unused = Object.keys(opts.buildArgs).filter((k) => !usedArgs.has(k) && !PROXY_ARGS.includes(k));
  if (unused.length) opts.out(`[Warning] One or more build-args [${unused.join(" ")}] were not consumed\n`);
  const finalImage = stage!.image ?? (await emptyImage());
  deps.images.markIntermediate(finalImage.id, false);
  return finalImage.id;
}

function exists(images: ImageService, name: string): boolean {
  try {
    images.image(name);
    return true;
  } catch {
    return false;
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
    const re = new RegExp(`^${part.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]")}$`);
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
