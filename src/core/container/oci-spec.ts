/**
 * The OCI runtime spec for a container, from its merged config and host config, with Docker's
 * defaults (moby's daemon/oci_linux.go and oci/defaults.go describe the same policy): its 14
 * default capabilities, the masked and read-only /proc and /sys paths, the default seccomp
 * profile, new pid/ipc/uts/mount/cgroup namespaces, /dev/shm of 64 MB, /etc/hosts,
 * /etc/hostname and /etc/resolv.conf bound from the container's directory. `--privileged`
 * lifts capabilities, seccomp, masking and device rules.
 */
import { readFileSync } from "node:fs";
import { invalidArgument } from "../errors.ts";
import { hostDevices, parseDeviceCgroupRule } from "./devices.ts";
import type { ContainerConfig, HostConfig } from "./create-config.ts";
import { defaultSeccompProfile, type SeccompSpec } from "./seccomp-default.ts";

/** Docker's default capabilities. */
export const DEFAULT_CAPS = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP",
  "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
];

/** Every capability (Linux 6.x). */
export const ALL_CAPS = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
  "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
];

/**
 * The capabilities this daemon may hand out: its own bounding set (a container cannot be given
 * one the engine lacks: capset would fail, so "ALL" means all of these).
 */
const HOST_BOUNDING: Set<string> = (() => {
  try {
    const hex = /CapBnd:\s+([0-9a-f]+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
    if (!hex) return new Set(ALL_CAPS);
    const mask = BigInt(`0x${hex}`);
    return new Set(ALL_CAPS.filter((_, i) => /* ALL_CAPS is in capability-number order */ (mask >> BigInt(i)) & 1n));
  } catch {
    return new Set(ALL_CAPS);
  }
})();

export const DEFAULT_MASKED = [
  "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
  "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
];
export const DEFAULT_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** What the spec is made from. */
export interface SpecInput {
  id: string;
  config: ContainerConfig;
  hostConfig: HostConfig;
  /** The program and its arguments (Entrypoint + Cmd, resolved). */
  args: string[];
  env: string[];
  user: { uid: number; gid: number; additionalGids: number[] };
  rootfs: string;
  /** A network namespace to join (`--network container:<id>`). */
  netnsPath?: string;
  /** The daemon's cgroup driver (`native.cgroupdriver`): cgroupfs (default) or systemd naming. */
  cgroupDriver?: "cgroupfs" | "systemd";
  /** Namespaces of another container to join (`--pid`/`--ipc container:<id>`), and its /dev/shm. */
  nsPaths?: { pid?: string; ipc?: string };
  /** Files bound into the container: /etc/hosts, /etc/hostname, /etc/resolv.conf. */
  etcFiles: { hosts: string; hostname: string; resolvConf: string };
  /** Extra mounts (volumes, binds, tmpfs), already resolved to runtime-spec mounts. */
  mounts: Record<string, unknown>[];
  /** A seccomp profile file's parsed contents (`--security-opt seccomp=<file>`). */
  seccompProfile?: SeccompSpec;
}

/** `--cap-add`/`--cap-drop` on top of the defaults ("ALL" allowed in both, names with or without CAP_). */
export function capabilities(add: string[] = [], drop: string[] = [], privileged = false): string[] {
  if (privileged) return [...ALL_CAPS].filter((c) => HOST_BOUNDING.has(c));
  const norm = (c: string) => {
    const up = c.toUpperCase();
    const name = up === "ALL" ? "ALL" : up.startsWith("CAP_") ? up : `CAP_${up}`;
    if (name !== "ALL" && !ALL_CAPS.includes(name)) throw invalidArgument(`invalid capability: ${c}`);
    return name;
  };
  const adds = add.map(norm);
  const drops = drop.map(norm);
  let caps = adds.includes("ALL") ? [...ALL_CAPS].filter((c) => HOST_BOUNDING.has(c)) : [...DEFAULT_CAPS];
  if (drops.includes("ALL")) caps = [];
  for (const c of adds) if (c !== "ALL" && !caps.includes(c)) caps.push(c);
  return caps.filter((c) => !drops.includes(c) || adds.includes(c));
}

/** Parse Docker's `--security-opt` list. */
export function securityOptions(opts: string[] = []): { seccomp?: "unconfined" | string; noNewPrivileges: boolean } {
  let seccomp: string | undefined;
  let nnp = false;
  for (const o of opts) {
    const [k, val] = o.includes("=") ? [o.slice(0, o.indexOf("=")), o.slice(o.indexOf("=") + 1)] : o.includes(":") ? [o.slice(0, o.indexOf(":")), o.slice(o.indexOf(":") + 1)] : [o, ""];
    if (k === "seccomp") seccomp = val;
    else if (k === "no-new-privileges") nnp = val === "" || val === "true";
    else if (k === "label" || k === "apparmor") continue; // no LSM on this engine: accepted, as dockerd does without one
    else throw invalidArgument(`invalid --security-opt 2: ${JSON.stringify(o)}`); // dockerd's words
  }
  return { ...(seccomp !== undefined ? { seccomp } : {}), noNewPrivileges: nnp };
}

/** Docker's memory-swap rule: -1 unlimited, 0/unset twice the memory, else memory+swap. */
function swapOf(h: HostConfig): number | undefined {
  if (!h.Memory) return undefined;
  if (h.MemorySwap === -1) return -1;
  if (!h.MemorySwap) return h.Memory * 2;
  if (h.MemorySwap < h.Memory) throw invalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage");
  return h.MemorySwap;
}

/** Build the runtime spec. */
export function buildSpec(input: SpecInput): Record<string, unknown> {
  const c = input.config;
  const h = input.hostConfig;
  const privileged = !!h.Privileged;
  const caps = capabilities(h.CapAdd ?? [], h.CapDrop ?? [], privileged);
  const sec = securityOptions(h.SecurityOpt ?? []);
  if (h.Memory && h.Memory > 0 && h.Memory < 6 * 1024 * 1024) throw invalidArgument("Minimum memory limit allowed is 6MB");
  const namespaces: Record<string, unknown>[] = [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }];
  const netMode = h.NetworkMode || "default";
  if (input.netnsPath) namespaces.push({ type: "network", path: input.netnsPath });
  else if (netMode !== "host") namespaces.push({ type: "network" });
  if ((h.CgroupnsMode ?? "private") !== "host") namespaces.push({ type: "cgroup" });
  // Shared namespaces (cri-dockerd's pods use them): host, or another container's by its pid.
  const share = (type: string, mode: string | null | undefined, path: string | undefined) => {
    const i = namespaces.findIndex((n) => n.type === type);
    if (mode === "host") namespaces.splice(i, 1);
    else if (mode?.startsWith("container:")) {
      if (!path) throw invalidArgument(`cannot join the ${type} namespace of ${mode.slice(10)}: it is not running`);
      namespaces[i] = { type, path };
    }
  };
  share("pid", h.PidMode, input.nsPaths?.pid);
  share("ipc", h.IpcMode, input.nsPaths?.ipc);
  share("uts", h.UTSMode, undefined);
  if (h.UTSMode && h.UTSMode !== "host") throw invalidArgument(`invalid UTS mode: ${h.UTSMode}`);
  if (h.IpcMode && !["", "private", "shareable", "host", "none"].includes(h.IpcMode) && !h.IpcMode.startsWith("container:")) throw invalidArgument(`invalid IPC mode: ${h.IpcMode}`);
  if (h.PidMode && h.PidMode !== "host" && !h.PidMode.startsWith("container:")) throw invalidArgument(`invalid PID mode: ${h.PidMode}`);
  const hostname = c.Hostname || input.id.slice(0, 12);
  const mounts: Record<string, unknown>[] = [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", privileged ? "rw" : "ro"] },
    { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", privileged ? "rw" : "ro"] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    // /dev/shm: the host's with --ipc host. With --ipc container:<id> the System V IPC namespace
    // is shared but /dev/shm stays the container's own: each container's /dev/shm is a tmpfs
    // inside its mount namespace, which another namespace cannot bind (dockerd keeps it on the host).
    h.IpcMode === "host"
      ? { destination: "/dev/shm", type: "bind", source: "/dev/shm", options: ["rbind", "rprivate"] }
      : { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", `size=${h.ShmSize || 64 * 1024 * 1024}`] },
    { destination: "/etc/resolv.conf", type: "bind", source: input.etcFiles.resolvConf, options: ["rbind", "rprivate"] },
    { destination: "/etc/hostname", type: "bind", source: input.etcFiles.hostname, options: ["rbind", "rprivate"] },
    { destination: "/etc/hosts", type: "bind", source: input.etcFiles.hosts, options: ["rbind", "rprivate"] },
    ...input.mounts,
  ];
  const extra = hostDevices(h.Devices ?? []);
  const resources: Record<string, unknown> = {
    devices: privileged ? [{ allow: true, access: "rwm" }] : [{ allow: false, access: "rwm" }, ...extra.rules, ...(h.DeviceCgroupRules ?? []).map(parseDeviceCgroupRule)],
  };
  const memory: Record<string, number> = {};
  if (h.Memory) memory.limit = h.Memory;
  const swap = swapOf(h);
  if (swap !== undefined) memory.swap = swap;
  if (h.MemoryReservation) memory.reservation = h.MemoryReservation;
  if (Object.keys(memory).length) resources.memory = memory;
  const cpu: Record<string, unknown> = {};
  if (h.CpuShares) cpu.shares = h.CpuShares;
  if (h.NanoCpus) {
    if (h.CpuQuota || h.CpuPeriod) throw invalidArgument("Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set");
    cpu.period = 100000;
    cpu.quota = Math.round((h.NanoCpus / 1e9) * 100000);
  } else {
    if (h.CpuQuota) cpu.quota = h.CpuQuota;
    if (h.CpuPeriod) cpu.period = h.CpuPeriod;
  }
  // --cpu-rt-period / --cpu-rt-runtime (microseconds), as runc writes them.
  if (h.CpuRealtimePeriod) cpu.realtimePeriod = h.CpuRealtimePeriod;
  if (h.CpuRealtimeRuntime) cpu.realtimeRuntime = h.CpuRealtimeRuntime;
  if (h.CpusetCpus) cpu.cpus = h.CpusetCpus;
  if (h.CpusetMems) cpu.mems = h.CpusetMems;
  if (Object.keys(cpu).length) resources.cpu = cpu;
  if (h.PidsLimit && h.PidsLimit > 0) resources.pids = { limit: h.PidsLimit };
  if (h.BlkioWeight) resources.blockIO = { weight: h.BlkioWeight };
  const rlimits = (h.Ulimits ?? []).map((u) => ({ type: `RLIMIT_${u.Name.toUpperCase()}`, soft: u.Soft, hard: u.Hard }));
  let seccomp: SeccompSpec | undefined;
  if (!privileged && sec.seccomp !== "unconfined") seccomp = input.seccompProfile ?? defaultSeccompProfile(caps);
  const spec: Record<string, unknown> = {
    ociVersion: "1.0.2",
    process: {
      terminal: !!c.Tty,
      user: { uid: input.user.uid, gid: input.user.gid, ...(input.user.additionalGids.length ? { additionalGids: input.user.additionalGids } : {}) },
      args: input.args,
      env: input.env,
      cwd: c.WorkingDir || "/",
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      ...(rlimits.length ? { rlimits } : {}),
      noNewPrivileges: sec.noNewPrivileges,
      ...(h.OomScoreAdj ? { oomScoreAdj: h.OomScoreAdj } : {}),
      ...(c.Tty && h.ConsoleSize?.length === 2 && h.ConsoleSize[0]! > 0 ? { consoleSize: { height: h.ConsoleSize[0], width: h.ConsoleSize[1] } } : {}),
    },
    root: { path: input.rootfs, readonly: !!h.ReadonlyRootfs },
    // --init: the runtime makes PID 1 a minimal init (reaps, forwards signals) from its own code.
    ...(h.Init ? { annotations: { "io.bunker.init": "true" } } : {}),
    // With --uts host there is no namespace of its own to name (the spec forbids it then).
    ...(h.UTSMode === "host" ? {} : { hostname, ...(c.Domainname ? { domainname: c.Domainname } : {}) }),
    mounts,
    linux: {
      namespaces,
      resources,
      ...(extra.devices.length ? { devices: extra.devices } : {}),
      // With a network namespace of its own, unprivileged ports and ping are allowed (moby's defaults
      // since 20.10), unless the request sets them.
      ...((): { sysctl?: Record<string, string> } => {
        const own: Record<string, string> = netMode !== "host" && !input.netnsPath ? { "net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647" } : {};
        const all = { ...own, ...(h.Sysctls ?? {}) };
        return Object.keys(all).length ? { sysctl: all } : {};
      })(),
      ...(privileged ? {} : { maskedPaths: h.MaskedPaths ?? DEFAULT_MASKED, readonlyPaths: h.ReadonlyPaths ?? DEFAULT_READONLY }),
      ...(seccomp ? { seccomp } : {}),
      ...(input.cgroupDriver === "systemd"
        ? { cgroupsPath: `${h.CgroupParent || "system.slice"}:docker:${input.id}` } // <parent>.slice/docker-<id>.scope, as dockerd names it
        : h.CgroupParent
          ? { cgroupsPath: `/${h.CgroupParent.replace(/^\/+/, "")}/${input.id}` }
          : {}),
    },
  };
  return spec;
}
