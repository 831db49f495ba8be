/**
 * Bunker's builder as BuildKit's `dockerfile.v0` frontend: the Dockerfile and the context come
 * over the job's session (fsutil DiffCopy, the context filtered by `.dockerignore` on the
 * client's side, as BuildKit asks for it), the build runs in Bunker's builder with each step on
 * the job's progress, and the image is handed back as a ref for the exporters.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { BuildService } from "../build/build-service.ts";
import { BuildError } from "../build/build-types.ts";
import { Code, GrpcError } from "../grpc/status.ts";
import type { Metadata } from "../grpc/client.ts";
import { FileSync } from "./gen/buildkit/session_pb.ts";
import { Secrets } from "./gen/buildkit/secrets_pb.ts";
import { agentSocket, checkAgent } from "./ssh-agent.ts";
import { receiveDir } from "./fs-receive.ts";
import { checkSyntax, excludePatterns, parseFrontendOpts, platformArgs } from "./frontend-opts.ts";
import type { BuiltImage, Job } from "./jobs.ts";
import { Progress } from "./progress.ts";
import type { Session, SessionManager } from "./sessions.ts";

/** What the frontend uses. */
export interface FrontendDeps {
  builds: () => Promise<BuildService>;
  sessions: SessionManager;
  /** The native platform first, then those a binfmt_misc handler can run. */
  platforms: () => string[];
}

/** `linux/x86_64` → `linux/amd64`, `linux/aarch64` → `linux/arm64` (containerd's normalisation, the common cases). */
function normalizePlatform(p: string): string {
  const [os = "linux", arch = "", variant] = p.toLowerCase().split("/");
  const a = ({ x86_64: "amd64", "x86-64": "amd64", aarch64: "arm64", armhf: "arm" } as Record<string, string>)[arch] ?? arch;
  if (a === "arm64" && variant === "v8") return `${os}/arm64`;
  return variant ? `${os}/${a}/${variant}` : `${os}/${a}`;
}

/** fsutil's option values go in gRPC metadata, URL-escaped (with `<key>-encoded: 1`) when not printable ASCII. */
function syncMetadata(opts: Record<string, string[]>): Metadata {
  const md: Metadata = {};
  for (const [k, values] of Object.entries(opts)) {
    const plain = values.every((v) => /^[\x20-\x7e]*$/.test(v));
    md[k] = plain ? values : values.map((v) => encodeURIComponent(v));
    if (!plain) md[`${k}-encoded`] = "1";
  }
  return md;
}

/** Copy the session's local directory `name` into `dest`. */
export async function syncLocal(session: Session, name: string, dest: string, filter: { include?: string[]; exclude?: string[]; followPaths?: string[] } = {}) {
  if (!session.supports("/moby.filesync.v1.FileSync/DiffCopy")) throw new GrpcError(Code.UNIMPLEMENTED, "no local sources enabled");
  mkdirSync(dest, { recursive: true });
  const opts: Record<string, string[]> = { "dir-name": [name] };
  if (filter.include) opts["include-patterns"] = filter.include;
  if (filter.exclude?.length) opts["exclude-patterns"] = filter.exclude;
  if (filter.followPaths) opts.followpaths = filter.followPaths;
  return receiveDir(session.client.open(FileSync.method.diffCopy, syncMetadata(opts)), dest);
}

/** A secret from the session's Secrets service; undefined when the client has none by that ID. */
async function sessionSecret(session: Session, id: string): Promise<Uint8Array | undefined> {
  if (!session.supports("/moby.buildkit.secrets.v1.Secrets/GetSecret")) return undefined;
  try {
    return (await session.client.unary(Secrets.method.getSecret, { ID: id })).data;
  } catch (err) {
    if (err instanceof GrpcError && err.code === Code.NOT_FOUND) return undefined;
    throw err;
  }
}

/** The wording BuildKit gives a failed step. */
function buildkitMessage(err: unknown): string {
  if (err instanceof BuildError && err.command !== undefined) return `process "${err.command}" did not complete successfully: exit code: ${err.exitCode}`;
  return (err as Error)?.message ?? String(err);
}

/** Run the Dockerfile frontend for `job` with `opts`; resolves with the built image. */
export async function runDockerfile(deps: FrontendDeps, job: Job, opts: Record<string, string>): Promise<BuiltImage> {
  const req = parseFrontendOpts(opts);
  const [host, ...emulated] = deps.platforms();
  if (req.platforms.length > 1) throw new GrpcError(Code.UNIMPLEMENTED, `multi-platform builds (${req.platforms.join(", ")}) are not supported by Bunker's builder yet`);
  const target = normalizePlatform(req.platforms[0] ?? host!);
  if (target !== host && !emulated.includes(target)) {
    throw new GrpcError(Code.FAILED_PRECONDITION, `cannot build for ${target} on this ${host} host: no binfmt_misc handler for it is registered (on Debian: apt install qemu-user-static, then check /proc/sys/fs/binfmt_misc)`);
  }
  const session = await deps.sessions.get(job.sessionId);
  const builds = await deps.builds();
  const progress = new Progress(job);
  const scratch = builds.scratch("buildkit-");
  try {
    const dfDir = join(scratch.dir, "dockerfile");
    const ctxDir = join(scratch.dir, "context");
    const ignoreDir = join(scratch.dir, "dockerignore");
    const names = [req.filename, `${req.filename}.dockerignore`];
    const dockerfileText = await progress.step(`[internal] load build definition from ${req.filename}`, async () => {
      await syncLocal(session, req.dockerfileName, dfDir, { include: names, followPaths: names });
      const file = join(dfDir, req.filename);
      if (!existsSync(file)) throw new GrpcError(Code.UNKNOWN, `failed to read dockerfile: open ${req.filename}: no such file or directory`);
      return readFileSync(file, "utf8");
    });
    if (!dockerfileText.split("\n").some((l) => l.trim() && !l.trim().startsWith("#"))) throw new GrpcError(Code.UNKNOWN, "the Dockerfile cannot be empty");
    checkSyntax(dockerfileText);
    const ignoreText = await progress.step("[internal] load .dockerignore", async (v) => {
      const own = join(dfDir, `${req.filename}.dockerignore`);
      if (existsSync(own)) return readFileSync(own, "utf8");
      await syncLocal(session, req.contextName, ignoreDir, { include: [".dockerignore"], followPaths: [".dockerignore"] });
      const file = join(ignoreDir, ".dockerignore");
      const text = existsSync(file) ? readFileSync(file, "utf8") : "";
      v.status(`transferring context: ${text.length}B`);
      return text;
    });
    await progress.step("[internal] load build context", async (v) => {
      const got = await syncLocal(session, req.contextName, ctxDir, { exclude: excludePatterns(ignoreText) });
      v.status(`transferring context: ${got.bytes}B`);
    });
    const namedContexts: Record<string, { image: string } | { dir: string }> = {};
    for (const [name, value] of Object.entries(req.namedContexts)) {
      if (value.startsWith("docker-image://")) namedContexts[name.toLowerCase()] = { image: value.slice("docker-image://".length) };
      else if (value.startsWith("local:")) {
        const dir = join(scratch.dir, `named-${Object.keys(namedContexts).length}`);
        await progress.step(`[${name}] load from client`, () => syncLocal(session, value.slice("local:".length), dir));
        namedContexts[name.toLowerCase()] = { dir };
      } else throw new GrpcError(Code.UNIMPLEMENTED, `named context ${name}=${value}: only docker-image:// and local directories are supported by Bunker's builder yet`);
    }
    try {
      const sshAgent = async (id: string, owner: { uid: number; gid: number; mode: number }) => (await checkAgent(session, id), agentSocket(session, id, owner));
      const build = { ...req.build, ...(target !== host ? { platform: target } : {}), namedContexts, sshAgent, secret: (id: string) => sessionSecret(session, id), entitlements: job.entitlements, platformArgs: platformArgs(target, host!) };
      const built = await builds.buildImage(ctxDir, dockerfileText, build, { events: progress.builderEvents(), out: () => {} });
      progress.endSteps();
      return built;
    } catch (err) {
      const message = buildkitMessage(err);
      progress.endSteps(message);
      throw new GrpcError(Code.UNKNOWN, message);
    }
  } finally {
    scratch.dispose();
  }
}
