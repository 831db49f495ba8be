/**
 * The container manager: create (image config merged with the request), start (writable layer
 * mounted, bundle written, runtime under a monitor, output pumped to the json-file log), stop,
 * kill, wait, remove, pause, rename, and the re-attachment of running containers when the daemon
 * starts again. State changes are saved atomically and published as events.
 */
import { closeSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, posix } from "node:path";
import { parseByteSize, randomHex } from "../bytes.ts";
import type { EventBus } from "../daemon/events.ts";
import { conflict, EngineError, invalidArgument, messageOf, notFound } from "../errors.ts";
import type { ImageService } from "../image/image-service.ts";
import type { Logger } from "../log.ts";
import type { ContainerRuntime } from "../runtime/types.ts";
import { mountAll, unmount } from "../storage/mount.ts";
import { signalByName } from "../signals.ts";
import type { Sys } from "../sys/sys.ts";
import { parseOrThrow, foldKeys } from "../validate.ts";
import { compareApiVersions } from "../version.ts";
import { type ContainerRecord, type ContainerStore, createdState, ZERO_TIME } from "./container-store.ts";
import { type CreateBody, CreateBodySchema, HostConfigSchema } from "./create-config.ts";
import { JsonLogWriter } from "./json-log.ts";
import { LocalLogWriter, localLogFile } from "./local-log.ts";
import { buildSpec, DEFAULT_MASKED, DEFAULT_READONLY, securityOptions } from "./oci-spec.ts";
import { OutputPump, type OutputSubscriber } from "./output-pump.ts";
import type { VolumeService } from "../volume/volume-service.ts";
import { copyUp } from "./copy-up.ts";
import { mergeEnv } from "./env.ts";
import { containerMounts, specMount } from "./mounts.ts";
import { ExecService, resizePty } from "./exec-service.ts";
import { HealthMonitor, healthCommand } from "./health.ts";
import { randomName } from "./names.ts";
import { resolveUser } from "./user.ts";
import { interfaceCounters } from "../network/counters.ts";
import { type NetworkService, splitLink } from "../network/network-service.ts";
import { WriteQueue } from "./write-queue.ts";

/** What a running container has in the daemon's memory. */
interface Live {
  pump: OutputPump;
  /** Write end of the container's stdin (a pipe), or the pty master for a terminal. */
  input?: number;
  /** Resolves with the exit status. */
  exited: Promise<number>;
  /** Resolves once the exit has been handled (state saved, layer unmounted, events sent). */
  handled?: Promise<void>;
  health?: HealthMonitor;
}

/** Services the manager uses. */
export interface ContainerDeps {
  sys: Sys;
  volumes: VolumeService;
  store: ContainerStore;
  images: () => Promise<ImageService>;
  runtime: ContainerRuntime;
  events: EventBus;
  log: Logger;
  networks: NetworkService;
  /** dockerd's native.cgroupdriver: systemd names containers' cgroups <parent>.slice/docker-<id>.scope. */
  cgroupDriver?: "cgroupfs" | "systemd";
  /** The log config of containers that name no driver (dockerd's log-driver and log-opts). */
  defaultLog?: { Type: string; Config: Record<string, string> };
}

/**
 * The host's name servers for a container on a bridge: loopback ones cannot be reached from the
 * container's namespace and are dropped (Docker does the same and falls back to public servers).
 */
function hostNameservers(): string {
  let text = "";
  try {
    text = readFileSync("/etc/resolv.conf", "utf8");
  } catch {
    /* none */
  }
  const lines = text.split("\n").filter((l) => /^\s*(nameserver|search|options)\s/.test(l));
  const kept = lines.filter((l) => !/^\s*nameserver\s+(127\.|::1)/.test(l));
  if (!kept.some((l) => /^\s*nameserver/.test(l))) kept.unshift("nameserver 8.8.8.8", "nameserver 8.8.4.4");
  return kept.join("\n") + "\n";
}

/**
 * Paths the runtime creates in a container's root only as mount points (Docker keeps them in an
 * "init" layer below the container's): left out of committed layers, so a commit or a build step
 * holds only what the container itself wrote.
 */
const MOUNT_POINTS = new Set(["dev/", "proc/", "sys/", "etc/hostname", "etc/hosts", "etc/resolv.conf", ".dockerenv"]);

async function* withoutMountPoints(diff: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const { readTar, writeTar } = await import("../layer/tar-stream.ts");
  async function* kept() {
    for await (const e of readTar(diff)) {
      if (MOUNT_POINTS.has(e.header.name.replace(/^\.\//, "")) && (e.header.type === "directory" || e.header.size === 0)) {
        for await (const _ of e.body) void _;
        continue;
      }
      yield { header: e.header, body: e.body };
    }
  }
  yield* writeTar(kept());
}

const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** "SIGTERM", "TERM", "15" → 15; Docker's message otherwise. */
export function parseSignal(s: string): number {
  const n = signalByName(s);
  if (n === undefined) throw invalidArgument(`Invalid signal: ${s}`);
  return n;
}

const now = () => new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000000Z");

/** The container manager. */
export class ContainerService {
  private readonly live = new Map<string, Live>();
  private readonly exitWaiters = new Map<string, ((code: number) => void)[]>();

  /** The networks containers join. */
  get networks(): NetworkService {
    return this.deps.networks;
  }

  /** Connect a container to a network (a running one joins at once; its /etc/hosts gains the address). */
  async connectNetwork(ref: string, network: string, cfg: { IPAMConfig?: { IPv4Address?: string | null | undefined; IPv6Address?: string | null | undefined; LinkLocalIPs?: string[] | null | undefined } | null; Aliases?: string[] | null; Links?: string[] | null; MacAddress?: string | null; DriverOpts?: Record<string, string> | null }): Promise<void> {
    const c = this.store.get(ref);
    const ipv4 = cfg.IPAMConfig?.IPv4Address;
    const ipv6 = cfg.IPAMConfig?.IPv6Address;
    const ll = cfg.IPAMConfig?.LinkLocalIPs;
    const ipam = { ...(ipv4 ? { IPv4Address: ipv4 } : {}), ...(ipv6 ? { IPv6Address: ipv6 } : {}), ...(ll?.length ? { LinkLocalIPs: ll } : {}) };
    await this.deps.networks.connect(c, network, { ...(Object.keys(ipam).length ? { IPAMConfig: ipam } : {}), Aliases: cfg.Aliases ?? null, Links: cfg.Links ?? null, MacAddress: cfg.MacAddress ?? null, DriverOpts: cfg.DriverOpts ?? null });
    if (c.State.Running) this.writeEtcFiles(c);
    this.store.save(c);
  }

  /**
   * `DELETE /containers/<parent>/<alias>?link=1`: drop the legacy link `alias` from `parent`
   * (moby's rmLink). The linked container itself stays.
   */
  removeLink(linkName: string): void {
    const name = linkName.replace(/^\/+/, "/").startsWith("/") ? linkName.replace(/^\/+/, "/") : `/${linkName}`;
    const i = name.lastIndexOf("/");
    const parentName = name.slice(0, i);
    const alias = name.slice(i + 1);
    if (!parentName) throw conflict("Conflict, cannot remove the default link name of the container");
    let parent: ContainerRecord;
    try {
      parent = this.store.get(parentName.slice(1));
    } catch {
      throw notFound(`Cannot get parent ${parentName} for link name ${name}`);
    }
    const links = (parent.HostConfig.Links ?? []) as string[];
    const kept = links.filter((l) => splitLink(l)[1] !== alias);
    if (kept.length === links.length) throw notFound(`No such container: ${name}`);
    parent.HostConfig.Links = kept.length ? kept : null;
    this.store.save(parent);
    if (parent.State.Running) this.writeEtcFiles(parent);
  }

  /** Disconnect a container from a network. */
  async disconnectNetwork(ref: string, network: string): Promise<void> {
    const c = this.store.get(ref);
    await this.deps.networks.disconnect(c, network);
    this.store.save(c);
  }

  /** The exec instances of this daemon's containers. */
  readonly execs: ExecService;

  constructor(private readonly deps: ContainerDeps) {
    this.execs = new ExecService({ sys: deps.sys, store: deps.store, runtime: deps.runtime, events: deps.events });
    deps.volumes.inUse = (name) => this.volumeUsers(name);
  }

  get store(): ContainerStore {
    return this.deps.store;
  }

  private publish(c: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    this.deps.events.publish({
      Type: "container",
      Action: action,
      Actor: { ID: c.Id, Attributes: { ...(c.Config.Labels ?? {}), image: c.ImageName, name: c.Name.slice(1), ...extra } },
    });
  }

  // ---- create --------------------------------------------------------------------------------

  /** `POST /containers/create`. */
  async create(raw: unknown, name?: string, platform?: string, apiVersion = "1.51"): Promise<{ Id: string; Warnings: string[] }> {
    // Field names match case-insensitively, as Go's JSON decoding does (docker-py sends CPURealtimePeriod).
    const folded = foldKeys(raw ?? {}, CreateBodySchema.entries) as Record<string, unknown>;
    if (folded.HostConfig) folded.HostConfig = foldKeys(folded.HostConfig, HostConfigSchema.entries);
    const body = parseOrThrow(CreateBodySchema, folded, "container config") as CreateBody;
    if (!body.Image) throw invalidArgument("config cannot be empty in order to create a container");
    const fullName = name ? this.store.checkName(name) : this.uniqueName();
    const h = body.HostConfig ?? {};
    const restart = h.RestartPolicy?.Name ?? "";
    if (restart && restart !== "no" && h.AutoRemove) throw invalidArgument("can't create 'AutoRemove' container with restart policy");
    if ((h.RestartPolicy?.MaximumRetryCount ?? 0) < 0) throw invalidArgument("invalid restart policy: maximum retry count cannot be negative");
    if (restart !== "on-failure" && (h.RestartPolicy?.MaximumRetryCount ?? 0) > 0) throw invalidArgument(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
    if (h.Memory !== undefined && h.Memory !== null && h.Memory !== 0 && h.Memory < 6 * 1024 * 1024) throw invalidArgument("Minimum memory limit allowed is 6MB");
    if (body.WorkingDir && !body.WorkingDir.startsWith("/")) throw invalidArgument(`the working directory '${body.WorkingDir}' is invalid, it needs to be an absolute path`);
    if (body.WorkingDir) body.WorkingDir = posix.normalize(body.WorkingDir).replace(/(.)\/+$/, "$1"); // "/tmp/" → "/tmp", as filepath.Clean
    // Namespaces of another container: it must exist now (it must run at start).
    for (const mode of [h.PidMode, h.IpcMode, h.NetworkMode]) {
      if (!mode?.startsWith("container:")) continue;
      try {
        this.store.get(mode.slice("container:".length));
      } catch {
        throw invalidArgument(`No such container: ${mode.slice("container:".length)}`);
      }
    }
    for (const e of body.Env ?? []) if (e === "" || e.startsWith("=")) throw invalidArgument(`invalid environment variable: ${e}`);
    securityOptions(h.SecurityOpt ?? []); // a bad --security-opt fails the create, as dockerd's does
    if (this.deps.cgroupDriver === "systemd" && h.CgroupParent && !/^[A-Za-z0-9:_.\\-]+\.slice$/.test(h.CgroupParent)) throw invalidArgument('cgroup-parent for systemd cgroup should be a valid slice named as "xxx.slice"');
    // Health-check durations are nanoseconds: 0 means the default, anything else at least 1 ms (moby's checks).
    const hc = body.Healthcheck as { Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number } | null | undefined;
    for (const k of ["Interval", "Timeout", "StartPeriod", "StartInterval"] as const) {
      const d = hc?.[k];
      if (d !== undefined && d !== null && d !== 0 && d < 1_000_000) throw invalidArgument(`${k} in Healthcheck cannot be less than 1ms`);
    }
    if (hc?.Retries !== undefined && hc.Retries !== null && hc.Retries < 0) throw invalidArgument("Retries in Healthcheck cannot be negative");
    // The IPC mode a request leaves empty: "private" (the daemon default), "shareable" for clients before API 1.40.
    if (!h.IpcMode) h.IpcMode = compareApiVersions(apiVersion, "1.40") < 0 ? "shareable" : "private";
    // Masked and read-only paths: the defaults unless the request names its own ([] for none).
    if (!h.Privileged) {
      h.MaskedPaths ??= [...DEFAULT_MASKED];
      h.ReadonlyPaths ??= [...DEFAULT_READONLY];
    }
    // Legacy links name existing containers (moby checks at create).
    for (const link of (h.Links ?? []) as string[]) {
      const [target] = splitLink(link);
      try {
        this.store.get(target);
      } catch {
        throw invalidArgument(`could not get container for ${target}`);
      }
    }
    const images = await this.deps.images();
    await images.provideBuiltin(body.Image);
    const img = images.image(body.Image);
    if (platform) {
      // A platform that the image is not for: not found (moby's words), whatever its spelling.
      const [os = "", arch = "", variant] = platform.toLowerCase().split("/");
      const have = `${img.config.os}/${img.config.architecture}${img.config.variant ? `/${img.config.variant}` : ""}`;
      if ((os && os !== img.config.os) || (arch && arch !== img.config.architecture) || (variant && img.config.variant && variant !== img.config.variant)) {
        throw notFound(`image with reference ${body.Image} was found but does not match the specified platform: wanted ${platform}, actual: ${have}`);
      }
    }
    const ic = img.config.config ?? {};
    const entrypoint = body.Entrypoint != null ? body.Entrypoint.filter((x, i, a) => !(a.length === 1 && x === "")) : (ic.Entrypoint ?? []);
    const cmd = body.Cmd != null && body.Cmd.length ? body.Cmd : body.Entrypoint != null ? [] : (ic.Cmd ?? []);
    const args = [...entrypoint, ...cmd];
    if (!args.length) throw invalidArgument("No command specified");
    const mounts = containerMounts(body, h, (ic.Volumes as Record<string, unknown>) ?? {}, (name) => {
      try {
        return this.store.get(name).MountPoints ?? [];
      } catch {
        throw invalidArgument(`No such container: ${name}`);
      }
    });
    const id = randomHex(32);
    const dir = this.store.dir(id);
    mkdirSync(dir, { recursive: true, mode: 0o710 });
    const layers = images.layers;
    const rwKey = `container-${id}`;
    try {
      await layers.driver.prepare(rwKey, img.chainIds.at(-1));
    } catch (err) {
      rmdirSync(dir);
      throw err;
    }
    const config = {
      ...body,
      Hostname: body.Hostname || id.slice(0, 12),
      Env: mergeEnv(ic.Env ?? [DEFAULT_PATH], body.Env),
      Cmd: cmd,
      Entrypoint: entrypoint.length ? entrypoint : null,
      WorkingDir: body.WorkingDir || ic.WorkingDir || "",
      User: body.User || ic.User || "", // an empty User in the request means the image's (the CLI always sends one)
      Labels: { ...(ic.Labels ?? {}), ...(body.Labels ?? {}) },
      ExposedPorts: { ...((ic.ExposedPorts as Record<string, Record<string, unknown>>) ?? {}), ...(body.ExposedPorts ?? {}) },
      Volumes: { ...((ic.Volumes as Record<string, Record<string, unknown>>) ?? {}), ...(body.Volumes ?? {}) },
      StopSignal: body.StopSignal || ic.StopSignal || undefined,
      Healthcheck: body.Healthcheck ?? ic.Healthcheck ?? undefined,
      Image: body.Image,
    };
    const netMode = this.networkModeOf(h.NetworkMode);
    const networking = this.deps.networks.initialNetworking(netMode, body.NetworkingConfig?.EndpointsConfig ?? {});
    // The container-level MacAddress (deprecated, still sent by docker-py and older CLIs) is the
    // primary network's, unless that endpoint asks for its own.
    const primary = Object.values(networking.Networks)[0];
    if (body.MacAddress && primary && !primary.RequestedMac) {
      if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(body.MacAddress)) throw invalidArgument(`invalid MAC address: ${body.MacAddress}`);
      primary.RequestedMac = body.MacAddress.toLowerCase();
      primary.MacAddress = body.MacAddress;
    }
    this.deps.networks.portsOf({ Id: "", Name: "", Config: { ExposedPorts: body.ExposedPorts ?? null }, HostConfig: h, State: { Running: false, Pid: 0 } }); // bad bindings fail here
    delete (config as Record<string, unknown>).HostConfig;
    delete (config as Record<string, unknown>).NetworkingConfig;
    const rec: ContainerRecord = {
      Id: id,
      Name: fullName,
      Created: now(),
      Path: args[0]!,
      Args: args.slice(1),
      Image: img.id,
      ImageName: body.Image,
      Config: config,
      HostConfig: { ...h, ...(((h.Links ?? []) as string[]).length ? { Links: (h.Links as string[]).map((l) => { const [t, a] = splitLink(l); return `/${t}:${fullName}/${a}`; }) } : {}), NetworkMode: netMode, LogConfig: h.LogConfig?.Type ? { Type: h.LogConfig.Type, Config: h.LogConfig.Config ?? {} } : { Type: this.deps.defaultLog?.Type ?? "json-file", Config: { ...(this.deps.defaultLog?.Config ?? {}), ...(h.LogConfig?.Config ?? {}) } } },
      State: createdState(),
      RestartCount: 0,
      Driver: layers.driver.name,
      LogPath: join(dir, `${id}-json.log`),
      ResolvConfPath: join(dir, "resolv.conf"),
      HostnamePath: join(dir, "hostname"),
      HostsPath: join(dir, "hosts"),
      RwLayer: rwKey,
      NetworkSettings: networking,
    };
    if (!["json-file", "none", "local"].includes(rec.HostConfig.LogConfig!.Type!)) {
      await layers.driver.remove(rwKey);
      this.store.delete(id);
      throw invalidArgument(`error looking up logging plugin ${rec.HostConfig.LogConfig!.Type}: plugin "${rec.HostConfig.LogConfig!.Type}" not found`);
    }
    // Volumes: named ones are created when missing, anonymous ones get a fresh name.
    for (const m of mounts) {
      if (m.Type !== "volume") continue;
      const driver = m.Driver && m.Driver !== "local" ? m.Driver : h.VolumeDriver || "local";
      const vol = await this.deps.volumes.create({ ...(m.Name ? { Name: m.Name } : {}), Driver: driver }, { anonymous: !!m.Anonymous });
      m.Name = vol.Name;
      m.Driver = vol.Driver;
      m.Source = vol.Mountpoint;
    }
    rec.MountPoints = mounts;
    this.store.save(rec);
    this.publish(rec, "create");
    return { Id: id, Warnings: [] };
  }

  /** The network mode a request asks for: Docker's "default" is the bridge network when there is one. */
  private networkModeOf(mode: string | null | undefined): string {
    if (!mode || mode === "default") return this.deps.networks.find("bridge") ? "bridge" : "none";
    if (mode.startsWith("container:")) {
      const other = this.store.get(mode.slice("container:".length));
      return `container:${other.Id}`;
    }
    return mode;
  }

  private uniqueName(): string {
    for (;;) {
      const n = `/${randomName()}`;
      if (!this.store.all().some((c) => c.Name === n)) return n;
    }
  }

  // ---- start ---------------------------------------------------------------------------------

  private rootfsOf(c: ContainerRecord): string {
    return join(this.store.dir(c.Id), "rootfs");
  }

  /** `POST /containers/{id}/start`: false when it was running already (304). */
  async start(ref: string): Promise<boolean> {
    const c = this.store.get(ref);
    if (c.State.Running) return false;
    this.cancelRestart(c);
    c.ManuallyStopped = false;
    this.backoff.delete(c.Id);
    if (c.State.Status === "removing" || c.State.Dead) throw conflict(`container ${c.Id} is marked for removal and cannot be started`);
    try {
      await this.startContainer(c);
    } catch (err) {
      // As dockerd: a --rm container that cannot start is removed (the CLI waits for that).
      if (c.HostConfig.AutoRemove) await this.remove(c.Id, { force: true }).catch(() => {});
      throw err;
    }
    return true;
  }

  /** Starts in progress, by container ID. */
  private readonly starting = new Map<string, Promise<void>>();

  private startContainer(c: ContainerRecord): Promise<void> {
    const p = this.doStart(c).finally(() => this.starting.delete(c.Id));
    this.starting.set(c.Id, p.catch(() => {}));
    return p;
  }

  private async doStart(c: ContainerRecord): Promise<void> {
    const images = await this.deps.images();
    const dir = this.store.dir(c.Id);
    const rootfs = this.rootfsOf(c);
    mkdirSync(rootfs, { recursive: true });
    if (!isMounted(rootfs)) mountAll(this.deps.sys, await images.layers.driver.mounts(c.RwLayer), rootfs);
    try {
      const netnsPath = this.joinedNetns(c);
      await this.deps.networks.allocate(c);
      this.writeEtcFiles(c);
      const user = resolveUser(this.deps.sys, rootfs, c.Config.User ?? "", c.HostConfig.GroupAdd ?? []);
      if (c.Config.WorkingDir) mkdirSync(join(rootfs, safeRel(c.Config.WorkingDir)), { recursive: true });
      const env = mergeEnv(c.Config.Env, [`HOSTNAME=${c.Config.Hostname}`], c.Config.Tty ? ["TERM=xterm"] : [], this.deps.networks.linkEnv(c), c.Config.Env);
      const spec = buildSpec({
        id: c.Id,
        config: c.Config,
        hostConfig: c.HostConfig,
        args: [c.Path, ...c.Args],
        env: env.some((e) => e.startsWith("PATH=")) ? env : [DEFAULT_PATH, ...env],
        user,
        rootfs,
        etcFiles: { hosts: c.HostsPath, hostname: c.HostnamePath, resolvConf: c.ResolvConfPath },
        mounts: await this.volumeMounts(c, rootfs),
        ...(netnsPath ? { netnsPath } : {}),
        nsPaths: this.sharedNamespaces(c),
        ...(this.deps.cgroupDriver ? { cgroupDriver: this.deps.cgroupDriver } : {}),
      });
      const bundle = join(dir, "bundle");
      mkdirSync(bundle, { recursive: true });
      writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
      const spool = join(dir, "output.spool");
      writeFileSync(spool, "");
      const offsetFile = join(dir, "spool.offset");
      writeFileSync(offsetFile, "0");
      try {
        await this.deps.runtime.delete(c.Id, true); // a leftover from a crash
      } catch {
        /* none */
      }
      const stdin = c.Config.OpenStdin ? (c.Config.StdinOnce ? "pipe" : "hold") : "null";
      const created = await this.deps.runtime.create(c.Id, { bundle, io: { spool, stdin } });
      await this.deps.networks.attach(c, created.pid);
      const input = c.Config.Tty ? await this.terminalOf(c.Id) : created.stdin;
      const pump = this.pumpFor(c);
      pump.start();
      const live: Live = { pump, ...(input !== undefined ? { input } : {}), exited: this.deps.runtime.watchExit(c.Id) };
      this.live.set(c.Id, live);
      this.connectPending(c.Id, live);
      await this.deps.runtime.start(c.Id);
      c.State = { ...createdState(), Status: "running", Running: true, Pid: created.pid, StartedAt: now() };
      this.store.save(c);
      this.publish(c, "start");
      live.handled = live.exited.then((code) => this.onExit(c.Id, code));
      this.startHealth(c, live);
    } catch (err) {
      for (const s of this.pendingAttach.get(c.Id) ?? []) s.end();
      this.pendingAttach.delete(c.Id);
      this.pendingInput.delete(c.Id);
      const l = this.live.get(c.Id);
      if (l) {
        l.pump.finish();
        if (l.input !== undefined) closeSync(l.input);
        this.live.delete(c.Id);
      }
      try {
        await this.deps.runtime.delete(c.Id, true);
      } catch (e) {
        if (!/not found|no such|ENOENT/i.test(messageOf(e))) this.deps.log.warn("runtime delete after a failed start failed", { container: c.Id.slice(0, 12), error: messageOf(e) });
      }
      try {
        unmount(this.deps.sys, rootfs);
      } catch {
        /* not mounted */
      }
      await this.deps.networks.detach(c).catch(() => {});
      c.State = { ...c.State, Status: c.State.StartedAt === ZERO_TIME ? "created" : "exited", Running: false, Pid: 0, ExitCode: 128, Error: messageOf(err) };
      this.store.save(c);
      throw classifyStartError(err, c.Path);
    }
  }

  /**
   * The container's mounts in runtime-spec form; a volume still empty gets what the image has at
   * its destination (Docker's copy-up), read inside the container's root.
   */
  private async volumeMounts(c: ContainerRecord, rootfs: string): Promise<Record<string, unknown>[]> {
    for (const m of c.MountPoints ?? []) {
      if (m.Type !== "volume") continue;
      m.Source = await this.deps.volumes.mount(m.Name!, c.Id);
      if (m.CopyUp && readdirSync(m.Source).length === 0) await copyUp(this.deps.sys, rootfs, m.Destination, m.Source);
      m.CopyUp = false;
    }
    return (c.MountPoints ?? []).map(specMount);
  }

  /** For `--network container:<id>`: the other container's namespace (it must run). */
  /** `--pid container:<id>` and `--ipc container:<id>`: the other container's namespaces. */
  private sharedNamespaces(c: ContainerRecord): { pid?: string; ipc?: string } {
    const pidOf = (mode: string | null | undefined, what: string) => {
      if (!mode?.startsWith("container:")) return undefined;
      const other = this.store.get(mode.slice("container:".length));
      if (!other.State.Running || !other.State.Pid) throw new EngineError("internal", `failed to join ${what} namespace: container ${other.Id} is not running`);
      return other.State.Pid;
    };
    const pid = pidOf(c.HostConfig.PidMode, "PID");
    const ipc = pidOf(c.HostConfig.IpcMode, "IPC");
    return { ...(pid ? { pid: `/proc/${pid}/ns/pid` } : {}), ...(ipc ? { ipc: `/proc/${ipc}/ns/ipc` } : {}) };
  }

  private joinedNetns(c: ContainerRecord): string | undefined {
    const mode = c.HostConfig.NetworkMode ?? "";
    if (!mode.startsWith("container:")) return undefined;
    const other = this.store.get(mode.slice("container:".length));
    if (!other.State.Running || !other.State.Pid) throw conflict(`cannot join network namespace of a non running container: ${other.Id}`);
    return `/proc/${other.State.Pid}/ns/net`;
  }

  /** The container's /etc/hostname, /etc/hosts and /etc/resolv.conf. */
  private writeEtcFiles(c: ContainerRecord): void {
    writeFileSync(c.HostnamePath, `${c.Config.Hostname}\n`);
    const mode = c.HostConfig.NetworkMode ?? "";
    if (mode.startsWith("container:")) {
      // Sharing a network namespace shares its names too (as Docker does).
      const other = this.store.get(mode.slice("container:".length));
      writeFileSync(c.HostsPath, readFileSync(other.HostsPath));
      writeFileSync(c.ResolvConfPath, readFileSync(other.ResolvConfPath));
      return;
    }
    const extra = (c.HostConfig.ExtraHosts ?? []).map((e) => {
      const [host, ip] = [e.slice(0, e.indexOf(":")), e.slice(e.indexOf(":") + 1)];
      if (!host || !ip) throw invalidArgument(`invalid IP address in add-host: "${ip ?? ""}"`);
      // host-gateway: the host's address on the default bridge (dockerd's host-gateway-ip).
      if (ip === "host-gateway") return `${this.deps.networks.hostGatewayIp()}\t${host}`;
      return `${ip}\t${host}`;
    });
    writeFileSync(
      c.HostsPath,
      ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::\tip6-localnet", "ff00::\tip6-mcastprefix", "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters", ...this.deps.networks.hostsEntries(c), ...extra, ""].join("\n"),
    );
    let resolv = "";
    const embedded = this.deps.networks.dnsServerFor(c);
    if (embedded) resolv = `nameserver ${embedded}\n`; // the network's DNS server answers names, forwards the rest
    else if (c.HostConfig.Dns?.length) resolv = c.HostConfig.Dns.map((d) => `nameserver ${d}`).join("\n") + "\n";
    else if (this.deps.networks.daemonDns?.length && c.HostConfig.NetworkMode !== "none") resolv = this.deps.networks.daemonDns.map((d) => `nameserver ${d}`).join("\n") + "\n";
    else if (c.HostConfig.NetworkMode === "host" && existsSync("/etc/resolv.conf")) resolv = readFileSync("/etc/resolv.conf", "utf8");
    else if (c.HostConfig.NetworkMode !== "none") resolv = hostNameservers();
    if (c.HostConfig.DnsSearch?.length) resolv += `search ${c.HostConfig.DnsSearch.join(" ")}\n`;
    if (c.HostConfig.DnsOptions?.length) resolv += `options ${c.HostConfig.DnsOptions.join(" ")}\n`;
    writeFileSync(c.ResolvConfPath, resolv);
  }

  /** The container's output pump (spool → json-file or local log, unless logging is off), not started. */
  private pumpFor(c: ContainerRecord): OutputPump {
    const dir = this.store.dir(c.Id);
    const type = c.HostConfig.LogConfig?.Type;
    const log = type === "none" ? undefined : type === "local" ? new LocalLogWriter(localLogFile(dir), { ...logOptions(c), compress: c.HostConfig.LogConfig?.Config?.compress !== "false" }) : new JsonLogWriter(c.LogPath, logOptions(c));
    return new OutputPump(join(dir, "output.spool"), join(dir, "spool.offset"), log);
  }

  // ---- exit, wait ----------------------------------------------------------------------------

  /** Run the container's health check while it runs (State.Health, health_status events). */
  private startHealth(c: ContainerRecord, live: Live): void {
    if (!healthCommand(c)) return;
    const m = new HealthMonitor(c, (cmd, timeout) => this.execs.probe(c.Id, cmd, timeout), (h, changed) => {
      let cur: ContainerRecord;
      try {
        cur = this.store.get(c.Id);
      } catch {
        return;
      }
      cur.State = { ...cur.State, Health: structuredClone(h) };
      this.store.save(cur);
      if (changed) this.publish(cur, `health_status: ${h.Status}`);
    });
    live.health = m;
    m.start();
  }

  private async onExit(id: string, code: number): Promise<void> {
    const l = this.live.get(id);
    l?.health?.stop();
    l?.pump.finish();
    if (l?.input !== undefined) {
      try {
        closeSync(l.input);
      } catch {
        /* closed on stdin end */
      }
    }
    let c: ContainerRecord;
    try {
      c = this.store.get(id);
    } catch {
      // Removed while it was (re)starting: its runtime state and cgroup still go.
      await this.deps.runtime.delete(id, true).catch(() => {});
      this.live.delete(id);
      return;
    }
    let oom = false;
    try {
      oom = this.deps.runtime.oomKills(id) > 0;
    } catch {
      /* gone */
    }
    try {
      await this.deps.runtime.delete(id, true);
    } catch (err) {
      this.deps.log.warn("runtime delete failed", { container: id, error: messageOf(err) });
    }
    try {
      unmount(this.deps.sys, this.rootfsOf(c));
    } catch {
      /* not mounted */
    }
    for (const m of c.MountPoints ?? []) {
      if (m.Type !== "volume") continue;
      await this.deps.volumes.unmount(m.Name!, c.Id).catch((err) => this.deps.log.warn("volume unmount failed", { volume: m.Name, error: messageOf(err) }));
    }
    await this.deps.networks.detach(c);
    c.State = { ...c.State, Status: "exited", Running: false, Paused: false, Pid: 0, ExitCode: code, OOMKilled: oom, FinishedAt: now() };
    this.store.save(c);
    this.live.delete(id);
    if (oom) this.publish(c, "oom");
    this.publish(c, "die", { exitCode: String(code) });
    this.execs.forget(id);
    for (const w of this.exitWaiters.get(id) ?? []) w(code);
    this.exitWaiters.delete(id);
    if (c.HostConfig.AutoRemove && !this.restartingNow.has(id)) {
      try {
        await this.remove(id, { force: true });
      } catch (err) {
        this.deps.log.warn("auto-remove failed", { container: id, error: messageOf(err) });
      }
      return;
    }
    this.maybeRestart(c, code);
  }

  /** Restarts pending after a backoff, by container (cancelled by stop, kill, rm). */
  private readonly restartTimers = new Map<string, ReturnType<typeof setTimeout>>();

  /** Whether the restart policy wants this exit restarted. */
  private wantsRestart(c: ContainerRecord, code: number): boolean {
    const p = c.HostConfig.RestartPolicy;
    if (c.ManuallyStopped || !p?.Name || p.Name === "no") return false;
    if (p.Name === "on-failure") return code !== 0 && (!p.MaximumRetryCount || c.RestartCount < p.MaximumRetryCount);
    return true; // always, unless-stopped
  }

  /**
   * Apply the restart policy after an exit, with Docker's backoff: 100 ms, doubling up to a
   * minute, back to 100 ms when the container had run for 10 s.
   */
  private maybeRestart(c: ContainerRecord, code: number): void {
    if (!this.wantsRestart(c, code)) return;
    const ranMs = Date.parse(c.State.FinishedAt) - Date.parse(c.State.StartedAt);
    const prev = this.backoff.get(c.Id) ?? 0;
    const delay = ranMs >= 10_000 || prev === 0 ? 100 : Math.min(prev * 2, 60_000);
    this.backoff.set(c.Id, delay);
    c.State = { ...c.State, Status: "restarting", Restarting: true };
    this.store.save(c);
    const timer = setTimeout(async () => {
      this.restartTimers.delete(c.Id);
      let cur: ContainerRecord;
      try {
        cur = this.store.get(c.Id);
      } catch {
        return; // removed meanwhile
      }
      if (!cur.State.Restarting) return;
      cur.RestartCount++;
      cur.State.Restarting = false;
      try {
        await this.startContainer(cur);
        this.publish(cur, "restart");
      } catch (err) {
        this.deps.log.warn("restart failed", { container: cur.Id, error: messageOf(err) });
        cur.State = { ...cur.State, Status: "exited", Restarting: false };
        this.store.save(cur);
      }
    }, delay);
    this.restartTimers.set(c.Id, timer);
  }

  private readonly backoff = new Map<string, number>();

  /** Cancel a pending restart (stop, kill, rm of a restarting container). */
  private cancelRestart(c: ContainerRecord): boolean {
    const t = this.restartTimers.get(c.Id);
    if (!t) return false;
    clearTimeout(t);
    this.restartTimers.delete(c.Id);
    c.State = { ...c.State, Status: "exited", Restarting: false };
    this.store.save(c);
    return true;
  }

  /** Resolves at the next exit of the container. */
  private nextExit(id: string): Promise<number> {
    return new Promise((resolve) => {
      const list = this.exitWaiters.get(id) ?? [];
      list.push(resolve);
      this.exitWaiters.set(id, list);
    });
  }

  private readonly removeWaiters = new Map<string, (() => void)[]>();

  /**
   * `POST /containers/{id}/wait`: returns a promise of the status code (it settles later; the
   * caller sends the headers first). Conditions: not-running (default), next-exit, removed.
   */
  wait(ref: string, condition = "not-running"): Promise<number> {
    const c = this.store.get(ref);
    if (!["not-running", "next-exit", "removed", ""].includes(condition)) throw invalidArgument(`invalid condition: "${condition}"`);
    if (condition === "removed") {
      return new Promise((resolve) => {
        const list = this.removeWaiters.get(c.Id) ?? [];
        list.push(() => resolve(this.lastExit.get(c.Id) ?? c.State.ExitCode));
        this.removeWaiters.set(c.Id, list);
      });
    }
    if ((condition === "not-running" || condition === "") && !c.State.Running) return Promise.resolve(c.State.ExitCode);
    return this.nextExit(c.Id);
  }

  private readonly lastExit = new Map<string, number>();

  // ---- stop, kill, pause ---------------------------------------------------------------------

  /**
   * `POST /containers/{id}/kill`. A SIGKILL answers once the exit is recorded (moby waits too),
   * so an inspect right after shows `exited` with 137; other signals answer when sent.
   */
  async kill(ref: string, signal = "SIGKILL"): Promise<void> {
    const c = this.store.get(ref);
    const sig = parseSignal(signal);
    if (c.State.Restarting && this.cancelRestart(c)) return;
    if (!c.State.Running) throw conflict(`cannot kill container: ${c.Id}: container ${c.Id} is not running`);
    if (c.State.Paused && sig !== 9) throw conflict(`cannot kill container: ${c.Id}: container ${c.Id} is paused. Unpause the container before stopping or killing`);
    if (c.State.Paused) this.deps.runtime.resume(c.Id);
    if (sig === 9 || sig === 15) {
      c.ManuallyStopped = true; // as dockerd: a killed container is not restarted by its policy
      this.store.save(c);
    }
    const l = this.live.get(c.Id);
    this.deps.runtime.kill(c.Id, sig, sig === 9);
    this.publish(c, "kill", { signal: String(sig) });
    if (sig === 9 && l) await Promise.race([l.handled, Bun.sleep(10_000)]);
  }

  /** `POST /containers/{id}/stop`: the stop signal, then SIGKILL after `timeout` seconds. False if not running (304). */
  async stop(ref: string, timeout?: number, signal?: string): Promise<boolean> {
    const c = this.store.get(ref);
    c.ManuallyStopped = true;
    if (this.cancelRestart(c)) return true;
    this.store.save(c);
    if (!c.State.Running) return false;
    const l = this.live.get(c.Id);
    const t = timeout ?? c.Config.StopTimeout ?? 10;
    const sig = parseSignal(signal || c.Config.StopSignal || "SIGTERM");
    if (c.State.Paused) {
      this.deps.runtime.resume(c.Id);
      c.State.Paused = false;
    }
    try {
      this.deps.runtime.kill(c.Id, sig);
    } catch {
      /* exited meanwhile */
    }
    const timer = t < 0 ? undefined : setTimeout(() => {
      try {
        this.deps.runtime.kill(c.Id, 9, true);
      } catch {
        /* gone */
      }
    }, t * 1000);
    await l?.handled; // the exit, recorded (state saved, layer unmounted)
    if (timer) clearTimeout(timer);
    this.publish(c, "stop");
    return true;
  }

  /** `POST /containers/{id}/pause` and `/unpause`. */
  pause(ref: string, paused: boolean): void {
    const c = this.store.get(ref);
    if (!c.State.Running) throw conflict(`Container ${c.Id} is not running`);
    if (paused === c.State.Paused) throw conflict(`Container ${c.Id} is ${paused ? "already paused" : "not paused"}`);
    if (paused) this.deps.runtime.pause(c.Id);
    else this.deps.runtime.resume(c.Id);
    c.State = { ...c.State, Paused: paused, Status: paused ? "paused" : "running" };
    this.store.save(c);
    this.publish(c, paused ? "pause" : "unpause");
  }

  /** Containers being restarted: their stop is not an exit that removes an AutoRemove container. */
  private readonly restartingNow = new Set<string>();

  /** `POST /containers/{id}/restart`: stop (the stop signal, then SIGKILL after `timeout`), start, a restart event. */
  async restart(ref: string, timeout?: number, signal?: string): Promise<void> {
    const c = this.store.get(ref);
    this.restartingNow.add(c.Id);
    try {
      await this.stop(c.Id, timeout, signal);
      await this.start(c.Id);
    } finally {
      this.restartingNow.delete(c.Id);
    }
    this.publish(this.store.get(c.Id), "restart");
  }

  /** `POST /containers/{id}/rename`. */
  rename(ref: string, name: string): void {
    const c = this.store.get(ref);
    if (c.Name === (name.startsWith("/") ? name : `/${name}`)) throw invalidArgument("Renaming a container with the same name as its current name");
    const old = c.Name;
    c.Name = this.store.checkName(name, c.Id);
    this.store.save(c);
    this.publish(c, "rename", { oldName: old });
  }

  // ---- remove --------------------------------------------------------------------------------

  /** Names of the containers using volume `name`. */
  volumeUsers(name: string): string[] {
    return this.store.all().filter((c) => (c.MountPoints ?? []).some((m) => m.Type === "volume" && m.Name === name)).map((c) => c.Id);
  }

  /** `DELETE /containers/{id}` (`volumes`: its anonymous volumes go too, `rm -v`). */
  async remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    let c = this.store.get(ref);
    // A start in progress (a restart policy's) finishes first, so nothing runs without a record.
    await this.starting.get(c.Id);
    c = this.store.get(ref);
    if (c.State.Restarting && !opts.force) throw conflict(`You cannot remove a restarting container ${c.Id}. Stop the container before attempting removal or force remove`);
    this.cancelRestart(c);
    if (c.State.Running) {
      if (!opts.force) {
        // dockerd 20.10's wording, which clients match (docker-py's tests do; Docker 28 rephrased it).
        throw conflict(`You cannot remove a ${c.State.Paused ? "paused" : "running"} container ${c.Id}. ${c.State.Paused ? "Unpause and then stop" : "Stop"} the container before attempting removal or force remove`);
      }
      const l = this.live.get(c.Id);
      if (c.State.Paused) this.deps.runtime.resume(c.Id);
      this.deps.runtime.kill(c.Id, 9, true);
      await l?.handled;
    }
    const images = await this.deps.images();
    try {
      unmount(this.deps.sys, this.rootfsOf(c));
    } catch {
      /* not mounted */
    }
    try {
      await images.layers.driver.remove(c.RwLayer);
    } catch (err) {
      if (!(err instanceof EngineError && err.code === "not-found")) throw err;
    }
    this.lastExit.set(c.Id, c.State.ExitCode);
    this.store.delete(c.Id);
    for (const m of c.MountPoints ?? []) {
      if (m.Type !== "volume" || !m.Anonymous || !(opts.volumes || c.HostConfig.AutoRemove)) continue;
      try {
        await this.deps.volumes.remove(m.Name!);
      } catch (err) {
        this.deps.log.warn("volume not removed", { volume: m.Name, error: messageOf(err) });
      }
    }
    this.publish(c, "destroy");
    for (const w of this.removeWaiters.get(c.Id) ?? []) w();
    this.removeWaiters.delete(c.Id);
    setTimeout(() => this.lastExit.delete(c.Id), 60_000).unref?.();
  }

  // ---- I/O -----------------------------------------------------------------------------------

  private readonly pendingAttach = new Map<string, Set<OutputSubscriber>>();
  private readonly pendingInput = new Map<string, { chunks: Uint8Array[]; end: boolean }>();

  /**
   * Attach to a container's streams (before start too: output from the first byte). `out` gets
   * the raw output records; the returned handle takes input and its end (StdinOnce closes the
   * container's stdin then).
   */
  attach(ref: string, opts: { stdin: boolean }, out: OutputSubscriber): { input(chunk: Uint8Array): void; endInput(): void; detach(): void } {
    const c = this.store.get(ref);
    if (!c.State.Running && c.State.Status !== "created") throw conflict("You cannot attach to a stopped container, start it first");
    if (c.State.Paused) throw conflict("You cannot attach to a paused container, unpause it first");
    this.publish(c, "attach");
    const live = this.live.get(c.Id);
    let unsubscribe: () => void;
    if (live) unsubscribe = live.pump.subscribe(out);
    else {
      const set = this.pendingAttach.get(c.Id) ?? new Set();
      set.add(out);
      this.pendingAttach.set(c.Id, set);
      unsubscribe = () => set.delete(out);
    }
    const queue = new WriteQueue();
    const write = (chunk: Uint8Array) => {
      const l = this.live.get(c.Id);
      if (l?.input === undefined) {
        const p = this.pendingInput.get(c.Id) ?? { chunks: [], end: false };
        p.chunks.push(chunk);
        this.pendingInput.set(c.Id, p);
        return;
      }
      queue.write(l.input, chunk);
    };
    return {
      input: (chunk) => {
        if (opts.stdin && c.Config.OpenStdin) write(chunk);
      },
      endInput: () => {
        if (!opts.stdin || !c.Config.StdinOnce) return;
        if (!this.live.get(c.Id)) {
          const p = this.pendingInput.get(c.Id) ?? { chunks: [], end: false };
          p.end = true;
          this.pendingInput.set(c.Id, p);
          return;
        }
        queue.then(() => this.closeStdin(c.Id));
      },
      detach: () => unsubscribe(),
    };
  }

  /**
   * The container's pty master, fetched from its monitor (fd 3 there). The monitor receives the
   * master from the container and moves it to fd 3 on its own time, which can come after the
   * container reports ready: until then fd 3 is still a descriptor inherited from the daemon, and
   * input written to it was lost (seen as a `docker run -it` whose typed line never arrived). So
   * the fetched fd is checked to be a pty master, and fetched again until it is.
   */
  private async terminalOf(id: string): Promise<number> {
    let last: unknown;
    for (let i = 0; i < 2000; i++) {
      try {
        const fd = this.deps.runtime.monitorFd(id, "output");
        if (isPtyMaster(fd)) return fd;
        closeSync(fd);
      } catch (err) {
        last = err;
      }
      await Bun.sleep(1);
    }
    throw new EngineError("internal", `container ${id}: its terminal did not reach its monitor${last ? ` (${messageOf(last)})` : ""}`);
  }

  /** At start: hand the pump to early attachers and the input they sent to the container. */
  private connectPending(id: string, live: Live): void {
    for (const s of this.pendingAttach.get(id) ?? []) live.pump.subscribe(s);
    this.pendingAttach.delete(id);
    const p = this.pendingInput.get(id);
    this.pendingInput.delete(id);
    if (!p || live.input === undefined) return;
    const queue = new WriteQueue();
    for (const chunk of p.chunks) queue.write(live.input, chunk);
    if (p.end) queue.then(() => this.closeStdin(id));
  }

  /** The running container's output pump and input fd (for attach). */
  io(id: string): Live | undefined {
    return this.live.get(id);
  }

  /** `POST /containers/{id}/resize`. */
  resize(ref: string, height: number, width: number): void {
    const c = this.store.get(ref);
    if (!c.State.Running) throw conflict(`cannot resize container: container ${c.Id} is not running`);
    const l = this.live.get(c.Id);
    if (!c.Config.Tty || l?.input === undefined) return;
    resizePty(this.deps.sys, l.input, height, width, "the container's terminal");
    this.publish(c, "resize", { height: String(height), width: String(width) });
  }

  /** Close the container's stdin (StdinOnce, after the attached client's half-close). */
  closeStdin(id: string): void {
    const l = this.live.get(id);
    const c = this.store.get(id);
    if (!l || l.input === undefined || c.Config.Tty) return;
    try {
      closeSync(l.input);
    } catch {
      /* already */
    }
    delete l.input;
  }

  /**
   * Run `fn` on the host directory holding the container's `path` and the path inside it: the
   * volume or bind mount whose destination contains it (volumes and binds live outside the root
   * on the host), else the container's root, mounted if it is not running. A running container is
   * paused meanwhile (CVE-2018-15664); `fn` resolves `path` inside that directory only.
   */
  async withRoot<T>(ref: string, path: string, fn: (root: string, path: string) => Promise<T>, event?: { action: string; path: string }): Promise<T> {
    const c = this.store.get(ref);
    if (event) this.publish(c, event.action, { path: event.path });
    const clean = posix.normalize(`/${path}`);
    const mounts = [
      ...(c.MountPoints ?? []).filter((m) => m.Type !== "tmpfs" && m.Source).map((m) => ({ dest: m.Destination, src: m.Source })),
      { dest: "/etc/hosts", src: c.HostsPath },
      { dest: "/etc/hostname", src: c.HostnamePath },
      { dest: "/etc/resolv.conf", src: c.ResolvConfPath },
    ].filter((m) => clean === m.dest || clean.startsWith(`${m.dest}/`));
    const mount = mounts.sort((a, b) => b.dest.length - a.dest.length)[0];
    if (mount && existsSync(mount.src)) {
      // A file bind mount is reached through its directory, by its own name.
      if (!statSync(mount.src).isDirectory()) return fn(dirname(mount.src), `/${basename(mount.src)}`);
      return fn(mount.src, clean.slice(mount.dest.length) || "/");
    }
    const images = await this.deps.images();
    if (!c.State.Running) return images.layers.withMount(c.RwLayer, (root) => fn(root, clean));
    const pause = !c.State.Paused;
    if (pause) this.deps.runtime.pause(c.Id);
    try {
      return await fn(this.rootfsOf(c), clean);
    } finally {
      if (pause) {
        try {
          this.deps.runtime.resume(c.Id);
        } catch (err) {
          // Killed while frozen (docker kill during a commit): nothing left to thaw.
          if (!(err instanceof EngineError && (err.code === "failed-precondition" || err.code === "not-found"))) throw err;
        }
      }
    }
  }

  /** `POST /commit`: the container's writable layer as a new image on top of its image. */
  async commit(ref: string, opts: { repo?: string; tag?: string; comment?: string; author?: string; pause?: boolean; changes?: string[]; config?: Record<string, unknown>; createdBy?: string; exactConfig?: boolean }): Promise<string> {
    const c = this.store.get(ref);
    const images = await this.deps.images();
    const base = images.image(c.Image);
    let pause = (opts.pause ?? true) && c.State.Running && !c.State.Paused;
    if (pause) {
      try {
        this.deps.runtime.pause(c.Id);
      } catch (err) {
        // It exited between the record and the pause (a short-lived container): nothing to freeze.
        if (!(err instanceof EngineError && (err.code === "failed-precondition" || err.code === "not-found"))) throw err;
        pause = false;
      }
    }
    try {
      const { applyChanges } = await import("../image/image-service.ts");
      let config: Record<string, unknown> = opts.exactConfig ? { ...(opts.config ?? {}) } : { ...c.Config, ...(opts.config ?? {}) };
      delete config.Hostname;
      if (opts.changes?.length) config = applyChanges(config, opts.changes);
      const id = await images.commit(base, withoutMountPoints(images.layers.diff(c.RwLayer)), { config, containerId: c.Id, containerConfig: { ...c.Config }, ...(opts.repo ? { repo: opts.repo } : {}), ...(opts.tag ? { tag: opts.tag } : {}), ...(opts.comment ? { comment: opts.comment } : {}), ...(opts.author ? { author: opts.author } : {}), ...(opts.createdBy ? { createdBy: opts.createdBy } : {}) });
      this.publish(c, "commit", { comment: opts.comment ?? "" });
      return id;
    } finally {
      if (pause) {
        try {
          this.deps.runtime.resume(c.Id);
        } catch (err) {
          // Killed while frozen (docker kill during a commit): nothing left to thaw.
          if (!(err instanceof EngineError && (err.code === "failed-precondition" || err.code === "not-found"))) throw err;
        }
      }
    }
  }

  /** `GET /containers/{id}/changes`. */
  async changes(ref: string): Promise<{ Path: string; Kind: number }[]> {
    const c = this.store.get(ref);
    const images = await this.deps.images();
    // What the engine itself puts there (mount points, the /etc files it binds) is not a change
    // of the container's, as Docker's init layer keeps it out of sight.
    const hidden = new Set(["/dev", "/proc", "/sys", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", ...(c.MountPoints ?? []).map((m) => m.Destination)]);
    const own = (await images.layers.changes(c.RwLayer))
      .filter((x) => !hidden.has(x.path) && !x.path.startsWith("/dev/") && !x.path.startsWith("/proc/") && !x.path.startsWith("/sys/"))
      .map((x) => ({ Path: x.path, Kind: x.kind }));
    // A directory holding a change is itself changed (Docker lists `C /etc` above `A /etc/x`),
    // unless it is new or gone itself.
    const listed = new Set(own.map((x) => x.Path));
    for (const x of [...own]) {
      for (let p = x.Path.slice(0, x.Path.lastIndexOf("/")); p; p = p.slice(0, p.lastIndexOf("/"))) {
        if (listed.has(p)) break;
        listed.add(p);
        own.push({ Path: p, Kind: 0 });
      }
    }
    return own.sort((a, b) => (a.Path < b.Path ? -1 : a.Path > b.Path ? 1 : 0));
  }

  /** `GET /containers/{id}/export`: the container's whole filesystem as a tar. */
  async *exportFs(ref: string): AsyncGenerator<Uint8Array> {
    const c = this.store.get(ref);
    const images = await this.deps.images();
    yield* images.layers.exportTar(c.RwLayer);
    this.publish(c, "export");
  }

  /** One `GET /containers/{id}/stats` sample, in Docker's shape (without precpu_stats). */
  statsSample(ref: string): Record<string, unknown> {
    const c = this.store.get(ref);
    const now = new Date().toISOString().replace("Z", "000000Z");
    const procStat = readFileSync("/proc/stat", "utf8").split("\n");
    const cpuLine = procStat[0]!.split(/\s+/).slice(1).map(Number);
    const systemNs = cpuLine.slice(0, 8).reduce((a, b) => a + b, 0) * 1e7; // USER_HZ = 100
    const online = procStat.filter((l) => /^cpu\d+ /.test(l)).length;
    if (!c.State.Running) {
      return { read: "0001-01-01T00:00:00Z", preread: "0001-01-01T00:00:00Z", pids_stats: {}, blkio_stats: {}, num_procs: 0, storage_stats: {}, cpu_stats: { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } }, memory_stats: {}, name: c.Name, id: c.Id };
    }
    const st = this.deps.runtime.stats(c.Id);
    const memTotal = Number(/MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0) * 1024;
    const blk = st.blkio.map((b) => ({ major: b.major, minor: b.minor, op: b.op[0]!.toUpperCase() + b.op.slice(1), value: b.value }));
    return {
      read: now,
      preread: "0001-01-01T00:00:00Z",
      pids_stats: { current: st.pids, ...(st.pidsLimit ? { limit: st.pidsLimit } : {}) },
      blkio_stats: { io_service_bytes_recursive: blk.length ? blk : null, io_serviced_recursive: null, io_queue_recursive: null, io_service_time_recursive: null, io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null },
      num_procs: 0,
      storage_stats: {},
      cpu_stats: { cpu_usage: { total_usage: st.cpuNs, usage_in_kernelmode: st.systemNs, usage_in_usermode: st.userNs }, system_cpu_usage: systemNs, online_cpus: online, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } },
      memory_stats: { usage: st.memUsage, ...(st.memMax ? { max_usage: st.memMax } : {}), stats: st.memStats, limit: st.memLimit || memTotal },
      ...(c.HostConfig.NetworkMode !== "host" && c.State.Pid ? { networks: interfaceCounters(c.State.Pid) ?? {} } : {}),
      name: c.Name,
      id: c.Id,
    };
  }

  /** `POST /containers/{id}/update`: new limits (applied at once when running) and restart policy. */
  update(ref: string, raw: unknown, apiVersion = "1.51"): { Warnings: string[] } {
    const c = this.store.get(ref);
    const body = parseOrThrow(HostConfigSchema, foldKeys(raw ?? {}, HostConfigSchema.entries), "update config");
    // Before API 1.40 an update did not touch the pids limit (moby ignores it for old clients).
    if (compareApiVersions(apiVersion, "1.40") < 0) delete body.PidsLimit;
    // 0 or a negative limit unsets it: shown as 0, "max" in the cgroup.
    const unsetPids = body.PidsLimit !== undefined && body.PidsLimit !== null && body.PidsLimit <= 0;
    if (unsetPids) body.PidsLimit = 0;
    const keys = ["Memory", "MemorySwap", "MemoryReservation", "CpuShares", "NanoCpus", "CpuQuota", "CpuPeriod", "CpusetCpus", "CpusetMems", "PidsLimit", "BlkioWeight", "CpuRealtimePeriod", "CpuRealtimeRuntime"] as const;
    const next = { ...c.HostConfig };
    for (const k of keys) if (body[k] !== undefined && body[k] !== null) (next as Record<string, unknown>)[k] = body[k];
    if (body.RestartPolicy?.Name !== undefined && body.RestartPolicy.Name !== null) {
      if (c.HostConfig.AutoRemove && body.RestartPolicy.Name && body.RestartPolicy.Name !== "no") throw conflict("Restart policy cannot be updated because AutoRemove is enabled for the container");
      next.RestartPolicy = body.RestartPolicy;
    }
    if (next.Memory && next.Memory < 6 * 1024 * 1024) throw invalidArgument("Minimum memory limit allowed is 6MB");
    if (c.State.Running) {
      const spec = buildSpec({ id: c.Id, config: c.Config, hostConfig: next, args: [c.Path, ...c.Args], env: [], user: { uid: 0, gid: 0, additionalGids: [] }, rootfs: "/", etcFiles: { hosts: "", hostname: "", resolvConf: "" }, mounts: [] });
      const resources = { ...((spec.linux as { resources: Record<string, unknown> }).resources) };
      delete resources.devices; // device rules are not changed by update
      if (unsetPids) resources.pids = { limit: -1 };
      this.deps.runtime.update(c.Id, resources);
    }
    c.HostConfig = next;
    this.store.save(c);
    this.publish(c, "update");
    return { Warnings: [] };
  }

  /** The writable layer's size and the whole root's (image plus writable layer), in bytes. */
  async sizes(ref: string): Promise<{ SizeRw: number; SizeRootFs: number }> {
    const c = this.store.get(ref);
    const images = await this.deps.images();
    let rw = 0;
    try {
      rw = (await images.layers.driver.usage(c.RwLayer)).size;
    } catch {
      /* gone */
    }
    let image = 0;
    try {
      image = (images.inspect(c.Image) as { Size?: number }).Size ?? 0;
    } catch {
      /* image removed */
    }
    return { SizeRw: rw, SizeRootFs: image + rw };
  }

  /** Counts for `GET /info`. */
  counts(): Record<string, number> {
    const all = this.store.all();
    const running = all.filter((c) => c.State.Running && !c.State.Paused).length;
    const paused = all.filter((c) => c.State.Paused).length;
    return { Containers: all.length, ContainersRunning: running, ContainersPaused: paused, ContainersStopped: all.length - running - paused };
  }

  /** `GET /containers/{id}/top`: the container's processes, from its cgroup and /proc. */
  async top(id: string, psArgs = "-ef"): Promise<{ Titles: string[]; Processes: string[][] }> {
    const ps = Bun.which("ps");
    if (ps) return psTop(ps, psArgs, new Set(this.deps.runtime.pids(id)));
    const rows: string[][] = [];
    for (const pid of this.deps.runtime.pids(id)) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const status = readFileSync(`/proc/${pid}/status`, "utf8");
        const uid = /Uid:\s+(\d+)/.exec(status)?.[1] ?? "0";
        const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ") || `[${stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))}]`;
        const ticks = Number(after[11]) + Number(after[12]);
        const secs = Math.floor(ticks / 100);
        const time = `${String(Math.floor(secs / 3600)).padStart(2, "0")}:${String(Math.floor(secs / 60) % 60).padStart(2, "0")}:${String(secs % 60).padStart(2, "0")}`;
        rows.push([uid, String(pid), after[1]!, "0", "", "?", time, cmd]);
      } catch {
        /* exited meanwhile */
      }
    }
    return { Titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], Processes: rows };
  }

  // ---- restart of the daemon -----------------------------------------------------------------

  /**
   * Re-attach to containers that ran when the daemon stopped: those still running get their
   * output pump and exit watch back; those that exited meanwhile get their recorded status
   * (255 when nothing was recorded).
   */
  async restore(): Promise<void> {
    for (const c of this.store.all()) {
      if (!c.State.Running) continue;
      let status: string;
      try {
        status = this.deps.runtime.state(c.Id).status;
      } catch {
        status = "missing";
      }
      if (status === "running" || status === "paused") {
        const pump = this.pumpFor(c);
        pump.start();
        let input: number | undefined;
        try {
          if (c.Config.Tty) input = await this.terminalOf(c.Id);
          else if (c.Config.OpenStdin && !c.Config.StdinOnce) input = this.deps.runtime.monitorFd(c.Id, "stdinHold");
        } catch (err) {
          this.deps.log.warn("cannot reach the container's input", { container: c.Id, error: messageOf(err) });
        }
        const live: Live = { pump, ...(input !== undefined ? { input } : {}), exited: this.deps.runtime.watchExit(c.Id) };
        this.live.set(c.Id, live);
        live.handled = live.exited.then((code) => this.onExit(c.Id, code));
        this.startHealth(c, live);
        this.deps.log.info("container restored", { container: c.Id.slice(0, 12) });
      } else {
        let code = 255;
        try {
          code = this.deps.runtime.exitCode(c.Id) ?? 255;
        } catch {
          /* no state at all */
        }
        // Its output up to the exit still goes to the log.
        if (existsSync(join(this.store.dir(c.Id), "output.spool"))) this.live.set(c.Id, { pump: this.pumpFor(c), exited: Promise.resolve(code) });
        await this.onExit(c.Id, code);
      }
    }
    // A daemon start restarts what its policy says should run (dockerd's restore does the same).
    for (const c of this.store.all()) {
      const p = c.HostConfig.RestartPolicy?.Name;
      if (c.State.Running || this.restartTimers.has(c.Id)) continue;
      if (c.State.Restarting) this.maybeRestart(c, c.State.ExitCode);
      else if ((p === "always" || (p === "unless-stopped" && !c.ManuallyStopped)) && c.State.StartedAt !== ZERO_TIME) {
        try {
          await this.startContainer(c);
        } catch (err) {
          this.deps.log.warn("restart at daemon start failed", { container: c.Id, error: messageOf(err) });
        }
      }
    }
  }
}

/** json-file and local options: max-size ("10m") and max-file. */
function logOptions(c: ContainerRecord): { maxSize?: number; maxFile?: number } {
  const o = c.HostConfig.LogConfig?.Config ?? {};
  const out: { maxSize?: number; maxFile?: number } = {};
  if (o["max-size"]) out.maxSize = parseByteSize(o["max-size"]);
  if (o["max-file"]) out.maxFile = Number(o["max-file"]);
  return out;
}

/** Whether `fd` (of this process) is a pty master: /dev/ptmx of some devpts instance. */
function isPtyMaster(fd: number): boolean {
  try {
    return /(^|\/)ptmx$/.test(readlinkSync(`/proc/self/fd/${fd}`));
  } catch {
    return false;
  }
}

/** True when something is mounted on `path`. */
function isMounted(path: string): boolean {
  try {
    return readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => l.split(" ")[4] === path);
  } catch {
    return false;
  }
}

function safeRel(p: string): string {
  const parts = p.split("/").filter((x) => x && x !== ".");
  if (parts.includes("..")) throw invalidArgument(`the working directory '${p}' is invalid`);
  return parts.join("/");
}

/**
 * Docker's wording for start failures, which the CLI reads: "executable file not found" and
 * "no such file or directory" become exit status 127, "permission denied" 126.
 */
function classifyStartError(err: unknown, program: string): Error {
  const msg = messageOf(err);
  const prefix = "failed to create task for container: failed to create shim task: OCI runtime create failed: unable to start container process";
  if (/executable file not found/.test(msg)) return new EngineError("invalid-argument", `${prefix}: exec: "${program}": executable file not found in $PATH: unknown`);
  if (/^exec:? .*ENOENT/m.test(msg) || /lookup.*ENOENT/.test(msg)) return new EngineError("invalid-argument", `${prefix}: exec: "${program}": stat ${program}: no such file or directory: unknown`);
  if (/^exec:? .*EACCES/m.test(msg)) return new EngineError("invalid-argument", `${prefix}: exec: "${program}": permission denied: unknown`);
  if (err instanceof EngineError) return err;
  return new EngineError("internal", `${prefix}: ${msg}: unknown`);
}

/**
 * `docker top` as dockerd does it: the host's `ps` with the client's arguments (default `-ef`:
 * user names, start times, terminals), keeping the rows whose PID is the container's; a row
 * without a PID (a thread, with `m`) follows its process. The last column takes the rest of
 * the line.
 */
async function psTop(ps: string, psArgs: string, pids: Set<number>): Promise<{ Titles: string[]; Processes: string[][] }> {
  const p = Bun.spawn([ps, ...psArgs.split(/\s+/).filter(Boolean)], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new EngineError("internal", `Error running ps: exit status ${code}: ${err.trim()}`);
  const lines = out.split("\n");
  const titles = (lines[0] ?? "").trim().split(/\s+/);
  const pidIndex = titles.indexOf("PID");
  if (pidIndex < 0) throw new EngineError("internal", "Couldn't find PID field in ps output");
  const rows: string[][] = [];
  let inside = false;
  for (const line of lines.slice(1)) {
    if (!line.trim()) continue;
    const fields = line.trim().split(/\s+/);
    if (fields[pidIndex] === "-") {
      if (inside) rows.push([...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(" ")]);
      continue;
    }
    inside = pids.has(Number(fields[pidIndex]));
    if (inside) rows.push([...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(" ")]);
  }
  return { Titles: titles, Processes: rows };
}
