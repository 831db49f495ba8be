/**
 * Control groups for containers, v1 (one hierarchy per controller, as on this machine's hybrid
 * setup) and v2 (the unified hierarchy), through plain file writes under /sys/fs/cgroup.
 *
 * A container's cgroup is `<parent>/<id>` unless the spec's `cgroupsPath` says otherwise (an
 * absolute path is taken from each hierarchy's root; a relative one goes under the parent).
 * Limits are written before the container's process joins, while it waits at its sync point,
 * so nothing it runs is ever outside them. A limit the kernel cannot apply (no such file:
 * controller missing or not enabled) is an error naming it, never a silent skip.
 */
import { ignored } from "../../core/log.ts";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Sys } from "../../core/sys/sys.ts";
import { attachDeviceFilter } from "./device-filter.ts";
import { EngineError, invalidArgument } from "../../core/errors.ts";
import type { Resources } from "../../core/runtime/oci.ts";
import type { RuntimeStats } from "../../core/runtime/types.ts";

/** How the host mounts cgroups. */
export type CgroupMode = { kind: "v2"; root: string } | { kind: "v1"; controllers: Map<string, string>; unified?: string };

/** Read the host's cgroup layout from /proc/self/mountinfo. */
export function cgroupMode(mountinfo = readFileSync("/proc/self/mountinfo", "utf8")): CgroupMode {
  const controllers = new Map<string, string>();
  let unified: string | undefined;
  for (const line of mountinfo.split("\n")) {
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const mountPoint = left.split(" ")[4]!;
    const [fstype, , superOpts] = right.split(" ");
    if (fstype === "cgroup2") unified = mountPoint;
    else if (fstype === "cgroup") {
      for (const o of (superOpts ?? "").split(",")) {
        if (["rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec"].includes(o) || o.startsWith("release_agent")) continue;
        controllers.set(o, mountPoint);
      }
    }
  }
  if (controllers.size === 0 && unified) return { kind: "v2", root: unified };
  return { kind: "v1", controllers, ...(unified ? { unified } : {}) };
}

function readOr(file: string, fallback: string): string {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return fallback;
  }
}

function write(file: string, value: string, what: string): void {
  try {
    writeFileSync(file, value);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ENOENT") throw new EngineError("failed-precondition", `${what}: not supported by this kernel's cgroups (${file} does not exist)`);
    throw new EngineError("failed-precondition", `${what}: writing ${value} to ${file}: ${(err as Error).message}`);
  }
}

/**
 * What a spec mount of type `cgroup` at `dest` becomes: cgroup2 on a unified host; on v1 a tmpfs
 * with one cgroup filesystem per hierarchy (as the host has them), plus `unified` on a hybrid host.
 */
export function expandCgroupMount(dest: string, options: string[], mode: CgroupMode = cgroupMode()): { destination: string; type: string; source: string; options: string[] }[] {
  const flags = options.filter((o) => ["ro", "rw", "nosuid", "nodev", "noexec", "relatime"].includes(o));
  if (mode.kind === "v2") return [{ destination: dest, type: "cgroup2", source: "cgroup", options: flags }];
  const out = [{ destination: dest, type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "noexec", "mode=755"] }];
  const hierarchies = new Map<string, string[]>();
  for (const [ctrl, mount] of mode.controllers) hierarchies.set(mount, [...(hierarchies.get(mount) ?? []), ctrl]);
  for (const [mount, ctrls] of hierarchies) {
    out.push({ destination: join(dest, mount.split("/").pop()!), type: "cgroup", source: "cgroup", options: [...flags, ...ctrls] });
  }
  if (mode.unified) out.push({ destination: join(dest, mode.unified.split("/").pop()!), type: "cgroup2", source: "cgroup2", options: flags });
  return out;
}

/** cpu.shares (2–262144) to cgroup v2 cpu.weight (1–10000), as runc converts. */
export function sharesToWeight(shares: number): number {
  return shares === 0 ? 0 : Math.floor(1 + ((shares - 2) * 9999) / 262142);
}

/** What `stats` reads: the runtime seam's shape. */
export type CgroupStats = RuntimeStats;

/** Device access every container keeps: mknod of anything, the default devices, ptys. */
const ALWAYS_ALLOWED = [
  { allow: true, type: "c" as const, major: -1, minor: -1, access: "m" },
  { allow: true, type: "b" as const, major: -1, minor: -1, access: "m" },
  ...[
    [1, 3],
    [1, 5],
    [1, 7],
    [1, 8],
    [1, 9],
    [5, 0],
    [5, 1],
    [5, 2],
    [136, -1],
  ].map(([major, minor]) => ({ allow: true, type: "c" as const, major, minor, access: "rwm" })),
];

/** A container's cgroup(s). */
export class Cgroup {
  /** Directory per controller (v1) or the one directory (v2, key ""). */
  readonly dirs = new Map<string, string>();

  constructor(
    readonly mode: CgroupMode,
    readonly path: string,
  ) {
    if (mode.kind === "v2") this.dirs.set("", join(mode.root, path));
    else for (const [ctrl, mount] of mode.controllers) if (!ctrl.startsWith("name=") || ctrl === "name=systemd") this.dirs.set(ctrl, join(mount, path));
  }

  /**
   * The cgroup path for a container: the spec's cgroupsPath, or `<parent>/<id>`. A systemd-style
   * path (`slice:prefix:name`, runc's syntax) is laid out as systemd lays out a scope
   * (`system.slice:docker:ID` → `/system.slice/docker-ID.scope`, `a-b.slice` → `/a.slice/a-b.slice`).
   * The directories are made in cgroupfs directly: the scope is not registered with systemd over
   * D-Bus (the cgroup tree and its names are what kubelet and cri-dockerd read).
   */
  static pathFor(id: string, cgroupsPath: string | undefined, parent = "bunker"): string {
    if (cgroupsPath?.includes(":")) {
      const [slice = "", prefix = "", name = ""] = cgroupsPath.split(":");
      if (!name || cgroupsPath.split(":").length !== 3) throw invalidArgument(`linux.cgroupsPath: ${cgroupsPath}: a systemd path is slice:prefix:name`);
      return `${expandSlice(slice || "system.slice", cgroupsPath)}/${prefix ? `${prefix}-` : ""}${name}.scope`;
    }
    const p = cgroupsPath ? (cgroupsPath.startsWith("/") ? cgroupsPath : `/${parent}/${cgroupsPath}`) : `/${parent}/${id}`;
    if (p.split("/").includes("..")) throw invalidArgument(`linux.cgroupsPath: ${cgroupsPath} leaves the cgroup root`);
    return p;
  }

  private dir(ctrl: string): string | undefined {
    return this.mode.kind === "v2" ? this.dirs.get("") : this.dirs.get(ctrl);
  }

  /** Create the directories (v1 cpuset needs cpus/mems copied down from its parents first). */
  create(): void {
    if (this.mode.kind === "v2") {
      // Enable the controllers down the path so the leaf gets their files.
      const parts = this.path.split("/").filter(Boolean);
      let cur = this.mode.root;
      const available = readFileSync(join(cur, "cgroup.controllers"), "utf8").trim().split(/\s+/).filter(Boolean);
      for (const part of parts) {
        const want = available
          .filter((c) => ["cpu", "cpuset", "io", "memory", "pids", "hugetlb"].includes(c))
          .map((c) => `+${c}`)
          .join(" ");
        if (want) {
          try {
            writeFileSync(join(cur, "cgroup.subtree_control"), want);
          } catch (err) {
            ignored("some controllers cannot be enabled here (a process in an inner node); limits will say so", err);
          }
        }
        cur = join(cur, part);
        mkdirSync(cur, { recursive: true });
      }
      return;
    }
    for (const [ctrl, dir] of this.dirs) {
      if (ctrl === "cpuset") {
        const parts = this.path.split("/").filter(Boolean);
        let cur = this.mode.controllers.get("cpuset")!;
        for (const part of parts) {
          const parent = cur;
          cur = join(cur, part);
          mkdirSync(cur, { recursive: true });
          for (const f of ["cpuset.cpus", "cpuset.mems"]) {
            if (readFileSync(join(cur, f), "utf8").trim() === "") writeFileSync(join(cur, f), readFileSync(join(parent, f), "utf8").trim());
          }
        }
      } else mkdirSync(dir, { recursive: true });
    }
  }

  /** Apply the spec's resources; `extraDevices` (the spec's linux.devices) are allowed too. */
  apply(r: Resources | undefined, extraDevices?: { type: string; major?: number; minor?: number }[], sys?: Sys): void {
    if (!r) return;
    const v2 = this.mode.kind === "v2";
    const need = (ctrl: string, what: string) => {
      const d = this.dir(ctrl);
      if (!d) throw new EngineError("failed-precondition", `${what}: the ${ctrl} cgroup controller is not available`);
      return d;
    };
    const m = r.memory;
    if (m) {
      const d = need("memory", "linux.resources.memory");
      if (v2) {
        if (m.limit !== undefined) write(join(d, "memory.max"), m.limit < 0 ? "max" : String(m.limit), "linux.resources.memory.limit");
        if (m.reservation !== undefined) write(join(d, "memory.low"), String(m.reservation), "linux.resources.memory.reservation");
        if (m.swap !== undefined) {
          // The spec's swap is memory+swap; v2 limits swap alone.
          const swap = m.swap < 0 ? "max" : String(Math.max(0, m.swap - (m.limit ?? 0)));
          write(join(d, "memory.swap.max"), swap, "linux.resources.memory.swap");
        }
        if (m.disableOOMKiller) throw invalidArgument("linux.resources.memory.disableOOMKiller: not available with cgroup v2");
      } else {
        // memory.limit must stay at or below memsw.limit: when raising both, memsw goes first.
        const raising = m.limit !== undefined && m.swap !== undefined && m.swap >= 0 && m.limit > Number(readOr(join(d, "memory.memsw.limit_in_bytes"), "0"));
        if (raising) write(join(d, "memory.memsw.limit_in_bytes"), String(m.swap), "linux.resources.memory.swap");
        if (m.limit !== undefined) write(join(d, "memory.limit_in_bytes"), String(m.limit), "linux.resources.memory.limit");
        if (m.reservation !== undefined) write(join(d, "memory.soft_limit_in_bytes"), String(m.reservation), "linux.resources.memory.reservation");
        if (m.swap !== undefined && !raising) write(join(d, "memory.memsw.limit_in_bytes"), String(m.swap), "linux.resources.memory.swap");
        if (m.swappiness !== undefined && m.swappiness >= 0) write(join(d, "memory.swappiness"), String(m.swappiness), "linux.resources.memory.swappiness");
        if (m.disableOOMKiller) write(join(d, "memory.oom_control"), "1", "linux.resources.memory.disableOOMKiller");
      }
    }
    const c = r.cpu;
    if (c) {
      if (c.shares !== undefined || c.quota !== undefined || c.period !== undefined) {
        const d = need("cpu", "linux.resources.cpu");
        if (v2) {
          if (c.shares) write(join(d, "cpu.weight"), String(sharesToWeight(c.shares)), "linux.resources.cpu.shares");
          if (c.quota !== undefined || c.period !== undefined) write(join(d, "cpu.max"), `${c.quota !== undefined && c.quota > 0 ? c.quota : "max"} ${c.period ?? 100000}`, "linux.resources.cpu.quota");
        } else {
          if (c.shares) write(join(d, "cpu.shares"), String(c.shares), "linux.resources.cpu.shares");
          if (c.period) write(join(d, "cpu.cfs_period_us"), String(c.period), "linux.resources.cpu.period");
          if (c.quota !== undefined) write(join(d, "cpu.cfs_quota_us"), String(c.quota), "linux.resources.cpu.quota");
        }
      }
      if (c.realtimePeriod !== undefined || c.realtimeRuntime !== undefined) {
        // Real-time budget (v1 with CONFIG_RT_GROUP_SCHED): the period first, then the runtime in it.
        if (v2) throw invalidArgument("linux.resources.cpu.realtimeRuntime: not available with cgroup v2");
        const d = need("cpu", "linux.resources.cpu.realtimeRuntime");
        if (c.realtimePeriod) write(join(d, "cpu.rt_period_us"), String(c.realtimePeriod), "linux.resources.cpu.realtimePeriod");
        if (c.realtimeRuntime !== undefined) write(join(d, "cpu.rt_runtime_us"), String(c.realtimeRuntime), "linux.resources.cpu.realtimeRuntime");
      }
      if (c.cpus || c.mems) {
        const d = need("cpuset", "linux.resources.cpu.cpus");
        if (c.cpus) write(join(d, "cpuset.cpus"), c.cpus, "linux.resources.cpu.cpus");
        if (c.mems) write(join(d, "cpuset.mems"), c.mems, "linux.resources.cpu.mems");
      }
    }
    if (r.pids) {
      const d = need("pids", "linux.resources.pids");
      write(join(d, "pids.max"), r.pids.limit > 0 ? String(r.pids.limit) : "max", "linux.resources.pids.limit");
    }
    if (r.blockIO?.weight) {
      const d = need(v2 ? "io" : "blkio", "linux.resources.blockIO.weight");
      if (v2) write(join(d, "io.weight"), String(r.blockIO.weight), "linux.resources.blockIO.weight (needs the io controller with BFQ or io.cost)");
      else write(join(d, "blkio.weight"), String(r.blockIO.weight), "linux.resources.blockIO.weight (needs the CFQ/BFQ scheduler)");
    }
    if (r.devices?.length) {
      // The spec's rules, then what every container may use whatever they say (runtime-spec's
      // default devices, ptys, and mknod of any node: access is what the rules guard).
      const rules = [...r.devices, ...ALWAYS_ALLOWED, ...(extraDevices ?? []).map((x) => ({ allow: true, type: x.type === "b" ? ("b" as const) : ("c" as const), major: x.major, minor: x.minor, access: "rwm" }))];
      if (v2) {
        if (!sys) throw new Error("cgroup v2 device rules need the Sys seam");
        attachDeviceFilter(sys, this.dirs.get("")!, rules);
      }
      const d = v2 ? "" : need("devices", "linux.resources.devices");
      for (const rule of v2 ? [] : rules) {
        const type = rule.type ?? "a";
        const major = rule.major === undefined || rule.major === null || rule.major < 0 ? "*" : String(rule.major);
        const minor = rule.minor === undefined || rule.minor === null || rule.minor < 0 ? "*" : String(rule.minor);
        const line = type === "a" ? "a" : `${type} ${major}:${minor} ${rule.access ?? "rwm"}`;
        write(join(d, rule.allow ? "devices.allow" : "devices.deny"), line, "linux.resources.devices");
      }
    }
    for (const [key, value] of Object.entries(r.unified ?? {})) {
      if (!v2) throw invalidArgument("linux.resources.unified: needs cgroup v2");
      if (key.includes("/")) throw invalidArgument(`linux.resources.unified: invalid key ${key}`);
      write(join(this.dirs.get("")!, key), value, `linux.resources.unified.${key}`);
    }
  }

  /** Put `pid` in every hierarchy. */
  /**
   * The files through which a process moves itself into this cgroup by writing "0": `tasks` per
   * v1 hierarchy, `cgroup.procs` on v2. Opened here (by the runtime, on the host) for the
   * container's first process to write from inside, before it runs anything of the container's.
   *
   * Why not write its pid to `cgroup.procs` from outside: moving a whole thread group takes the
   * kernel's global cgroup_threadgroup_rwsem for writing, which waits for an RCU grace period,
   * 5–14 ms measured on this machine (runc and crun pay it on every start). A thread moving
   * itself through v1's `tasks` skips that lock (the kernel only needs it when another task or a
   * thread group moves): 40 µs measured. The container's process is single-threaded there, so
   * moving the thread moves the process. cgroup v2 has no such file outside threaded subtrees.
   */
  selfJoinFiles(): { file: string; what: string }[] {
    const name = this.mode.kind === "v2" ? "cgroup.procs" : "tasks";
    return [...new Set(this.dirs.values())].map((dir) => ({ file: join(dir, name), what: `join the cgroup ${dir}` }));
  }

  /** Processes in the cgroup. */
  pids(): number[] {
    const dir = this.dir("pids") ?? this.dir("memory") ?? this.dir("freezer") ?? [...this.dirs.values()][0];
    if (!dir || !existsSync(join(dir, "cgroup.procs"))) return [];
    return readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  }

  /**
   * Freeze or thaw every process (pause/resume). A freeze returns only once the kernel says the
   * cgroup is frozen (v1 goes through FREEZING, v2 reports `frozen 1` in cgroup.events): writing
   * the request is not enough, and a copy out of a container that still runs can be raced.
   * The request is repeated meanwhile, as runc does (a task forking can keep v1 in FREEZING).
   */
  freeze(frozen: boolean): void {
    const v2 = this.mode.kind === "v2";
    const d = v2 ? this.dirs.get("")! : this.dir("freezer");
    if (!d) throw new EngineError("failed-precondition", "pause: the freezer cgroup controller is not available");
    const request = () => (v2 ? write(join(d, "cgroup.freeze"), frozen ? "1" : "0", "pause") : write(join(d, "freezer.state"), frozen ? "FROZEN" : "THAWED", "pause"));
    request();
    if (!frozen) return;
    const done = () => (v2 ? /^frozen 1$/m.test(readFileSync(join(d, "cgroup.events"), "utf8")) : readFileSync(join(d, "freezer.state"), "utf8").trim() === "FROZEN");
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (let i = 1; i <= 5000; i++) {
      if (done()) return;
      if (i % 20 === 0) request();
      Atomics.wait(pause, 0, 0, 1); // 1 ms, without yielding to callers that could see a half-frozen container
    }
    this.freeze(false);
    throw new EngineError("unavailable", "pause: the container's cgroup did not freeze within 5 s");
  }

  /** True when the cgroup is frozen. */
  frozen(): boolean {
    try {
      if (this.mode.kind === "v2") return readFileSync(join(this.dirs.get("")!, "cgroup.freeze"), "utf8").trim() === "1";
      const d = this.dir("freezer");
      return !!d && readFileSync(join(d, "freezer.state"), "utf8").trim() !== "THAWED";
    } catch {
      return false;
    }
  }

  /** How many times the kernel's OOM killer ran in this cgroup. */
  oomKills(): number {
    const d = this.dir("memory");
    if (!d) return 0;
    try {
      const file = this.mode.kind === "v2" ? join(d, "memory.events") : join(d, "memory.oom_control");
      const m = /oom_kill (\d+)/.exec(readFileSync(file, "utf8"));
      return m ? Number(m[1]) : 0;
    } catch {
      return 0;
    }
  }

  /** Resource usage, from the controllers' files (v1 or v2); absent values are 0. */
  stats(): CgroupStats {
    const v2 = this.mode.kind === "v2";
    const read = (ctrl: string, file: string): string => {
      const d = this.dir(ctrl);
      try {
        return d ? readFileSync(join(d, file), "utf8") : "";
      } catch {
        return "";
      }
    };
    const num = (t: string) => (t.trim() === "max" || t.trim() === "" ? 0 : Number(t.trim()));
    const kv = (t: string) =>
      Object.fromEntries(
        t
          .split("\n")
          .filter(Boolean)
          .map((l) => {
            const [k, x] = l.split(/\s+/);
            return [k!, Number(x)];
          }),
      );
    let cpuNs = 0;
    let userNs = 0;
    let systemNs = 0;
    if (v2) {
      const cs = kv(read("cpu", "cpu.stat"));
      cpuNs = (cs.usage_usec ?? 0) * 1000;
      userNs = (cs.user_usec ?? 0) * 1000;
      systemNs = (cs.system_usec ?? 0) * 1000;
    } else {
      cpuNs = num(read("cpuacct", "cpuacct.usage"));
      const st = kv(read("cpuacct", "cpuacct.stat"));
      userNs = (st.user ?? 0) * 1e7; // USER_HZ ticks
      systemNs = (st.system ?? 0) * 1e7;
    }
    const memStats = kv(read("memory", v2 ? "memory.stat" : "memory.stat"));
    const memUsage = num(read("memory", v2 ? "memory.current" : "memory.usage_in_bytes"));
    const memMax = v2 ? num(read("memory", "memory.peak")) : num(read("memory", "memory.max_usage_in_bytes"));
    let memLimit = num(read("memory", v2 ? "memory.max" : "memory.limit_in_bytes"));
    if (memLimit >= 2 ** 62) memLimit = 0; // v1's "unlimited"
    const pids = num(read("pids", "pids.current"));
    const pidsLimit = num(read("pids", "pids.max"));
    const blkio: { major: number; minor: number; op: string; value: number }[] = [];
    if (v2) {
      for (const line of read("io", "io.stat").split("\n").filter(Boolean)) {
        const [dev, ...fields] = line.split(" ");
        const [major, minor] = dev!.split(":").map(Number);
        const f = Object.fromEntries(fields.map((x) => x.split("=")).map(([k, val]) => [k!, Number(val)]));
        blkio.push({ major: major!, minor: minor!, op: "read", value: f.rbytes ?? 0 }, { major: major!, minor: minor!, op: "write", value: f.wbytes ?? 0 });
      }
    } else {
      for (const line of read("blkio", "blkio.throttle.io_service_bytes_recursive").split("\n")) {
        const m = /^(\d+):(\d+) (\w+) (\d+)$/.exec(line.trim());
        if (m) blkio.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3]!.toLowerCase(), value: Number(m[4]) });
      }
    }
    return { cpuNs, userNs, systemNs, memUsage, memMax, memLimit, memStats, pids, pidsLimit, blkio };
  }

  /** Remove the directories (children first); fine when already gone. */
  destroy(): void {
    for (const dir of new Set(this.dirs.values())) {
      const rm = (d: string) => {
        if (!existsSync(d)) return;
        for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) rm(join(d, e.name));
        try {
          rmdirSync(d);
        } catch (err) {
          if ((err as { code?: string }).code !== "ENOENT") throw new EngineError("failed-precondition", `removing cgroup ${d}: ${(err as Error).message}`);
        }
      };
      rm(dir);
    }
  }
}

/** systemd's slice path: `a-b-c.slice` is `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` the root. */
export function expandSlice(slice: string, what = slice): string {
  if (!slice.endsWith(".slice") || slice.includes("/")) throw invalidArgument(`linux.cgroupsPath: ${what}: invalid slice name ${slice}`);
  const base = slice.slice(0, -".slice".length);
  if (base === "-") return "";
  if (base.startsWith("-") || base.endsWith("-") || base.includes("--")) throw invalidArgument(`linux.cgroupsPath: ${what}: invalid slice name ${slice}`);
  const parts = base.split("-");
  return parts.map((_, i) => `/${parts.slice(0, i + 1).join("-")}.slice`).join("");
}
