/**
 * `POST /containers/{id}/start`, as named steps with undo: the writable layer mounted, the
 * network allocated, the /etc files and the bundle written, the runtime's container created
 * under its monitor and joined to its networks, output pumped, the process started. A step that
 * fails undoes the ones done; the record says why and the error has Docker's wording.
 */
import { ignore, ignored } from "../log.ts";
import { closeSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { conflict, EngineError, invalidArgument, messageOf } from "../errors.ts";
import type { MountSpec, Spec } from "../runtime/oci.ts";
import { runStepsAsync } from "../steps.ts";
import { AT_FDCWD, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_NOFOLLOW, O_RDONLY, O_WRONLY, RESOLVE_IN_ROOT } from "../sys/sys.ts";
import { type ContainerRecord, createdState, ZERO_TIME } from "./container-store.ts";
import { type ContainerContext, DEFAULT_PATH, type Live, now } from "./context.ts";
import { copyUp } from "./copy-up.ts";
import { mergeEnv } from "./env.ts";
import { writeEtcFiles } from "./etc-files.ts";
import { cancelRestart, onExit, startHealth } from "./exit.ts";
import { connectPending, terminalOf } from "./io.ts";
import { pumpFor } from "./logs.ts";
import { specMount } from "./mounts.ts";
import { buildSpec } from "./oci-spec.ts";
import { removeContainer } from "./remove.ts";
import { resolveUser } from "./user.ts";

/** `POST /containers/{id}/start`: false when it was running already (304). */
export async function startContainer(ctx: ContainerContext, ref: string): Promise<boolean> {
  const c = ctx.store.get(ref);
  if (c.State.Running) return false;
  cancelRestart(ctx, c);
  c.ManuallyStopped = false;
  ctx.backoff.delete(c.Id);
  if (c.State.Status === "removing" || c.State.Dead) throw conflict(`container ${c.Id} is marked for removal and cannot be started`);
  try {
    await runContainer(ctx, c);
  } catch (err) {
    // As dockerd: a --rm container that cannot start is removed (the CLI waits for that).
    if (c.HostConfig.AutoRemove) await removeContainer(ctx, c.Id, { force: true }).catch((e) => ctx.deps.log.debug("auto-remove after a failed start failed", { container: c.Id.slice(0, 12), error: messageOf(e) }));
    throw err;
  }
  return true;
}

/**
 * Start `c` (a start, a restart policy's restart, a daemon start's), tracked in `ctx.starting`,
 * under a `container.start` intent: a daemon killed before the record says running finds it at
 * its next start and undoes what the start set up (restore.ts).
 */
export function runContainer(ctx: ContainerContext, c: ContainerRecord): Promise<void> {
  const intent = ctx.deps.journal?.begin("container.start", c.Id);
  const p = startSteps(ctx, c).finally(() => {
    ctx.starting.delete(c.Id);
    if (intent) ctx.deps.journal!.end(intent);
  });
  ctx.starting.set(c.Id, p.catch(ignore("a start's failure is its caller's; remove only waits for it"))); // remove waits for it; the error is the caller's
  return p;
}

/** The runtime spec of `c`, its root mounted at `rootfs`. */
async function specOf(ctx: ContainerContext, c: ContainerRecord, rootfs: string): Promise<Spec> {
  const netnsPath = joinedNetns(ctx, c);
  const user = resolveUser(ctx.deps.sys, rootfs, c.Config.User ?? "", c.HostConfig.GroupAdd ?? []);
  if (c.Config.WorkingDir) mkdirSync(join(rootfs, safeRel(c.Config.WorkingDir)), { recursive: true });
  const env = mergeEnv(c.Config.Env, [`HOSTNAME=${c.Config.Hostname}`], c.Config.Tty ? ["TERM=xterm"] : [], ctx.deps.networks.linkEnv(c), c.Config.Env);
  // HOME from the user's passwd entry when the image and the request set none (runc sets it so for Docker).
  if (!env.some((e) => e.startsWith("HOME="))) env.push(`HOME=${user.home}`);
  const { home: _home, ...ids } = user;
  return buildSpec({
    id: c.Id,
    config: c.Config,
    hostConfig: c.HostConfig,
    args: [c.Path, ...c.Args],
    env: env.some((e) => e.startsWith("PATH=")) ? env : [DEFAULT_PATH, ...env],
    user: ids,
    rootfs,
    etcFiles: { hosts: c.HostsPath, hostname: c.HostnamePath, resolvConf: c.ResolvConfPath },
    mounts: await volumeMounts(ctx, c, rootfs),
    ...(netnsPath ? { netnsPath } : {}),
    nsPaths: sharedNamespaces(ctx, c),
    ...(ctx.deps.cgroupDriver ? { cgroupDriver: ctx.deps.cgroupDriver } : {}),
  });
}

/** The start's steps; on a failure the record is saved as not running, with the reason. */
async function startSteps(ctx: ContainerContext, c: ContainerRecord): Promise<void> {
  const { deps } = ctx;
  const images = await deps.images();
  const dir = ctx.store.dir(c.Id);
  const rootfs = ctx.rootfsOf(c);
  mkdirSync(rootfs, { recursive: true });
  await images.layers.mountWritable(c.RwLayer, rootfs); // a failure here leaves the record as it was
  let spec: Spec | undefined;
  let created: { pid: number; stdin?: number } | undefined;
  const bundle = join(dir, "bundle");
  try {
    await runStepsAsync(
      `container ${c.Id.slice(0, 12)}`,
      [
        {
          name: "network",
          run: async () => {
            const undo = () => deps.networks.detach(c).catch((e) => deps.log.debug("network detach after a failed start failed", { container: c.Id.slice(0, 12), error: messageOf(e) }));
            await deps.networks.allocate(c).catch(async (err) => {
              await undo(); // what it allocated before failing
              throw err;
            });
            return undo;
          },
        },
        { name: "etc files", run: () => writeEtcFiles(ctx, c) },
        { name: "dockerenv", run: () => markContainer(ctx, rootfs) },
        {
          name: "spec",
          run: async () => {
            spec = await specOf(ctx, c, rootfs);
          },
        },
        { name: "bundle", run: () => writeBundle(dir, bundle, spec!) },
        {
          name: "runtime",
          run: async () => {
            await deps.runtime.delete(c.Id, true).catch(ignore("no leftover runtime state from a crash")); // a leftover from a crash
            const undo = () =>
              deps.runtime.delete(c.Id, true).catch((e) => {
                if (!/not found|no such|ENOENT/i.test(messageOf(e))) deps.log.warn("runtime delete after a failed start failed", { container: c.Id.slice(0, 12), error: messageOf(e) });
              });
            try {
              const stdin = c.Config.OpenStdin ? (c.Config.StdinOnce ? "pipe" : "hold") : "null";
              created = await deps.runtime.create(c.Id, { bundle, io: { spool: join(dir, "output.spool"), stdin }, spec: spec! });
            } catch (err) {
              await undo();
              throw err;
            }
            return undo;
          },
        },
        { name: "join networks", run: () => deps.networks.attach(c, created!.pid) },
        {
          name: "output",
          run: async () => {
            await captureOutput(ctx, c, created!.stdin);
            return () => dropLive(ctx, c.Id);
          },
        },
        { name: "run", run: () => deps.runtime.start(c.Id) },
      ],
      { log: deps.log, errors: "as-is" },
    );
  } catch (err) {
    images.layers.unmountWritable(c.RwLayer, rootfs);
    c.State = { ...c.State, Status: c.State.StartedAt === ZERO_TIME ? "created" : "exited", Running: false, Pid: 0, ExitCode: 128, Error: messageOf(err) };
    ctx.store.save(c);
    throw classifyStartError(err, c.Path);
  }
  c.State = { ...createdState(), Status: "running", Running: true, Pid: created!.pid, StartedAt: now() };
  ctx.store.save(c);
  ctx.publish(c, "start");
  const live = ctx.live.get(c.Id)!;
  live.handled = live.exited.then((code) => onExit(ctx, c.Id, code));
  startHealth(ctx, c, live);
}

/**
 * An empty /.dockerenv in the container's root, as Docker makes (tools tell a container by it),
 * created inside the root (openat2 RESOLVE_IN_ROOT, no symlink followed): one the image put there
 * as a link cannot make the daemon write outside it.
 */
function markContainer(ctx: ContainerContext, rootfs: string): void {
  const { sys } = ctx.deps;
  const root = sys.openat2(AT_FDCWD, rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0);
  try {
    sys.close(sys.openat2(root, ".dockerenv", O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o755, RESOLVE_IN_ROOT));
  } catch (err) {
    ignored("/.dockerenv not made (the image has something else there)", err);
  } finally {
    sys.close(root);
  }
}

/** config.json in the bundle, and an empty output spool with its read offset. */
function writeBundle(dir: string, bundle: string, spec: Spec): void {
  mkdirSync(bundle, { recursive: true });
  writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
  writeFileSync(join(dir, "output.spool"), "");
  writeFileSync(join(dir, "spool.offset"), "0");
}

/** The output pump started, the input fd (pipe or pty master) kept, early attachers connected. */
async function captureOutput(ctx: ContainerContext, c: ContainerRecord, stdin: number | undefined): Promise<void> {
  const input = c.Config.Tty ? await terminalOf(ctx, c.Id) : stdin;
  const pump = pumpFor(ctx, c);
  pump.start();
  const live: Live = { pump, ...(input !== undefined ? { input } : {}), exited: ctx.deps.runtime.watchExit(c.Id) };
  ctx.live.set(c.Id, live);
  connectPending(ctx, c.Id, live);
}

/** Undo of `captureOutput`: early attachers told the end, the pump finished, the input closed. */
function dropLive(ctx: ContainerContext, id: string): void {
  for (const s of ctx.pendingAttach.get(id) ?? []) s.end();
  ctx.pendingAttach.delete(id);
  ctx.pendingInput.delete(id);
  const l = ctx.live.get(id);
  if (!l) return;
  l.pump.finish();
  if (l.input !== undefined) closeSync(l.input);
  ctx.live.delete(id);
}

/**
 * The container's mounts in runtime-spec form; a volume still empty gets what the image has at
 * its destination (Docker's copy-up), read inside the container's root.
 */
async function volumeMounts(ctx: ContainerContext, c: ContainerRecord, rootfs: string): Promise<MountSpec[]> {
  for (const m of c.MountPoints ?? []) {
    if (m.Type !== "volume") continue;
    m.Source = await ctx.deps.volumes.mount(m.Name!, c.Id);
    if (m.CopyUp && readdirSync(m.Source).length === 0) await copyUp(ctx.deps.sys, rootfs, m.Destination, m.Source);
    m.CopyUp = false;
  }
  return (c.MountPoints ?? []).map(specMount);
}

/** `--pid container:<id>` and `--ipc container:<id>`: the other container's namespaces. */
function sharedNamespaces(ctx: ContainerContext, c: ContainerRecord): { pid?: string; ipc?: string } {
  const pidOf = (mode: string | null | undefined, what: string) => {
    if (!mode?.startsWith("container:")) return undefined;
    const other = ctx.store.get(mode.slice("container:".length));
    if (!other.State.Running || !other.State.Pid) throw new EngineError("internal", `failed to join ${what} namespace: container ${other.Id} is not running`);
    return other.State.Pid;
  };
  const pid = pidOf(c.HostConfig.PidMode, "PID");
  const ipc = pidOf(c.HostConfig.IpcMode, "IPC");
  return { ...(pid ? { pid: `/proc/${pid}/ns/pid` } : {}), ...(ipc ? { ipc: `/proc/${ipc}/ns/ipc` } : {}) };
}

/** For `--network container:<id>`: the other container's namespace (it must run). */
function joinedNetns(ctx: ContainerContext, c: ContainerRecord): string | undefined {
  const mode = c.HostConfig.NetworkMode ?? "";
  if (!mode.startsWith("container:")) return undefined;
  const other = ctx.store.get(mode.slice("container:".length));
  if (!other.State.Running || !other.State.Pid) throw conflict(`cannot join network namespace of a non running container: ${other.Id}`);
  return `/proc/${other.State.Pid}/ns/net`;
}

/** A working directory as a relative path inside the root ("..": refused). */
function safeRel(p: string): string {
  const parts = p.split("/").filter((x) => x && x !== ".");
  if (parts.includes("..")) throw invalidArgument(`the working directory '${p}' is invalid`);
  return parts.join("/");
}

/**
 * Docker's wording for start failures, which the CLI reads: "executable file not found" and
 * "no such file or directory" become exit status 127, "permission denied" 126.
 */
export function classifyStartError(err: unknown, program: string): Error {
  const msg = messageOf(err);
  const prefix = "failed to create task for container: failed to create shim task: OCI runtime create failed: unable to start container process";
  if (/executable file not found/.test(msg)) return new EngineError("invalid-argument", `${prefix}: exec: "${program}": executable file not found in $PATH: unknown`);
  if (/^exec:? .*ENOENT/m.test(msg) || /lookup.*ENOENT/.test(msg)) return new EngineError("invalid-argument", `${prefix}: exec: "${program}": stat ${program}: no such file or directory: unknown`);
  if (/^exec:? .*EACCES/m.test(msg)) return new EngineError("invalid-argument", `${prefix}: exec: "${program}": permission denied: unknown`);
  if (err instanceof EngineError) return err;
  return new EngineError("internal", `${prefix}: ${msg}: unknown`);
}
