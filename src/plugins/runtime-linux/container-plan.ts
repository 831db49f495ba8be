/**
 * From a validated runtime spec to the plan the new container process runs between clone and
 * exec (runc's init sequence, decided here and carried out by the C stub):
 *
 *  1. not dumpable (CVE-2019-5736: nothing in the container may open our /proc/<pid>/exe),
 *     signal mask and dispositions reset, umask 0, new session;
 *  2. join namespaces given by path (user first, mount last), fork once more when a PID
 *     namespace was joined; then, if the parent asked for it, a sync point (uid/gid maps,
 *     cgroups, createRuntime hooks happen in the parent while the child waits);
 *  3. hostname and domainname;
 *  4. mounts: the whole tree made slave (or the spec's rootfs propagation), the rootfs bound on
 *     itself, then each spec mount on a mount point created and resolved *inside* the rootfs
 *     (openat2 RESOLVE_IN_ROOT, mounted through /proc/self/fd/N, so a symlink in the image cannot
 *     redirect a mount outside), /proc and /sys checked to be what they claim, devices, /dev links;
 *  5. pivot_root into the rootfs and detach the old root; masked and read-only paths; read-only
 *     root; sysctl and oom_score_adj written only after checking the file is on procfs;
 *  6. rlimits (a hard limit above the current one without CAP_SYS_RESOURCE fails naming it);
 *  7. working directory (created if missing, then checked to be inside the root), umask;
 *  8. capabilities: bounding set dropped, groups and ids switched with KEEPCAPS, then the
 *     effective/permitted/inheritable sets and the ambient set;
 *  9. the executable looked up in the container's PATH, then "ready" reported and, for
 *     create/start, the wait on the exec fifo; no_new_privs; every fd above stdio close-on-exec;
 *     execve.
 */

import { posix } from "node:path";
import { invalidArgument } from "../../core/errors.ts";
import { AT_FDCWD, O_CLOEXEC, O_CREAT, O_PATH, O_TRUNC, O_WRONLY, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS } from "../../core/sys/sys.ts";
import { NAMESPACES, RLIMITS } from "./linux-constants.ts";
import { type Arg, DataRef, Label, PlanBuilder, type Reg } from "./plan.ts";
import { type CgroupMode } from "./cgroups.ts";

import type { NamespaceType, ProcessSpec, Spec } from "../../core/runtime/oci.ts";
import { afterPivot, mkdirAll, mounts, pivot, writeProc } from "./plan-fs.ts";
import { identity, loadSeccomp, lookup, recvFd, terminal } from "./plan-process.ts";
import { closeInherited, closeInheritedInMonitor } from "./plan-fds.ts";

export const IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
export const E = { EPERM: 1, ENOENT: 2, EBADF: 9, EACCES: 13, EEXIST: 17, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ENOSYS: 38, ELOOP: 40 };
export const PR = { SET_DUMPABLE: 4, SET_KEEPCAPS: 8, SET_NAME: 15, CAPBSET_DROP: 24, SET_NO_NEW_PRIVS: 38, CAP_AMBIENT: 47 };
export const PROC_SUPER_MAGIC = 0x9fa0;
export const SYSFS_MAGIC = 0x62656572;
const CLOSE_RANGE_CLOEXEC = 4;
export const LINUX_CAPABILITY_VERSION_3 = 0x20080522;

/** The devices every container gets (runtime-spec "Default Devices"). */
export const DEFAULT_DEVICES = [
  { path: "/dev/null", type: "c", major: 1, minor: 3 },
  { path: "/dev/zero", type: "c", major: 1, minor: 5 },
  { path: "/dev/full", type: "c", major: 1, minor: 7 },
  { path: "/dev/random", type: "c", major: 1, minor: 8 },
  { path: "/dev/urandom", type: "c", major: 1, minor: 9 },
  { path: "/dev/tty", type: "c", major: 5, minor: 0 },
] as const;

/** Inputs besides the spec. */
export interface ContainerPlanInput {
  spec: Spec;
  /** The process to run (the spec's, or an exec's). */
  process: ProcessSpec;
  /** Absolute host path of the root filesystem. */
  rootfs: string;
  /** fds (open in the parent) of namespaces to join, by type. */
  joinFds: Partial<Record<NamespaceType, number>>;
  /** Namespaces to create. */
  newNamespaces: NamespaceType[];
  /** The exec fifo to wait on before exec (create/start), host path. */
  execFifo?: string;
  /** Read end of the parent→child sync pipe: the child stops at the sync point until a byte arrives. */
  syncFd?: number;
  /** For exec into a running container: no rootfs setup, only joins and the process. */
  exec?: boolean;
  /** The write end of the status pipe (the plan's error fd), for "sync" and "ready" records. */
  statusFd: number;
  /**
   * Run under a monitor: a small process (this plan's first process) that puts the container in
   * its own session, clones it with the namespace flags, reports its pid, reaps it and writes its
   * wait status to `exitFile` (atomically, through `exitFile.tmp`), so that the exit is known even
   * when whoever started it is gone. The container's stdio is whatever fds 0–2 are at spawn.
   */
  monitor?: { exitFile: string; output?: MonitorOutput };
  /** fds (open in the caller) the process gets as 0, 1 and 2 (a terminal process gets its pty instead). */
  stdio?: [number, number, number];
  /** The host's cgroup layout (read once by the caller; read here when absent). */
  cgroupMode?: CgroupMode;
  /** fds (open in the parent) the process writes "0" to, to move itself into its cgroup (Cgroup.selfJoinFiles). */
  cgroupJoinFds?: { fd: number; what: string }[];
  /** exec --detach: the forked process goes to the caller's subreaper instead of being waited for. */
  detach?: boolean;
  /** For a terminal process: the Unix socket to send the pty master to (host path). */
  consoleSocket?: string;
  /** For a terminal process: a connected socket (fd) to send the pty master on instead. */
  consoleFd?: number;
  /**
   * Read ends of pipes holding the container's state (JSON) for each createContainer and
   * startContainer hook, in order; the hook runs with one as its stdin.
   */
  hookStdin?: { createContainer?: number[]; startContainer?: number[] };
  /** fds of the caller's the process must close first (the write ends of the hooks' state pipes). */
  closeFds?: number[];
  /** Skip the spec's seccomp filter (exec with --no-seccomp style overrides; tests). */
  noSeccomp?: boolean;
}

/**
 * Output capture by the monitor (fds open in the caller): it keeps the read ends of the
 * container's stdout and stderr pipes, or the pty master it receives over `tty`, and appends what
 * arrives to `spool` (relay in the stub). `stdinHold`, the write end of the stdin pipe, is kept
 * open by the monitor so the container's stdin does not end when its caller goes away.
 */
export interface MonitorOutput {
  spool: number;
  stdout?: number;
  stderr?: number;
  stdinHold?: number;
  /** A socket pair: the container sends its pty master on `containerEnd`, the monitor receives it on `monitorEnd`. */
  tty?: { monitorEnd: number; containerEnd: number };
}

/** fd numbers in a monitor after it has put its own fds in place (3…6); the runtime fetches them with pidfd_getfd. */
export const MONITOR_FD = { output: 3, stderr: 4, spool: 5, stdinHold: 6 } as const;

/** Spec annotation asking for a minimal init as PID 1 (what `docker run --init` means). */
export const INIT_ANNOTATION = "io.bunker.init";

/** Kernel device number encoding for mknod (new_encode_dev). */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** A clean path inside the root, without the leading slash ("" for the root itself). */
export function inRoot(p: string): string {
  return posix
    .normalize("/" + p)
    .replace(/^\/+/, "")
    .replace(/\/+$/, "");
}

/** The capability data for capset: 2 × {effective, permitted, inheritable} (u32 each). */
export function capData(effective: bigint, permitted: bigint, inheritable: bigint): Uint8Array {
  const b = new Uint8Array(24);
  const v = new DataView(b.buffer);
  const parts = [effective, permitted, inheritable];
  for (let half = 0; half < 2; half++) {
    parts.forEach((m, k) => v.setUint32(half * 12 + k * 4, Number((m >> BigInt(32 * half)) & 0xffffffffn), true));
  }
  return b;
}

export function u64s(...xs: (number | bigint)[]): Uint8Array {
  const b = new Uint8Array(xs.length * 8);
  const v = new DataView(b.buffer);
  xs.forEach((x, i) => v.setBigUint64(i * 8, BigInt.asUintN(64, BigInt(x)), true));
  return b;
}

/** Build the plan; returns it with the clone flags to use. */
export function containerPlan(input: ContainerPlanInput): { plan: PlanBuilder; cloneFlags: number } {
  const { spec, process: proc } = input;
  const p = new PlanBuilder();
  const ROOT = p.reg();
  const TMP = p.reg();
  const TGT = p.reg();
  const FIFO = p.reg();
  const EXE = p.reg();
  const CHECK = p.reg();
  const HOOK = { pid: p.reg(), status: p.reg() };
  const pathBuf = p.scratch(32);
  const regs: PlanRegs = { ROOT, TMP, TGT, FIFO, EXE, CHECK, HOOK, pathBuf };
  const newNs = new Set(input.newNamespaces);
  let cloneFlags = 0;
  // A new cgroup namespace is made after the sync point, once the process is in its cgroup, so
  // that the cgroup is the namespace's root (runc does the same).
  const lateCgroupNs = newNs.has("cgroup") && input.syncFd !== undefined;
  // A time namespace cannot be made by clone (its flag is inside clone's exit-signal byte): it is
  // unshared after the sync point, given its offsets, and entered at execve (Linux ≥ 5.11).
  const timeNs = newNs.has("time");
  if (timeNs && input.syncFd === undefined) throw invalidArgument("linux.namespaces: a new time namespace needs the sync point");
  if (spec.linux?.timeOffsets && !timeNs && !input.exec) throw invalidArgument("linux.timeOffsets: needs a new time namespace");
  for (const t of newNs) if (!(t === "cgroup" && lateCgroupNs) && t !== "time") cloneFlags |= NAMESPACES[t].flag;
  if (input.monitor) {
    monitorOps(p, input, cloneFlags);
    cloneFlags = 0; // the monitor itself is a plain fork; the container gets the flags
  }

  const SOCK = cleanProcess(p, input);
  joinAndSync(p, input, newNs, { lateCgroupNs, timeNs }, CHECK);
  if (!input.exec) {
    // 3. Names.
    if (spec.hostname !== undefined) {
      if (!newNs.has("uts") && input.joinFds.uts === undefined) throw invalidArgument("hostname: setting the hostname needs a UTS namespace");
      const h = new TextEncoder().encode(spec.hostname);
      p.call("sethostname", [p.str(spec.hostname), h.length], `sethostname ${spec.hostname}`);
    }
    if (spec.domainname !== undefined) {
      const d = new TextEncoder().encode(spec.domainname);
      p.call("setdomainname", [p.str(spec.domainname), d.length], `setdomainname ${spec.domainname}`);
    }

    // 4–5. The filesystem.
    if (!newNs.has("mount")) throw invalidArgument("linux.namespaces: a new mount namespace is required");
    mounts(p, input, { ROOT, TMP, TGT, pathBuf }, newNs.has("user"));
    hooksInside(p, "createContainer", spec.hooks?.createContainer, input.hookStdin?.createContainer, HOOK);
    if (input.execFifo) p.call("openat", [AT_FDCWD, p.str(input.execFifo), O_PATH | O_CLOEXEC, 0], "open the exec fifo", { store: FIFO });
    pivot(p, input, ROOT);
    afterPivot(p, spec, CHECK);
  }

  // The terminal: a pty from the container's devpts, its master sent to the console socket.
  if (SOCK) terminal(p, proc, SOCK, TMP, TGT, !!input.exec);

  processSteps(p, input, regs);
  return { plan: p, cloneFlags };
}

/** The registers and scratch buffer a container's plan uses throughout. */
interface PlanRegs {
  ROOT: Reg;
  TMP: Reg;
  TGT: Reg;
  FIFO: Reg;
  EXE: Reg;
  CHECK: Reg;
  HOOK: { pid: Reg; status: Reg };
  pathBuf: DataRef;
}

/** Step 1: a clean process in its cgroup, its stdio, signals, session; the console socket connected. Returns its register. */
function cleanProcess(p: PlanBuilder, input: ContainerPlanInput): Reg | undefined {
  const proc = input.process;
  // 1. A clean process, in its cgroup (the monitor, above, stays out of it).
  for (const fd of input.closeFds ?? []) p.call("close", [fd], "close the runtime's end of a pipe");
  if (input.stdio) input.stdio.forEach((fd, i) => p.call("dup3", [fd, i, 0], `fd ${fd} as the container's fd ${i}`));
  if (input.cgroupJoinFds?.length) {
    const zero = p.str("0");
    for (const { fd, what } of input.cgroupJoinFds) p.call("write", [fd, zero, 1], what);
  }
  closeInherited(p, input);
  p.call("prctl", [PR.SET_DUMPABLE, 0, 0, 0, 0], "prctl PR_SET_DUMPABLE 0");
  resetSignals(p);
  p.call("umask", [0], "umask 0");
  if (!input.exec) p.call("setsid", [], "setsid");
  // The console socket is a host path: connect before any namespace or root change.
  const SOCK = proc.terminal ? p.reg() : undefined;
  const ttyPair = input.monitor?.output?.tty;
  if (SOCK && ttyPair && !input.exec)
    p.set(SOCK, ttyPair.containerEnd); // the monitor receives the master
  else if (SOCK && input.consoleFd !== undefined)
    p.set(SOCK, input.consoleFd); // the caller receives it
  else if (SOCK) {
    if (!input.consoleSocket) throw invalidArgument("process.terminal: a console socket is required");
    p.call("socket", [1 /* AF_UNIX */, 1 /* SOCK_STREAM */ | O_CLOEXEC, 0], "socket for the console", { store: SOCK });
    const addr = new Uint8Array(110);
    new DataView(addr.buffer).setUint16(0, 1, true);
    const path = new TextEncoder().encode(input.consoleSocket);
    if (path.length > 107) throw invalidArgument(`--console-socket: path ${input.consoleSocket} is longer than 107 bytes`);
    addr.set(path, 2);
    p.call("connect", [SOCK, p.bytes(addr), 110], `connect to the console socket ${input.consoleSocket}`);
  }

  return SOCK;
}

/** Step 2: the namespaces joined by path, then the sync point (user ids, late cgroup and time namespaces). */
function joinAndSync(p: PlanBuilder, input: ContainerPlanInput, newNs: Set<NamespaceType>, late: { lateCgroupNs: boolean; timeNs: boolean }, CHECK: Reg): void {
  const { spec } = input;
  const { lateCgroupNs, timeNs } = late;
  // 2. Namespaces by path, then the sync point.
  const order: NamespaceType[] = ["user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount"];
  for (const t of order) {
    const fd = input.joinFds[t];
    if (fd !== undefined) p.call("setns", [fd, NAMESPACES[t].flag], `join the ${t} namespace`);
  }
  if (input.joinFds.pid !== undefined) p.fork("fork into the joined PID namespace", !input.detach);
  if (input.syncFd !== undefined) {
    p.call("write", [input.statusFd, p.bytes(new Uint8Array([0xfd, 0xff, 0xff, 0xff, 0, 0, 0, 0])), 8], "report the sync point");
    p.call("read", [input.syncFd, p.scratch(8), 1], "wait for the runtime at the sync point", { store: CHECK });
    if (newNs.has("user")) {
      p.call("setresgid", [0, 0, 0], "become root (gid 0) in the new user namespace");
      p.call("setresuid", [0, 0, 0], "become root (uid 0) in the new user namespace");
    }
    if (lateCgroupNs) p.call("unshare", [NAMESPACES.cgroup.flag], "create the cgroup namespace");
    if (timeNs) {
      p.call("unshare", [NAMESPACES.time.flag], "create the time namespace");
      const offsets = Object.entries(spec.linux?.timeOffsets ?? {})
        .map(([clock, o]) => `${clock} ${o.secs ?? 0} ${o.nanosecs ?? 0}\n`)
        .join("");
      if (offsets) writeProc(p, "/proc/self/timens_offsets", offsets, CHECK);
    }
  }
}

/** Steps 6–9: rlimits, working directory, identity and seccomp, then the program is looked up, started and exec'd. */
function processSteps(p: PlanBuilder, input: ContainerPlanInput, r: PlanRegs): void {
  const { spec, process: proc } = input;
  const { TMP, TGT, FIFO, EXE, CHECK, HOOK, pathBuf } = r;
  // 6. rlimits.
  for (const r of proc.rlimits ?? []) {
    const res = RLIMITS[r.type];
    if (res === undefined) throw invalidArgument(`process.rlimits: unknown rlimit ${r.type}`);
    if (r.soft > r.hard) throw invalidArgument(`process.rlimits: ${r.type}: soft limit ${r.soft} is above the hard limit ${r.hard}`);
    p.call("prlimit64", [0, res, p.bytes(u64s(r.soft, r.hard)), 0], `setrlimit ${r.type} (soft ${r.soft}, hard ${r.hard}; raising a hard limit needs CAP_SYS_RESOURCE)`);
  }
  if (proc.oomScoreAdj !== undefined) writeProc(p, "/proc/self/oom_score_adj", String(proc.oomScoreAdj), CHECK);

  // 7. Working directory.
  const cwd = inRoot(proc.cwd);
  if (!input.exec && cwd) mkdirAll(p, undefined, cwd, TMP, TGT, true);
  p.call("chdir", [p.str(proc.cwd)], `chdir ${proc.cwd}`);
  p.cwdCheck(`working directory ${proc.cwd} is inside the container`);

  // 8. Identity and capabilities. Without no_new_privs a filter needs CAP_SYS_ADMIN, so it goes in first.
  const seccomp = spec.linux?.seccomp && !input.noSeccomp ? spec.linux.seccomp : undefined;
  if (seccomp && !proc.noNewPrivileges) loadSeccomp(p, seccomp);
  identity(p, proc);

  // 9. The program, readiness, the start signal, exec.
  const env = proc.env ?? [];
  lookup(p, proc.args[0]!, env, EXE);
  if (input.execFifo) {
    p.call("write", [input.statusFd, p.bytes(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])), 8], "report ready");
    p.fdPath(FIFO, pathBuf, "exec fifo path");
    p.call("openat", [AT_FDCWD, pathBuf, O_WRONLY | O_CLOEXEC, 0], "wait for start (open the exec fifo)", { store: TMP });
    p.call("write", [TMP, p.str("0"), 1], "write to the exec fifo");
    p.call("close", [TMP], "close the exec fifo");
    p.call("close", [FIFO], "close the exec fifo");
  }
  if (!input.exec) hooksInside(p, "startContainer", spec.hooks?.startContainer, input.hookStdin?.startContainer, HOOK);
  if (proc.noNewPrivileges) p.call("prctl", [PR.SET_NO_NEW_PRIVS, 1, 0, 0, 0], "prctl PR_SET_NO_NEW_PRIVS");
  if (seccomp && proc.noNewPrivileges) loadSeccomp(p, seccomp);
  p.call("umask", [proc.user.umask ?? 0o022], "umask");
  p.call("close_range", [3, 0xffffffff, CLOSE_RANGE_CLOEXEC, 0], "mark every fd above stdio close-on-exec", { ok: [E.ENOSYS] });
  const argv = p.pointerArray(proc.args.map((a) => p.str(a)));
  const envp = p.pointerArray(env.map((e) => p.str(e)));
  // `docker run --init`: PID 1 is a minimal init made by the stub itself (no binary in the image).
  if (!input.exec && spec.annotations?.[INIT_ANNOTATION] === "true") {
    // Named as Docker's init is, so `ps` and `docker top` show PID 1 as docker-init.
    p.call("prctl", [PR.SET_NAME, p.str("docker-init"), 0, 0, 0], "name the init docker-init");
    p.init("init: fork the program");
  }
  p.call("execve", [EXE, argv, envp], `exec ${proc.args[0]}`);
}

/** Unblock every signal and give each its default action. */
function resetSignals(p: PlanBuilder): void {
  p.call("rt_sigprocmask", [2, p.bytes(new Uint8Array(8)), 0, 8], "unblock all signals");
  const dfl = p.bytes(new Uint8Array(32));
  for (let sig = 1; sig <= 64; sig++) {
    if (sig === 9 || sig === 19) continue;
    p.call("rt_sigaction", [sig, dfl, 0, 8], `reset signal ${sig}`, { ok: [E.EINVAL] });
  }
}

/** The monitor's steps; the container's own steps follow the returned point. */
function monitorOps(p: PlanBuilder, input: ContainerPlanInput, flags: number): void {
  const pid = p.reg();
  const tmp = p.reg();
  const container = new Label();
  closeInheritedInMonitor(p, input);
  p.call("prctl", [4 /* PR_SET_DUMPABLE */, 0, 0, 0, 0], "monitor: not dumpable");
  p.call("setsid", [], "monitor: setsid", { ok: [E.EPERM] });
  p.call("prctl", [36 /* PR_SET_CHILD_SUBREAPER */, 1, 0, 0, 0], "monitor: subreaper");
  resetSignals(p); // the caller's handlers are code the monitor unmaps
  // Trimmed before the container is cloned: the clone then copies a few hundred kilobytes of
  // address space instead of the whole caller's (measured: ~3 ms less per start in a daemon).
  p.trim("monitor: drop the memory it does not need");
  p.clone(flags | 17 /* SIGCHLD */, container, pid, "monitor: clone the container");
  // Tell the caller the container's pid: {-2, pid}.
  const rec = p.bytes(new Uint8Array(8));
  p.set(tmp, -2);
  p.store32(tmp, rec, "record kind");
  p.store32(pid, new DataRef(rec.offset + 4), "record pid");
  p.call("write", [input.statusFd, rec, 8], "monitor: report the container's pid");
  p.call("close", [input.statusFd], "monitor: close the status pipe");
  const out = input.monitor!.output;
  if (out) {
    // The output source: the pty master (sent by the container) or the stdout pipe.
    let first: Arg = out.stdout ?? -1;
    if (out.tty) {
      p.call("close", [out.tty.containerEnd], "monitor: close the container's end of the terminal socket");
      p.load32(recvFd(p, out.tty.monitorEnd), tmp, "monitor: the pty master");
      first = tmp;
    }
    // Own fds to 3…6 (through high numbers, so none is overwritten before it is moved).
    const mine: [Arg, number][] = [
      [first, MONITOR_FD.output],
      [out.stderr ?? -1, MONITOR_FD.stderr],
      [out.spool, MONITOR_FD.spool],
      [out.stdinHold ?? -1, MONITOR_FD.stdinHold],
    ];
    const high = [p.reg(), p.reg(), p.reg(), p.reg()];
    mine.forEach(([fd, at], i) => {
      if (fd === -1) p.set(high[i]!, -1);
      else p.call("fcntl", [fd, 1030 /* F_DUPFD_CLOEXEC */, 1000 + at], `monitor: keep fd for ${at}`, { store: high[i]! });
    });
    mine.forEach(([fd, at], i) => {
      if (fd !== -1) p.call("dup3", [high[i]!, at, O_CLOEXEC], `monitor: fd ${at}`);
      else p.call("close", [at], `monitor: fd ${at} unused`, { ok: [E.EBADF] });
    });
  }
  // Nothing of the caller's stays open here: not its stdio, not its sockets.
  for (const fd of [0, 1, 2]) p.call("close", [fd], `monitor: close the caller's fd ${fd}`, { ok: [E.EBADF] });
  p.call("close_range", [out ? 7 : 3, 0xffffffff, 0, 0], "monitor: close inherited fds", { ok: [E.ENOSYS] });
  if (out) {
    const pidfd = p.reg();
    p.call("pidfd_open", [pid, 0], "monitor: pidfd of the container", { store: pidfd });
    p.relay(MONITOR_FD.output, 1, out.stderr !== undefined ? MONITOR_FD.stderr : -1, 2, pidfd, MONITOR_FD.spool, "monitor: relay output");
    if (!out.tty && out.stdout === undefined) throw new Error("container plan: monitor output without a source");
  }
  const status = p.reg();
  p.wait(pid, status, "monitor: wait for the container");
  const statusBytes = p.bytes(new Uint8Array(8));
  p.store32(status, statusBytes, "exit status");
  const tmpPath = p.str(`${input.monitor!.exitFile}.tmp`);
  p.call("openat", [AT_FDCWD, tmpPath, O_WRONLY | O_CREAT | O_CLOEXEC | O_TRUNC, 0o600], "monitor: open the exit file", { store: tmp });
  p.call("write", [tmp, statusBytes, 4], "monitor: write the exit status");
  p.call("fsync", [tmp], "monitor: fsync the exit file");
  p.call("close", [tmp], "close");
  p.call("renameat", [AT_FDCWD, tmpPath, AT_FDCWD, p.str(input.monitor!.exitFile)], "monitor: publish the exit file");
  p.call("exit_group", [0], "monitor: done");
  p.here(container);
}

/** Registers and scratch space shared by the filesystem steps. */
export interface FsRegs {
  ROOT: Reg;
  TMP: Reg;
  TGT: Reg;
  pathBuf: DataRef;
}

/** Open `path` write-only, check it is on procfs, write `value`. */
type Hook = NonNullable<NonNullable<Spec["hooks"]>["createContainer"]>[number];

/**
 * Hooks that run inside the container (createContainer: in its namespaces before pivot_root, so
 * the path is the host's; startContainer: after start, just before the process, so the path is
 * the container's): each is forked, gets its state pipe as stdin and a SIGALRM after `timeout`
 * seconds, and is waited for; a non-zero status fails the container with the hook named.
 */
function hooksInside(p: PlanBuilder, kind: string, hooks: Hook[] | undefined, stdin: number[] | undefined, regs: { pid: Reg; status: Reg }): void {
  if (!hooks?.length) return;
  if (stdin?.length !== hooks.length) throw new Error(`container plan: ${kind}: one state pipe per hook is needed`);
  hooks.forEach((h, i) => {
    const name = `${kind} hook #${i} (${h.path})`;
    const child = new Label();
    const done = new Label();
    p.clone(17 /* SIGCHLD */, child, regs.pid, `${name}: fork`);
    p.wait(regs.pid, regs.status, `${name}: wait`);
    p.jumpIfZero(regs.status, done);
    p.failWithStatus(regs.status, name);
    p.here(child);
    if (h.timeout) p.call("setitimer", [0 /* ITIMER_REAL */, p.bytes(u64s(0, 0, h.timeout, 0)), 0], `${name}: timeout ${h.timeout}s`);
    p.call("dup3", [stdin[i]!, 0, 0], `${name}: state on stdin`);
    const args = h.args?.length ? h.args : [h.path];
    p.call("execve", [p.str(h.path), p.pointerArray(args.map((a) => p.str(a))), p.pointerArray((h.env ?? []).map((e) => p.str(e)))], `${name}: exec`);
    p.here(done);
  });
}
