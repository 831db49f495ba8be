/**
 * The Linux runtime: OCI bundles in, containers out, with runc's lifecycle and state files.
 *
 * State lives in `<root>/<id>/state.json` (written atomically) next to the exec fifo that holds
 * a created container at the door until `start`. Status is never stored: it is read from the
 * world (is the init process alive, with the same start time as recorded; does the fifo still
 * exist; is the cgroup frozen), so a crash of the caller can never leave a stale status behind.
 */
import { ignored } from "../../core/log.ts";
import { closeSync, existsSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from "node:fs";
import { join } from "node:path";

import { signalByName } from "../../core/signals.ts";
import { EngineError, invalidArgument, notFound, SyscallError } from "../../core/errors.ts";
import { AT_FDCWD, O_CLOEXEC, O_WRONLY, type Sys, WNOHANG } from "../../core/sys/sys.ts";
export { IoFds, removeCgroup } from "./cleanup.ts";
import { type IoFds, removeCgroup } from "./cleanup.ts";
import { Cgroup, type CgroupMode, cgroupMode, type CgroupStats } from "./cgroups.ts";
import { MONITOR_FD, type MonitorOutput } from "./container-plan.ts";
import { runHooks } from "./hooks.ts";

import { type Spawned } from "./spawn.ts";
import { type ProcessSpec, type Resources, type Spec } from "../../core/runtime/oci.ts";
import { create, outputFds, start } from "./lifecycle.ts";
import { exec, processSpec } from "./exec.ts";

/** runc's status names. */
export type ContainerStatus = "creating" | "created" | "running" | "paused" | "stopped";

/** What `state` prints (runc's JSON). */
export interface ContainerState {
  ociVersion: string;
  id: string;
  pid: number;
  status: ContainerStatus;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

/** What is kept on disk per container. */
export interface StoredState {
  id: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat when created: tells a reused pid from ours. */
  startTime: string;
  bundle: string;
  rootfs: string;
  created: string;
  spec: Spec;
  /** The container's cgroup path (same under every hierarchy). */
  cgroupPath: string;
  /** The monitor's pid, when the container runs under one. */
  monitorPid?: number;
}

const ID = /^[\w+.-]+$/;

/** Options for `create`. */
export interface CreateOptions {
  bundle: string;
  /**
   * Run the container under a monitor process that reaps it and records its exit status in the
   * state directory, so the container outlives its caller (the engine uses this; runc's command
   * line does not, as a shim is the monitor there).
   */
  monitor?: boolean;
  pidFile?: string;
  consoleSocket?: string;
  /**
   * With `monitor`: the container's output goes to the monitor, which appends it to `spool`
   * (records read by core/container/spool.ts), so it keeps being captured while nobody else runs.
   * A terminal process writes to a pty whose master the monitor holds (fetch it with
   * `monitorFd(id, "output")` to write input and resize). Otherwise stdout and stderr are pipes, and
   * stdin is /dev/null ("null"), a pipe whose write end the caller gets ("pipe": closing it ends
   * the container's input), or a pipe the monitor also holds open ("hold": input survives the caller).
   */
  io?: { spool: string; stdin: "null" | "pipe" | "hold" };
  /** The bundle's config.json, already typed (the engine's own): not read and checked again. */
  spec?: Spec;
}

/** What `create` returns: the state, and with `io.stdin` a pipe, its write end (the caller's to close). */
export type CreatedContainer = ContainerState & { stdin?: number };

/** True while `pid` exists and is not a zombie. */
function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** The process start time from /proc/<pid>/stat, or undefined when the process is gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command (which may contain spaces and parentheses) start after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (rest[0] === "Z" || rest[0] === "X") return undefined; // a zombie has finished
    return rest[19];
  } catch {
    return undefined;
  }
}

/** Runtime state describes live processes: it need not survive a power cut, only a crash (rename). */
export const VOLATILE = { durable: false };

/** A runtime instance over one state root. */
export class LinuxRuntime {
  constructor(
    /** @internal */
    readonly sys: Sys,
    readonly root: string,
    /** Parent of containers' cgroups when the spec gives no cgroupsPath. */
    readonly cgroupParent = "bunker",
  ) {}

  /**
   * Status pipes of containers created by this instance and not yet started: `start` reads them
   * to the end, so that a failure between start and exec (a startContainer hook, execve itself)
   * is reported by `start` rather than only as exit status 127.
   */
  /** @internal */
  readonly startPending = new Map<string, Spawned>();

  /** @internal */
  dir(id: string): string {
    if (!ID.test(id)) throw invalidArgument(`invalid container id ${JSON.stringify(id)}: use letters, digits and _ + . -`);
    return join(this.root, id);
  }

  /** @internal */
  load(id: string): StoredState {
    const file = join(this.dir(id), "state.json");
    if (!existsSync(file)) throw notFound(`container ${id} does not exist`);
    return JSON.parse(readFileSync(file, "utf8")) as StoredState;
  }

  /** @internal */
  statusOf(s: StoredState): ContainerStatus {
    if (processStartTime(s.pid) !== s.startTime) return "stopped";
    if (existsSync(join(this.dir(s.id), "exec.fifo"))) return "created";
    if (this.cgroupOf(s).frozen()) return "paused";
    return "running";
  }

  /** @internal */
  cgroupOf(s: StoredState): Cgroup {
    return new Cgroup(this.mode(), s.cgroupPath);
  }

  private cgMode: CgroupMode | undefined;
  /** @internal */
  mode(): CgroupMode {
    return (this.cgMode ??= cgroupMode());
  }

  /** runc's `state`. */
  state(id: string): ContainerState {
    const s = this.load(id);
    const status = this.statusOf(s);
    return {
      ociVersion: s.spec.ociVersion,
      id: s.id,
      pid: status === "stopped" ? 0 : s.pid,
      status,
      bundle: s.bundle,
      rootfs: s.rootfs,
      created: s.created,
      owner: "",
      ...(s.spec.annotations ? { annotations: s.spec.annotations } : {}),
    };
  }

  /** Every container under the root. */
  list(): ContainerState[] {
    if (!existsSync(this.root)) return [];
    return readdirSync(this.root)
      .filter((id) => ID.test(id) && existsSync(join(this.root, id, "state.json")))
      .map((id) => this.state(id));
  }

  /**
   * Create the container: set everything up and leave its process waiting on the exec fifo.
   * On any failure the process is killed and the state removed: nothing is left behind.
   */
  async create(id: string, opts: CreateOptions): Promise<CreatedContainer> {
    return create(this, id, opts);
  }

  /** Let a created container exec its process. */
  async start(id: string): Promise<void> {
    return start(this, id);
  }

  /**
   * Run another process in a running container: it joins every namespace of the container's
   * init (at clone time, by the stub), its cgroup, and gets the given process spec (the
   * container's capabilities, seccomp filter and no_new_privs unless the process says otherwise).
   * Returns the exec'd pid and the pid to wait for (its exit status is the process's).
   */
  async exec(
    id: string,
    proc: ProcessSpec,
    opts: { pidFile?: string; consoleSocket?: string; detach?: boolean; stdio?: [number, number, number]; receiveTerminal?: boolean } = {},
  ): Promise<{ pid: number; waitPid: number; master?: number }> {
    return exec(this, id, proc, opts);
  }

  /**
   * The exit of a container run under a monitor: its exit code (128+signal when killed), or
   * undefined while it runs. Read from the file the monitor wrote, so any process can ask.
   */
  exitCode(id: string): number | undefined {
    const file = join(this.dir(id), "exit");
    if (!existsSync(file)) return undefined;
    const status = readFileSync(file).readInt32LE(0);
    return (status & 0x7f) === 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
  }

  /**
   * Resolve with the exit status of a monitored container once its monitor has recorded it
   * (255 when the container is gone with nothing recorded, as Docker reports a container found
   * dead). Wakes on inotify in the state directory, with a slow poll as a safety net.
   */
  watchExit(id: string): Promise<number> {
    const s = this.load(id);
    return new Promise((resolve) => {
      let done = false;
      const check = () => {
        if (done) return;
        // Liveness first, then the file: a monitor found dead has written whatever it was going
        // to write (reading the file first races with a monitor that writes and exits between).
        const dead = processStartTime(s.pid) !== s.startTime && (!s.monitorPid || !processAlive(s.monitorPid));
        const code = this.exitCode(id);
        const gone = code === undefined && dead;
        if (code === undefined && !gone) return;
        done = true;
        watcher.close();
        clearInterval(timer);
        if (s.monitorPid) {
          try {
            this.sys.wait4(s.monitorPid, WNOHANG); // our child unless we were restarted: reap it
          } catch (err) {
            ignored("not our child", err);
          }
        }
        resolve(code ?? 255);
      };
      const watcher = watch(this.dir(id), check);
      const timer = setInterval(check, 2000);
      check();
    });
  }

  /** Send `signal` to the init process, or with `all` to every process in the container's cgroup. */
  kill(id: string, signal: string | number = "SIGTERM", all = false): void {
    const s = this.load(id);
    const status = this.statusOf(s);
    if (status === "stopped" && !all) throw new EngineError("failed-precondition", "container not running");
    const sig = signalNumber(signal);
    const cg = this.cgroupOf(s);
    const targets = all ? cg.pids() : [s.pid];
    // Signals to a frozen cgroup are delivered when it thaws: thaw it after a SIGKILL to all.
    for (const pid of targets) {
      try {
        process.kill(pid, sig);
      } catch (err) {
        if (!all) throw new SyscallError("kill", Math.abs((err as { errno?: number }).errno ?? 3), String(pid));
      }
    }
    if (all && status === "paused" && sig === 9) cg.freeze(false);
  }

  /** Freeze every process of a running container. */
  pause(id: string): void {
    const s = this.load(id);
    const status = this.statusOf(s);
    if (status !== "running") throw new EngineError("failed-precondition", `container ${id} is not running (${status})`);
    this.cgroupOf(s).freeze(true);
  }

  /** Thaw a paused container. */
  resume(id: string): void {
    const s = this.load(id);
    if (this.statusOf(s) !== "paused") throw new EngineError("failed-precondition", `container ${id} is not paused`);
    this.cgroupOf(s).freeze(false);
  }

  /** Pids of the container's processes (host view). */
  ps(id: string): number[] {
    return this.cgroupOf(this.load(id)).pids();
  }

  /** Change a running container's resource limits (its cgroup's files). */
  update(id: string, resources: Resources): void {
    const s = this.load(id);
    if (this.statusOf(s) === "stopped") throw new EngineError("failed-precondition", `container ${id} is not running`);
    this.cgroupOf(s).apply(resources, undefined, this.sys);
  }

  /** The container's cgroup usage. */
  stats(id: string): CgroupStats {
    return this.cgroupOf(this.load(id)).stats();
  }

  /** Times the OOM killer ran in the container's cgroup. */
  oomKills(id: string): number {
    return this.cgroupOf(this.load(id)).oomKills();
  }

  /** Remove a stopped (or, with force, any) container. A created one is killed, as runc does. */
  async delete(id: string, force = false): Promise<void> {
    const s = this.load(id);
    const status = this.statusOf(s);
    if (status === "running" || status === "paused") {
      if (!force) throw new EngineError("failed-precondition", `cannot delete container ${id} that is not stopped: ${status}`);
    }
    this.startPending.get(id)?.close();
    this.startPending.delete(id);
    const cg = this.cgroupOf(s);
    if (status === "paused") cg.freeze(false);
    if (status !== "stopped") this.reap(s.pid, true);
    // Whatever else runs in the cgroup goes too (the init's death kills a PID namespace, but not a shared one).
    for (const pid of cg.pids()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch (err) {
        ignored("gone", err);
      }
    }
    const deadline = Date.now() + 10_000;
    while (processStartTime(s.pid) === s.startTime && Date.now() < deadline) await Bun.sleep(5);
    if (s.monitorPid) await this.reapMonitor(s.monitorPid);
    await removeCgroup(cg);
    rmSync(this.dir(id), { recursive: true, force: true });
    try {
      await runHooks("poststop", s.spec.hooks?.poststop, { ociVersion: s.spec.ociVersion, id, status: "stopped", pid: 0, bundle: s.bundle, ...(s.spec.annotations ? { annotations: s.spec.annotations } : {}) });
    } catch (err) {
      process.stderr.write(`warning: ${(err as Error).message}\n`);
    }
  }

  /**
   * Collect a monitor that is this process's child once it has exited (it does right after its
   * container): a start that failed before anyone watched the exit left it a zombie per attempt.
   * Not our child (a daemon restarted since): nothing to collect.
   */
  /** @internal */
  async reapMonitor(pid: number): Promise<void> {
    const deadline = Date.now() + 2_000;
    for (;;) {
      try {
        if (this.sys.wait4(pid, WNOHANG).pid !== 0) return;
      } catch (err) {
        ignored("the monitor is not our child, or was collected already", err);
        return;
      }
      if (Date.now() > deadline) return;
      await Bun.sleep(5);
    }
  }

  /** Kill (optionally) and collect `pid` if it is our child; ignores other processes' children. */
  /** @internal */
  reap(pid: number, kill: boolean): void {
    try {
      if (kill) process.kill(pid, "SIGKILL");
    } catch (err) {
      ignored("already gone", err);
    }
    try {
      this.sys.wait4(pid, 0);
    } catch (err) {
      ignored("not our child (created by another process)", err);
    }
  }

  /**
   * Wait for the init process of a container this process created (`run`), without blocking the
   * event loop: collected on SIGCHLD. Resolves with the exit code (128+signal when killed).
   */
  waitExit(pid: number): Promise<number> {
    return new Promise((resolve) => {
      const check = () => {
        let r;
        try {
          r = this.sys.wait4(pid, WNOHANG);
        } catch {
          process.off("SIGCHLD", check);
          resolve(255);
          return;
        }
        if (r.pid === 0) return;
        process.off("SIGCHLD", check);
        const status = r.status;
        resolve((status & 0x7f) === 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f));
      };
      process.on("SIGCHLD", check);
      check();
    });
  }

  /** The fds for output capture (all close-on-exec, collected in `io` to be closed after create). */
  outputFds(io: IoFds, o: NonNullable<CreateOptions["io"]>, tty: boolean): { monitor: MonitorOutput; stdio?: [number, number, number]; stdinWrite?: number } {
    return outputFds(this, io, o, tty);
  }

  /**
   * A copy of one of a running monitor's fds (pidfd_getfd): "output" is the pty master of a
   * terminal container (write input to it, resize it), "stdinHold" the write end of a held stdin.
   */
  monitorFd(id: string, which: "output" | "stdinHold"): number {
    const s = this.load(id);
    if (!s.monitorPid) throw new EngineError("failed-precondition", `container ${id} has no monitor`);
    const pidfd = this.sys.pidfdOpen(s.monitorPid);
    try {
      return this.sys.pidfdGetfd(pidfd, MONITOR_FD[which]);
    } finally {
      closeSync(pidfd);
    }
  }

  /** Open the files the container's process writes "0" to, to move itself into `cgroup`. */
  /** @internal */
  openSelfJoin(cgroup: Cgroup): { fd: number; what: string }[] {
    const out: { fd: number; what: string }[] = [];
    try {
      for (const { file, what } of cgroup.selfJoinFiles()) out.push({ fd: this.sys.openat2(AT_FDCWD, file, O_WRONLY | O_CLOEXEC, 0, 0), what });
    } catch (err) {
      for (const { fd } of out) closeSync(fd);
      throw err;
    }
    return out;
  }

  /** The container's process spec (the base of an exec's). */
  processSpec(id: string): ProcessSpec {
    return processSpec(this, id);
  }
}

/** Write the spec's uid and gid maps for a child in a new user namespace. */
export function writeIdMaps(pid: number, spec: Spec): void {
  const uid = spec.linux?.uidMappings ?? [];
  const gid = spec.linux?.gidMappings ?? [];
  if (uid.length === 0 || gid.length === 0) throw invalidArgument("linux.uidMappings and linux.gidMappings are required with a new user namespace");
  const text = (m: { containerID: number; hostID: number; size: number }[]) => m.map((x) => `${x.containerID} ${x.hostID} ${x.size}\n`).join("");
  for (const [file, maps, field] of [
    ["uid_map", uid, "linux.uidMappings"],
    ["gid_map", gid, "linux.gidMappings"],
  ] as const) {
    try {
      writeFileSync(`/proc/${pid}/${file}`, text(maps));
    } catch (err) {
      throw invalidArgument(`${field}: the kernel refused ${JSON.stringify(text(maps).trim())}: ${(err as Error).message}`);
    }
  }
}

/** `KILL`, `SIGKILL`, `9` → 9; unknown names are an error. */
export function signalNumber(sig: string | number): number {
  if (typeof sig === "number") return sig;
  const n = signalByName(sig);
  if (n === undefined) throw invalidArgument(`unknown signal ${JSON.stringify(sig)}`);
  return n;
}
