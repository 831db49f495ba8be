/**
 * The OCI runtime spec for a container, from its merged config and host config, with Docker's
 * defaults (moby's daemon/oci_linux.go and oci/defaults.go describe the same policy): its 14
 * default capabilities, the masked and read-only /proc and /sys paths, the default seccomp
 * profile, new pid/ipc/uts/mount/cgroup namespaces, /dev/shm of 64 MB, /etc/hosts,
 * /etc/hostname and /etc/resolv.conf bound from the container's directory. `--privileged`
 * lifts capabilities, seccomp, masking and device rules.
 *
 * The spec is built by composable steps (process, namespaces, mounts, resources, security,
 * cgroup), as moby's `SpecOpts` compose; the host config's rules were checked at create
 * (host-config-rules.ts), so no step re-checks them.
 */
import { readFileSync } from "node:fs";
import { invalidArgument } from "../errors.ts";
import { CAPABILITIES } from "../runtime/capabilities.ts";
import type { MountSpec, Spec } from "../runtime/oci.ts";
import type { ContainerConfig, HostConfig } from "./create-config.ts";
import { hostDevices } from "./devices.ts";
import { resourcesOf } from "./resources.ts";
import { defaultSeccompProfile, type SeccompSpec } from "./seccomp-default.ts";

/** Docker's default capabilities. */
export const DEFAULT_CAPS = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** Every capability (Linux 6.x), in capability-number order. */
export const ALL_CAPS: readonly string[] = CAPABILITIES;

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
  "/proc/asound",
  "/proc/acpi",
  "/proc/interrupts",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
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
  mounts: MountSpec[];
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
    else if (k === "label" || k === "apparmor")
      continue; // no LSM on this engine: accepted, as dockerd does without one
    else throw invalidArgument(`invalid --security-opt 2: ${JSON.stringify(o)}`); // dockerd's words
  }
  return { ...(seccomp !== undefined ? { seccomp } : {}), noNewPrivileges: nnp };
}

/** A step of the spec: it fills in its part of `spec` from the input. */
export type SpecStep = (spec: Spec, input: SpecInput) => void;

/** The process: program, environment, user, capabilities, rlimits, terminal. */
export const withProcess: SpecStep = (spec, input) => {
  const c = input.config;
  const h = input.hostConfig;
  const caps = capabilities(h.CapAdd ?? [], h.CapDrop ?? [], !!h.Privileged);
  const rlimits = (h.Ulimits ?? []).map((u) => ({ type: `RLIMIT_${u.Name.toUpperCase()}`, soft: u.Soft, hard: u.Hard }));
  spec.process = {
    terminal: !!c.Tty,
    user: { uid: input.user.uid, gid: input.user.gid, ...(input.user.additionalGids.length ? { additionalGids: input.user.additionalGids } : {}) },
    args: input.args,
    env: input.env,
    cwd: c.WorkingDir || "/",
    capabilities: { bounding: caps, effective: caps, permitted: caps },
    ...(rlimits.length ? { rlimits } : {}),
    noNewPrivileges: securityOptions(h.SecurityOpt ?? []).noNewPrivileges,
    ...(h.OomScoreAdj ? { oomScoreAdj: h.OomScoreAdj } : {}),
    ...(c.Tty && h.ConsoleSize?.length === 2 && h.ConsoleSize[0]! > 0 ? { consoleSize: { height: h.ConsoleSize[0]!, width: h.ConsoleSize[1]! } } : {}),
  };
  spec.root = { path: input.rootfs, readonly: !!h.ReadonlyRootfs };
  // --init: the runtime makes PID 1 a minimal init (reaps, forwards signals) from its own code.
  if (h.Init) spec.annotations = { "io.bunker.init": "true" };
  // With --uts host there is no namespace of its own to name (the spec forbids it then).
  if (h.UTSMode !== "host") {
    spec.hostname = c.Hostname || input.id.slice(0, 12);
    if (c.Domainname) spec.domainname = c.Domainname;
  }
};

/** The namespaces: new pid/ipc/uts/mount/network/cgroup ones, or the host's, or another container's. */
export const withNamespaces: SpecStep = (spec, input) => {
  const h = input.hostConfig;
  const namespaces: { type: "pid" | "ipc" | "uts" | "mount" | "network" | "cgroup"; path?: string }[] = [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }];
  const netMode = h.NetworkMode || "default";
  if (input.netnsPath) namespaces.push({ type: "network", path: input.netnsPath });
  else if (netMode !== "host") namespaces.push({ type: "network" });
  if ((h.CgroupnsMode ?? "private") !== "host") namespaces.push({ type: "cgroup" });
  // Shared namespaces (cri-dockerd's pods use them): host, or another container's by its pid.
  const share = (type: "pid" | "ipc" | "uts", mode: string | null | undefined, path: string | undefined) => {
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
  spec.linux = { ...spec.linux, namespaces };
  // With a network namespace of its own, unprivileged ports and ping are allowed (moby's defaults
  // since 20.10), unless the request sets them.
  const own: Record<string, string> = netMode !== "host" && !input.netnsPath ? { "net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "0 2147483647" } : {};
  const sysctl = { ...own, ...(h.Sysctls ?? {}) };
  if (Object.keys(sysctl).length) spec.linux.sysctl = sysctl;
};

/** The mounts: /proc, /dev, /sys, cgroups, /dev/shm, the /etc files, then volumes and binds. */
export const withMounts: SpecStep = (spec, input) => {
  const h = input.hostConfig;
  const privileged = !!h.Privileged;
  spec.mounts = [
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
};

/** The cgroup limits and devices: `--device` nodes, the device rules, memory, CPU, pids, block I/O. */
export const withResources: SpecStep = (spec, input) => {
  const extra = hostDevices(input.hostConfig.Devices ?? []);
  spec.linux = { ...spec.linux, resources: resourcesOf(input.hostConfig, { deviceRules: extra.rules }) };
  if (extra.devices.length) spec.linux.devices = extra.devices;
};

/** Masked and read-only paths and seccomp, unless privileged. */
export const withSecurity: SpecStep = (spec, input) => {
  const h = input.hostConfig;
  if (h.Privileged) return;
  const sec = securityOptions(h.SecurityOpt ?? []);
  spec.linux = { ...spec.linux, maskedPaths: h.MaskedPaths ?? DEFAULT_MASKED, readonlyPaths: h.ReadonlyPaths ?? DEFAULT_READONLY };
  if (sec.seccomp !== "unconfined") spec.linux.seccomp = input.seccompProfile ?? defaultSeccompProfile(spec.process?.capabilities?.bounding ?? []);
};

/** The cgroup's path: `<parent>.slice/docker-<id>.scope` with the systemd driver, `/<parent>/<id>` with --cgroup-parent. */
export const withCgroupsPath: SpecStep = (spec, input) => {
  const parent = input.hostConfig.CgroupParent;
  if (input.cgroupDriver === "systemd") spec.linux = { ...spec.linux, cgroupsPath: `${parent || "system.slice"}:docker:${input.id}` };
  else if (parent) spec.linux = { ...spec.linux, cgroupsPath: `/${parent.replace(/^\/+/, "")}/${input.id}` };
};

/** The steps of a container's spec, in order. */
export const SPEC_STEPS: SpecStep[] = [withProcess, withNamespaces, withMounts, withResources, withSecurity, withCgroupsPath];

/** Build the runtime spec of a container. */
export function buildSpec(input: SpecInput, steps: SpecStep[] = SPEC_STEPS): Spec {
  const spec: Spec = { ociVersion: "1.0.2" };
  for (const step of steps) step(spec, input);
  return spec;
}
