/**
 * Creating and starting a container: the bundle read (or the engine's typed spec taken), the
 * namespaces to join opened, the monitor and the container cloned from the prepared plan with
 * its output wired, the state recorded; then `start` opens the exec fifo.
 */
import { ignore, ignored } from "../../core/log.ts";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { writeFileAtomic } from "../../core/atomic-file.ts";

import { EngineError, invalidArgument } from "../../core/errors.ts";
import { AT_FDCWD, O_APPEND, O_CLOEXEC, O_CREAT, O_RDONLY, O_WRONLY, S_IFIFO } from "../../core/sys/sys.ts";
import { Cgroup } from "./cgroups.ts";
import { containerPlan, type MonitorOutput } from "./container-plan.ts";
import { runHooks } from "./hooks.ts";

import { spawnPlan, type Spawned } from "./spawn.ts";
import { type NamespaceType, parseSpec } from "../../core/runtime/oci.ts";
import { type CreatedContainer, type CreateOptions, IoFds, LinuxRuntime, processStartTime, removeCgroup, type StoredState, VOLATILE, writeIdMaps } from "./runtime.ts";

/** What a create killed before it wrote the state left: the processes in its cgroup killed, the cgroup and the directory removed. */
async function discardPartial(dir: string, cgroup: Cgroup): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const pids = cgroup.pids();
    if (!pids.length) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch (err) {
        ignored("gone already", err);
      }
    }
    await Bun.sleep(5);
  }
  await removeCgroup(cgroup);
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Create the container: set everything up and leave its process waiting on the exec fifo.
 * On any failure the process is killed and the state removed: nothing is left behind.
 */
export async function create(rt: LinuxRuntime, id: string, opts: CreateOptions): Promise<CreatedContainer> {
  const dir = rt.dir(id);
  if (existsSync(join(dir, "state.json"))) throw new EngineError("already-exists", `container with id exists: ${id}`);
  const bundle = resolve(opts.bundle);
  const configFile = join(bundle, "config.json");
  if (!opts.spec && !existsSync(configFile)) throw invalidArgument(`bundle ${bundle}: config.json does not exist`);
  const spec = opts.spec ?? parseSpec(readFileSync(configFile, "utf8"), configFile);
  if (!spec.process) throw invalidArgument(`${configFile}: process: required to create a container`);
  if (!spec.root) throw invalidArgument(`${configFile}: root: required to create a container`);
  const rootfs = isAbsolute(spec.root.path) ? spec.root.path : join(bundle, spec.root.path);
  if (!existsSync(rootfs)) throw invalidArgument(`${configFile}: root.path: rootfs ${rootfs} does not exist`);
  if (opts.io && !opts.monitor) throw invalidArgument("output capture (io) needs a monitor");
  if (spec.process.terminal && !opts.consoleSocket && !opts.io) throw invalidArgument("cannot allocate tty if runtime will detach without setting console socket");
  if (!spec.process.terminal && opts.consoleSocket) throw invalidArgument("cannot use console socket if runtime will not allocate tty");

  const cgroup = new Cgroup(rt.mode(), Cgroup.pathFor(id, spec.linux?.cgroupsPath, rt.cgroupParent));
  // A directory without state is a create cut short (its caller killed): what it started goes first.
  if (existsSync(dir)) await discardPartial(dir, cgroup);
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  const fifo = join(dir, "exec.fifo");
  const joinFds: Partial<Record<NamespaceType, number>> = {};
  const newNamespaces: NamespaceType[] = [];
  let spawned: Spawned | undefined;
  let cgroupJoinFds: { fd: number; what: string }[] = [];
  // One pipe per in-container hook: the state is written into it at the sync point.
  const hookPipes = { createContainer: [] as [number, number][], startContainer: [] as [number, number][] };
  const [syncR, syncW] = rt.sys.pipe();
  const io = new IoFds();
  try {
    const output = opts.io ? rt.outputFds(io, opts.io, !!spec.process.terminal) : undefined;
    for (const kind of ["createContainer", "startContainer"] as const) for (const _ of spec.hooks?.[kind] ?? []) hookPipes[kind].push(rt.sys.pipe());
    // Limits first: the process joins at its sync point, before it runs anything of the container's.
    cgroup.create();
    cgroup.apply(spec.linux?.resources, spec.linux?.devices, rt.sys);
    rt.sys.mknodat(AT_FDCWD, fifo, S_IFIFO | 0o622, 0, 0);
    rt.sys.fchmodat(AT_FDCWD, fifo, 0o622, 0); // whatever the umask: a non-root container user must be able to open it
    for (const ns of spec.linux?.namespaces ?? []) {
      if (ns.path) joinFds[ns.type] = rt.sys.openat2(AT_FDCWD, ns.path, O_RDONLY | O_CLOEXEC, 0, 0);
      else newNamespaces.push(ns.type);
    }
    cgroupJoinFds = rt.openSelfJoin(cgroup);
    spawned = spawnPlan(rt.sys, (statusFd) =>
      containerPlan({
        spec,
        process: spec.process!,
        rootfs,
        joinFds,
        newNamespaces,
        execFifo: fifo,
        statusFd,
        syncFd: syncR,
        cgroupMode: rt.mode(),
        cgroupJoinFds,
        hookStdin: { createContainer: hookPipes.createContainer.map(([r]) => r), startContainer: hookPipes.startContainer.map(([r]) => r) },
        closeFds: [...hookPipes.createContainer, ...hookPipes.startContainer].map(([, w]) => w!),
        ...(opts.monitor ? { monitor: { exitFile: join(dir, "exit"), ...(output ? { output: output.monitor } : {}) } } : {}),
        ...(output?.stdio ? { stdio: output.stdio } : {}),
        ...(opts.consoleSocket ? { consoleSocket: resolve(opts.consoleSocket) } : {}),
      }),
    );
    const child = spawned;
    const outcome = await spawned.settle(
      async () => {
        if (newNamespaces.includes("user")) writeIdMaps(child.pid, spec);
        const state = { ociVersion: spec.ociVersion, id, status: "creating", pid: child.pid, bundle, ...(spec.annotations ? { annotations: spec.annotations } : {}) };
        await runHooks("prestart", spec.hooks?.prestart, state);
        await runHooks("createRuntime", spec.hooks?.createRuntime, state);
        for (const kind of ["createContainer", "startContainer"] as const) {
          const json = new TextEncoder().encode(JSON.stringify({ ...state, status: kind === "createContainer" ? "creating" : "created" }));
          if (json.length > 65536 && hookPipes[kind].length) throw invalidArgument(`hooks.${kind}: the container's state (${json.length} bytes) does not fit a pipe's buffer`);
          for (const [, w] of hookPipes[kind]) writeSync(w, json);
          for (const pair of hookPipes[kind]) closeSync(pair.splice(1, 1)[0]!); // the hook reads to end of file
        }
        writeSync(syncW, new Uint8Array([1]));
      },
      { awaitPid: !!opts.monitor },
    );
    if (outcome !== "ready") throw new EngineError("internal", `container ${id}: the init process ended before it was ready`);
    const startTime = processStartTime(spawned.pid);
    if (!startTime) throw new EngineError("internal", `container ${id}: the init process is gone`);
    const stored: StoredState = { id, pid: spawned.pid, startTime, bundle, rootfs, created: new Date().toISOString(), spec, cgroupPath: cgroup.path, ...(opts.monitor ? { monitorPid: spawned.childPid } : {}) };
    writeFileAtomic(join(dir, "state.json"), JSON.stringify(stored), 0o600, VOLATILE);
    if (opts.pidFile) writeFileAtomic(resolve(opts.pidFile), String(spawned.pid), 0o644, VOLATILE);
    rt.startPending.set(id, spawned);
    const stdin = output?.stdinWrite;
    if (stdin !== undefined) io.keep(stdin);
    return { ...rt.state(id), ...(stdin !== undefined ? { stdin } : {}) };
  } catch (err) {
    if (spawned) rt.reap(spawned.pid, true);
    // Under a monitor, the init is the monitor's child and the monitor ours: collect it too (a
    // program not found left one zombie per failed start).
    if (spawned && opts.monitor && spawned.childPid !== spawned.pid) await rt.reapMonitor(spawned.childPid);
    // The container's init may still be exiting (it is the monitor's child, not ours): its cgroup
    // is busy until the kernel lets it go, so wait for it to empty and retry, as delete does.
    await removeCgroup(cgroup).catch(ignore("undo of a create: cgroup removal failed (the original error is what the caller needs)")); // the original error is what the caller needs
    rmSync(dir, { recursive: true, force: true });
    throw err;
  } finally {
    if (spawned && rt.startPending.get(id) !== spawned) spawned.close();
    io.close();
    for (const fd of [syncR, syncW, ...Object.values(joinFds), ...cgroupJoinFds.map((j) => j.fd), ...Object.values(hookPipes).flat(2)]) closeSync(fd);
  }
}

/** Let a created container exec its process. */
export async function start(rt: LinuxRuntime, id: string): Promise<void> {
  const s = rt.load(id);
  const status = rt.statusOf(s);
  if (status !== "created") throw new EngineError("failed-precondition", `cannot start a container that has ${status === "stopped" ? "stopped" : `status ${status}`}`);
  const fifo = join(rt.dir(id), "exec.fifo");
  // The init process holds the write side open (blocked in open); opening the read side lets it go on.
  const fd = openSync(fifo, "r");
  try {
    readFileSync(fd);
  } finally {
    closeSync(fd);
    rmSync(fifo, { force: true });
  }
  const pending = rt.startPending.get(id);
  if (pending) {
    rt.startPending.delete(id);
    try {
      await pending.settle(); // to exec (end of file), or the step that failed
    } finally {
      pending.close();
    }
  }
  try {
    await runHooks("poststart", s.spec.hooks?.poststart, { ...rt.state(id), status: "running" });
  } catch (err) {
    process.stderr.write(`warning: ${(err as Error).message}\n`);
  }
}

/** The fds for output capture (all close-on-exec, collected in `io` to be closed after create). */
export function outputFds(rt: LinuxRuntime, io: IoFds, o: NonNullable<CreateOptions["io"]>, tty: boolean): { monitor: MonitorOutput; stdio?: [number, number, number]; stdinWrite?: number } {
  const spool = io.add(rt.sys.openat2(AT_FDCWD, o.spool, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640, 0));
  if (tty) {
    const [monitorEnd, containerEnd] = rt.sys.socketpair().map((fd) => io.add(fd)) as [number, number];
    return { monitor: { spool, tty: { monitorEnd, containerEnd } } };
  }
  const [outR, outW] = rt.sys.pipe().map((fd) => io.add(fd)) as [number, number];
  const [errR, errW] = rt.sys.pipe().map((fd) => io.add(fd)) as [number, number];
  if (o.stdin === "null") {
    const devnull = io.add(rt.sys.openat2(AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC, 0, 0));
    return { monitor: { spool, stdout: outR, stderr: errR }, stdio: [devnull, outW, errW] };
  }
  const [inR, inW] = rt.sys.pipe().map((fd) => io.add(fd)) as [number, number];
  return { monitor: { spool, stdout: outR, stderr: errR, ...(o.stdin === "hold" ? { stdinHold: inW } : {}) }, stdio: [inR, outW, errW], stdinWrite: inW };
}
