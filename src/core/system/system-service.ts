/**
 * The system service: what `GET /version` and `GET /info` report. Every value is read from the
 * host or the daemon's own state; subsystems added later (storage, containers, images) contribute
 * through `InfoContributor`s instead of this file growing.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import type { PluginSet } from "../plugin/plugin-set.ts";
import { API_VERSION, BUILD_TIME, GIT_COMMIT, goArch, MIN_API_VERSION, VERSION } from "../version.ts";
import { type EventBus, wallClockNanos } from "../events/bus.ts";
import { rfc3339Nano } from "../format/time.ts";
import { readHostFacts } from "./host-facts.ts";

/** A subsystem's additions to `/info` (storage driver, container counts, runtimes…). */
export type InfoContributor = () => Record<string, unknown>;

/** Engine version document (`GET /version`). */
export function versionDocument(): Record<string, unknown> {
  const host = readHostFacts();
  const details = {
    ApiVersion: API_VERSION,
    Arch: goArch(),
    BuildTime: BUILD_TIME,
    Experimental: "false",
    GitCommit: GIT_COMMIT,
    GoVersion: `bun${Bun.version}`,
    KernelVersion: host.KernelVersion,
    MinAPIVersion: MIN_API_VERSION,
    Os: "linux",
  };
  return {
    Platform: { Name: "Bunker Engine" },
    Components: [{ Name: "Engine", Version: VERSION, Details: details }],
    Version: VERSION,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: GIT_COMMIT,
    GoVersion: details.GoVersion,
    Os: "linux",
    Arch: goArch(),
    KernelVersion: host.KernelVersion,
    BuildTime: BUILD_TIME,
  };
}

/** Which kernel resource controls the host's cgroups offer (`info`'s capability booleans). */
export function cgroupCapabilities(root = "/sys/fs/cgroup"): Record<string, boolean> {
  const v2 = existsSync(`${root}/cgroup.controllers`);
  if (v2) {
    const ctl = readFileSync(`${root}/cgroup.controllers`, "utf8").split(/\s+/);
    return {
      MemoryLimit: ctl.includes("memory"),
      SwapLimit: ctl.includes("memory"),
      CpuCfsPeriod: ctl.includes("cpu"),
      CpuCfsQuota: ctl.includes("cpu"),
      CPUShares: ctl.includes("cpu"),
      CPUSet: ctl.includes("cpuset"),
      PidsLimit: ctl.includes("pids"),
    };
  }
  const has = (p: string) => existsSync(`${root}/${p}`);
  return {
    MemoryLimit: has("memory/memory.limit_in_bytes"),
    SwapLimit: has("memory/memory.memsw.limit_in_bytes"),
    CpuCfsPeriod: has("cpu/cpu.cfs_period_us"),
    CpuCfsQuota: has("cpu/cpu.cfs_quota_us"),
    CPUShares: has("cpu/cpu.shares"),
    CPUSet: has("cpuset/cpuset.cpus"),
    PidsLimit: has("pids/cgroup.procs"), // the root of a v1 hierarchy has no pids.max
  };
}

function readTrimmed(path: string): string {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return "";
  }
}

/** The daemon settings `/info` reports (a `DaemonConfig` is one). */
export interface SystemSettings {
  debug: boolean;
  logDriver: { Type: string };
  cgroupDriver: string;
  dataRoot: string;
}

/** Builds `GET /info` from host facts, config, plugins and contributors. */
export class SystemService {
  private readonly contributors: InfoContributor[] = [];

  constructor(private readonly deps: { config: SystemSettings; engineId: string; plugins: PluginSet; events: EventBus }) {}

  /** Register a subsystem's `/info` fields. */
  contribute(fn: InfoContributor): void {
    this.contributors.push(fn);
  }

  info(): Record<string, unknown> {
    const { config, engineId, plugins, events } = this.deps;
    const host = readHostFacts();
    const statuses = plugins.statuses();
    // Failures are warnings; a skipped plugin (the host cannot support it, such as btrfs off a
    // btrfs filesystem) is normal and is listed in BunkerPlugins with its reason instead.
    const warnings = statuses.filter((s) => s.status === "failed").map((s) => `WARNING: plugin ${s.type}.${s.id} ${s.status}: ${s.reason ?? ""}`.trimEnd());
    const base: Record<string, unknown> = {
      ID: engineId,
      Containers: 0,
      ContainersRunning: 0,
      ContainersPaused: 0,
      ContainersStopped: 0,
      Images: 0,
      Driver: "",
      DriverStatus: [],
      // The drivers this engine has, as dockerd lists its own: the network plugins that loaded
      // (with the built-in host and null modes), the local volume driver, the log drivers.
      Plugins: {
        Volume: ["local"],
        Network: [...new Set([...statuses.filter((s) => s.type === "network.v1" && s.status === "ok").map((s) => s.id), "host", "null"])].sort(),
        Authorization: null,
        Log: ["json-file", "local"],
      },
      ...cgroupCapabilities(),
      KernelMemoryTCP: false,
      IPv4Forwarding: readTrimmed("/proc/sys/net/ipv4/ip_forward") === "1",
      Debug: config.debug,
      NFd: safeCount("/proc/self/fd"),
      OomKillDisable: false,
      NGoroutines: 0,
      // Nanoseconds from the events' clock, as dockerd's RFC3339Nano: clients take it as `since`
      // for events (moby's DaemonUnixTime), so a millisecond cut would let earlier events in.
      SystemTime: rfc3339Nano(wallClockNanos()),
      LoggingDriver: config.logDriver.Type,
      CgroupDriver: config.cgroupDriver,
      CgroupVersion: host.CgroupVersion,
      NEventsListener: events.subscriberCount,
      KernelVersion: host.KernelVersion,
      OperatingSystem: host.OperatingSystem,
      OSVersion: host.OSVersion,
      OSType: host.OSType,
      Architecture: host.Architecture,
      IndexServerAddress: "https://index.docker.io/v1/",
      RegistryConfig: { AllowNondistributableArtifactsCIDRs: null, AllowNondistributableArtifactsHostnames: null, InsecureRegistryCIDRs: ["::1/128", "127.0.0.0/8"], IndexConfigs: {}, Mirrors: [] },
      NCPU: host.NCPU,
      MemTotal: host.MemTotal,
      GenericResources: null,
      DockerRootDir: config.dataRoot,
      HttpProxy: process.env.HTTP_PROXY ?? process.env.http_proxy ?? "",
      HttpsProxy: process.env.HTTPS_PROXY ?? process.env.https_proxy ?? "",
      NoProxy: process.env.NO_PROXY ?? process.env.no_proxy ?? "",
      Name: host.Name,
      Labels: [],
      ExperimentalBuild: false,
      ServerVersion: VERSION,
      Runtimes: {},
      DefaultRuntime: "",
      Swarm: { NodeID: "", NodeAddr: "", LocalNodeState: "inactive", ControlAvailable: false, Error: "", RemoteManagers: null },
      LiveRestoreEnabled: false,
      Isolation: "",
      InitBinary: "",
      ContainerdCommit: { ID: "" },
      RuncCommit: { ID: "" },
      InitCommit: { ID: "" },
      SecurityOptions: ["name=seccomp,profile=builtin", "name=cgroupns"],
      CDISpecDirs: [],
      Warnings: warnings,
      BunkerPlugins: statuses.map((s) => ({ Type: s.type, ID: s.id, Status: s.status, Reason: s.reason ?? "", Source: s.source })),
    };
    for (const c of this.contributors) Object.assign(base, c());
    return base;
  }
}

function safeCount(dir: string): number {
  try {
    return readdirSync(dir).length;
  } catch {
    return 0;
  }
}
