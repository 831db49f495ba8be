/**
 * Daemon lifecycle: data root and lock, plugins, API listeners, pidfile; shutdown in reverse.
 * Every step that succeeded is undone when a later one fails, so a failed start leaves nothing
 * behind (no socket, no pidfile, no lock).
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../atomic-file.ts";
import { createApiHandler } from "../api/api-handler.ts";
import { Filters } from "../filters.ts";
import { renderError } from "../api/error-status.ts";
import { listen, type Listener, type ListenSpec } from "../api/http/server.ts";
import { Router } from "../api/router.ts";
import { containerRoutes } from "../api/routes/containers.ts";
import { imageRoutes } from "../api/routes/images.ts";
import type { ContainerService } from "../container/container-service.ts";
import type { ContainerRuntime } from "../runtime/types.ts";
import { buildRoutes } from "../api/routes/build.ts";
import { buildkitRoutes } from "../api/routes/buildkit.ts";
import { makeBuildkitService } from "./buildkit-factory.ts";
import { diskUsageParts } from "./disk-usage.ts";
import { networkRoutes } from "../api/routes/networks.ts";
import type { VolumeService } from "../volume/volume-service.ts";
import type { CacheMounts } from "../build/cache-mounts.ts";
import { volumeRoutes } from "../api/routes/volumes.ts";
import { pluginRoutes } from "../api/routes/plugins.ts";
import { swarmRoutes } from "../api/routes/swarm.ts";
import { systemRoutes } from "../api/routes/system.ts";
import { countImages } from "../image/image-count.ts";
import type { ImageService } from "../image/image-service.ts";
import { EngineError, messageOf } from "../errors.ts";
import { ignored, type Logger, setProcessLogger } from "../log.ts";
import { PluginSet, type SourcedRegistration } from "../plugin/plugin-set.ts";
import type { AnyRegistration } from "../plugin/types.ts";
import type { StorageDriver } from "../storage/driver.ts";
import { canonicalDriverName, driverHasData, selectDriver } from "../storage/select.ts";
import type { Sys } from "../sys/sys.ts";
import { VERSION } from "../version.ts";
import type { DaemonConfig } from "./config.ts";
import { EventBus } from "../events/bus.ts";
import { Journal } from "../journal/journal.ts";
import { type DataRootLock, lockDataRoot } from "./lock.ts";
import { SystemService } from "../system/system-service.ts";

/** What the composition root hands the daemon. */
export interface DaemonDeps {
  builtins: readonly AnyRegistration[];
  log: Logger;
  sys: Sys;
}

/** A running daemon. */
export class Daemon {
  readonly events = new EventBus();
  private listeners: Listener[] = [];
  private lock: DataRootLock | undefined;
  /** The data root's intent journal (core/journal): operations record what they are about to do. */
  private journal: Journal | undefined;
  private stopping: Promise<void> | undefined;
  private undo: (() => void | Promise<void>)[] = [];
  engineId = "";
  private imagesLoading: Promise<ImageService> | undefined;
  private imagesLoaded: ImageService | undefined;
  private plugins: PluginSet | undefined;
  /** The selected storage driver (undefined only when no storage plugin is registered). */
  storage: StorageDriver | undefined;
  system: SystemService | undefined;

  private constructor(
    readonly config: DaemonConfig,
    private readonly deps: DaemonDeps,
  ) {}

  /** Start a daemon; on failure everything already set up is torn down and the error rethrown. */
  static async start(config: DaemonConfig, deps: DaemonDeps): Promise<Daemon> {
    const d = new Daemon(config, deps);
    try {
      await d.setUp();
    } catch (err) {
      await d.tearDown();
      throw err;
    }
    return d;
  }

  /** Listen addresses actually bound (with real TCP ports). */
  get addresses(): string[] {
    return this.listeners.map((l) => l.address);
  }

  private async setUp(): Promise<void> {
    const { config, deps } = this;
    const log = deps.log;
    setProcessLogger(log);
    for (const dir of [config.dataRoot, config.execRoot]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o700);
    }
    this.lock = lockDataRoot(deps.sys, config.dataRoot);
    this.undo.push(() => this.lock?.release());
    this.journal = new Journal(join(config.dataRoot, "journal"), log);
    this.engineId = engineId(config.dataRoot);

    const registrations: SourcedRegistration[] = deps.builtins.map((reg) => ({ reg, source: "builtin" }));
    if (config.pluginsDir) {
      // Loaded only when configured: the loader hands modules the whole valibot namespace.
      const { loadPluginModules } = await import("../plugin/loader.ts");
      registrations.push(...(await loadPluginModules(config.pluginsDir)));
    }
    const plugins = new PluginSet({
      registrations,
      dataRoot: config.dataRoot,
      execRoot: config.execRoot,
      configs: config.plugins,
      required: config.requiredPlugins,
      log,
      sys: deps.sys,
    });
    this.undo.push(() => plugins.closeAll());
    await plugins.initAll();
    this.plugins = plugins;
    this.wireEventSinks(plugins);

    this.storage = await this.chooseStorage(plugins);
    if (this.storage) await this.sweep(this.storage);
    this.system = new SystemService({ config, engineId: this.engineId, plugins, events: this.events });
    const storage = this.storage;
    if (storage) this.system.contribute(() => ({ Driver: storage.name, DriverStatus: storage.status() }));
    const router = new Router().add(...systemRoutes({ system: this.system, events: this.events }), ...swarmRoutes(), ...pluginRoutes());
    if (storage) {
      // The image subsystem loads on first use: an idle daemon does not carry its modules
      // (measured: about 4 MB of resident memory).
      const dataRoot = config.dataRoot;
      this.system.contribute(() => ({ Images: this.imagesLoaded?.count() ?? countImages(join(dataRoot, "image")) }));
      const runtime = [...plugins.instances("runtime.v1").values()][0];
      router.add(
        ...imageRoutes(
          () => this.imageService(storage),
          () => this.diskUsage(storage, runtime),
        ),
      );
      router.add(...volumeRoutes(() => this.volumeService()));
      if (runtime) {
        const containers = () => this.containerService(storage, runtime);
        router.add(...containerRoutes(containers));
        router.add(...networkRoutes(containers));
        const builds = async () => {
          const { BuildService } = await import("../build/build-service.ts");
          return new BuildService({
            images: () => this.imageService(storage),
            containers,
            sys: () => this.deps.sys,
            tmpRoot: join(config.dataRoot, "tmp"),
            cacheFile: join(config.dataRoot, "build", "cache.json"),
            cacheMounts: await this.cacheMounts(),
          });
        };
        const sharedBuilds = once(builds);
        router.add(...buildRoutes(sharedBuilds));
        router.add(...buildkitRoutes(once(() => makeBuildkitService(() => this.imageService(storage), sharedBuilds))));
        this.system.contribute(() => this.containersLoaded?.counts() ?? {});
        // Containers that ran when the daemon stopped are re-attached now, not on first use.
        if (existsSync(join(config.dataRoot, "containers")) && readdirSync(join(config.dataRoot, "containers")).length) {
          await (await containers()).restore();
        }
      }
    }
    if (config.registryAddr) {
      // The built-in registry for offline sites: the same server as `bunker registry serve`.
      const { startRegistryServer } = await import("../registry/server.ts");
      const registry = await startRegistryServer({ root: join(config.dataRoot, "registry"), addr: config.registryAddr, log: log.with({ component: "registry" }) });
      this.undo.push(() => registry.stop());
      log.info("registry listening", { url: registry.url });
    }
    const handler = createApiHandler(router, log);
    const gid = groupId(config.group);
    const tls = config.tls ? tlsFiles(config) : undefined;
    for (const host of config.hosts) {
      const spec: ListenSpec = host.kind === "unix" ? { kind: "unix", path: host.path, mode: 0o660, ...(gid !== undefined ? { gid } : {}) } : { kind: "tcp", host: host.host, port: host.port, ...(tls ? { tls } : {}) };
      const l = await listen(spec, handler, renderError);
      this.listeners.push(l);
      log.info("API listen on " + l.address.replace(/^unix:\/\//, ""));
    }
    this.undo.push(() => {
      for (const l of this.listeners.splice(0)) l.close();
    });

    writeFileAtomic(config.pidfile, `${process.pid}\n`);
    this.undo.push(() => rmQuiet(config.pidfile));
    log.info("Daemon has completed initialization", { version: VERSION, "data-root": config.dataRoot });
  }

  /**
   * What a daemon killed mid-operation left and no record owns (store-gc.ts), removed before
   * anything is served. Skipped (and its modules not loaded) when the driver holds nothing.
   */
  private async sweep(storage: StorageDriver): Promise<void> {
    const dataRoot = this.config.dataRoot;
    if (storage.list().length === 0 && !existsSync(join(dataRoot, "tmp"))) return;
    const [{ sweepDataRoot }, { ContentStore }, { ImageStore }] = await Promise.all([import("./store-gc.ts"), import("../content/content-store.ts"), import("../image/image-store.ts")]);
    const content = new ContentStore(join(dataRoot, "content"));
    try {
      await sweepDataRoot({ sys: this.deps.sys, dataRoot, driver: storage, images: new ImageStore(join(dataRoot, "image"), content), content, log: this.deps.log });
    } catch (err) {
      // Leftovers stay (and are tried again at the next start); the daemon still serves.
      this.deps.log.warn("start-up sweep of interrupted operations failed", { error: messageOf(err) });
    }
  }

  /** The image service, created (and its modules loaded) on first use. */
  imageService(storage: StorageDriver): Promise<ImageService> {
    this.imagesLoading ??= (async () => {
      const [{ ContentStore }, { ImageService }, { ImageStore }, { LayerStore }, { TokenCache }] = await Promise.all([
        import("../content/content-store.ts"),
        import("../image/image-service.ts"),
        import("../image/image-store.ts"),
        import("../storage/layer-store.ts"),
        import("../registry/auth.ts"),
      ]);
      const content = new ContentStore(join(this.config.dataRoot, "content"));
      content.cleanIngests(24 * 3600 * 1000); // interrupted downloads older than a day
      const service = new ImageService({
        sys: this.deps.sys,
        content,
        images: new ImageStore(join(this.config.dataRoot, "image"), content),
        layers: new LayerStore(this.deps.sys, storage, join(this.config.dataRoot, "tmp")),
        events: this.events,
        tmpRoot: join(this.config.dataRoot, "tmp"),
        registry: {
          insecure: this.config.insecureRegistries,
          mirrors: this.config.registryMirrors,
          certsDir: this.config.registryCertsDir,
          tokens: new TokenCache(),
          stallMs: this.config.registryStallMs,
          attempts: 5,
        },
        log: this.deps.log,
      });
      this.imagesLoaded = service;
      return service;
    })();
    return this.imagesLoading;
  }

  /** The containers', volumes' and cache mounts' parts of `GET /system/df`. */
  private async diskUsage(storage: StorageDriver, runtime: ContainerRuntime | undefined) {
    const containers = runtime ? await this.containerService(storage, runtime) : undefined;
    return diskUsageParts(containers, await this.volumeService(), await this.cacheMounts());
  }

  private cacheMountsLoading: Promise<CacheMounts> | undefined;

  /** The builder's cache-mount directories (one set per daemon, shared by every build). */
  cacheMounts(): Promise<CacheMounts> {
    this.cacheMountsLoading ??= import("../build/cache-mounts.ts").then(({ CacheMounts }) => new CacheMounts(join(this.config.dataRoot, "build", "cache-mounts")));
    return this.cacheMountsLoading;
  }

  private volumesLoading: Promise<VolumeService> | undefined;

  /** The volume store, created on first use. */
  volumeService(): Promise<VolumeService> {
    this.volumesLoading ??= import("../volume/volume-service.ts").then(
      ({ VolumeService }) =>
        new VolumeService(join(this.config.dataRoot, "volumes"), this.events, {
          ...(this.config.dockerPluginDirs ? { dirs: this.config.dockerPluginDirs } : {}),
          retryFor: this.config.dockerPluginTimeout * 1000,
        }),
    );
    return this.volumesLoading;
  }

  private containersLoading: Promise<ContainerService> | undefined;
  private containersLoaded: ContainerService | undefined;

  /** The container manager, created on first use (or at start when containers exist). */
  containerService(storage: StorageDriver, runtime: ContainerRuntime): Promise<ContainerService> {
    this.containersLoading ??= (async () => {
      const [{ ContainerService }, { ContainerStore }] = await Promise.all([import("../container/container-service.ts"), import("../container/container-store.ts")]);
      const [{ NetworkService }, { remoteNetworkDrivers }, { remoteIpamDrivers }] = await Promise.all([import("../network/network-service.ts"), import("../network/remote-driver.ts"), import("../network/remote-ipam.ts")]);
      const pluginOpts = { ...(this.config.dockerPluginDirs ? { dirs: this.config.dockerPluginDirs } : {}), retryFor: this.config.dockerPluginTimeout * 1000 };
      const store = new ContainerStore(join(this.config.dataRoot, "containers"));
      const networks = new NetworkService(join(this.config.dataRoot, "network"), {
        sys: this.deps.sys,
        log: this.deps.log,
        events: this.events,
        drivers: this.plugins?.instances("network.v1") ?? new Map(),
        containers: () => store.all(),
        remoteDriver: remoteNetworkDrivers(this.deps.sys, this.deps.log, pluginOpts),
        remoteIpam: remoteIpamDrivers(pluginOpts),
        defaultBridge: this.config.bridge === "none" ? null : (this.config.bridge ?? "bunker0"),
        ...(this.journal ? { journal: this.journal } : {}),
        ...(this.config.ipv6 ? { defaultBridgeIPv6: this.config.fixedCidrV6 ?? "" } : {}),
        ...(this.config.dns ? { dnsUpstream: this.config.dns } : {}),
        ...(this.config.addressPools ? { addressPools: this.config.addressPools } : {}),
        ...(this.config.bip ? { defaultBridgeCidr: this.config.bip } : {}),
      });
      await networks.init();
      this.undo.push(() => networks.close());
      const svc = new ContainerService({
        sys: this.deps.sys,
        networks,
        store,
        images: () => this.imageService(storage),
        volumes: await this.volumeService(),
        runtime,
        events: this.events,
        log: this.deps.log,
        defaultLog: this.config.logDriver,
        cgroupDriver: this.config.cgroupDriver,
        ...(this.journal ? { journal: this.journal } : {}),
      });
      // Docker's image-in-use rules: rmi and prune ask which containers use an image.
      (await this.imageService(storage)).containerUsers = (id) =>
        store
          .all()
          .filter((c) => c.Image === id)
          .map((c) => ({ id: c.Id, running: c.State.Running || c.State.Restarting }));
      this.containersLoaded = svc;
      return svc;
    })();
    return this.containersLoading;
  }

  /**
   * Pick the storage driver among those that loaded (moby's rules, see core/storage/select.ts).
   * A configured name that no built-in or module plugin registers is looked up as a Docker
   * GraphDriver plugin (a Unix socket or spec file in the discovery directories), as dockerd did.
   */
  private async chooseStorage(plugins: PluginSet): Promise<StorageDriver | undefined> {
    const available = plugins.instances("storage.v1");
    const statuses = plugins.statuses().filter((s) => s.type === "storage.v1");
    const unavailable = new Map(statuses.filter((s) => s.status !== "ok").map((s) => [s.id, s.reason ?? s.status]));
    const configured = this.config.storageDriver && canonicalDriverName(this.config.storageDriver);
    if (available.size === 0 && !configured) return undefined;
    if (configured && !statuses.some((s) => s.id === configured)) {
      const { connectGraphDriverPlugin } = await import("../plugin/graphdriver-proxy.ts");
      const proxy = await connectGraphDriverPlugin(configured, join(this.config.dataRoot, `storage.plugin.${configured}`), {
        ...(this.config.dockerPluginDirs ? { dirs: this.config.dockerPluginDirs } : {}),
        retryFor: this.config.dockerPluginTimeout * 1000,
      }).catch((err) => {
        throw new EngineError("failed-precondition", `storage driver ${configured} is not available: ${messageOf(err)}`);
      });
      this.undo.push(() => proxy.close?.());
      this.deps.log.info("storage driver selected", { driver: configured, plugin: "GraphDriver" });
      return proxy;
    }
    const driver = selectDriver(available, {
      ...(configured ? { configured } : {}),
      hasData: (id) => driverHasData(join(this.config.dataRoot, `storage.v1.${id}`)),
      unavailable,
    });
    this.deps.log.info("storage driver selected", { driver: driver.name });
    return driver;
  }

  /** Forward every event to `events.v1` plugins; a failing sink is logged, never fatal. */
  private wireEventSinks(plugins: PluginSet): void {
    const sinks = plugins.instances("events.v1");
    if (sinks.size === 0) return;
    const all = this.events.subscribe(new Filters(), (e) => {
      for (const [id, sink] of sinks) {
        Promise.resolve()
          .then(() => sink.onEvent(e))
          .catch((err) => this.deps.log.error("event sink failed", { plugin: `events.v1.${id}`, error: messageOf(err) }));
      }
    });
    this.undo.push(() => all.close());
  }

  /** SIGHUP: emit a `daemon reload` event as dockerd does (config reload comes with later options). */
  reload(): void {
    this.events.publish({
      Type: "daemon",
      Action: "reload",
      Actor: { ID: this.engineId, Attributes: { name: this.system?.info().Name as string } },
    });
    this.deps.log.info("Reloaded configuration");
  }

  /** Stop listeners, close plugins in reverse order, remove pidfile and release the lock. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.deps.log.info("Processing signal, shutting down");
      await this.tearDown();
      this.deps.log.info("Daemon shutdown complete");
    })();
    return this.stopping;
  }

  private async tearDown(): Promise<void> {
    for (const step of this.undo.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        this.deps.log.error("shutdown step failed", { error: messageOf(err) });
      }
    }
  }
}

/** The engine's persistent ID, created on first start (as dockerd's engine-id). */
export function engineId(dataRoot: string): string {
  const path = join(dataRoot, "engine-id");
  if (existsSync(path)) {
    const id = readFileSync(path, "utf8").trim();
    if (id) return id;
  }
  const id = randomUuid();
  writeFileAtomic(path, id + "\n");
  return id;
}

/**
 * A version-4 UUID from /dev/urandom. (crypto.randomUUID would do, but it pulls the TLS library's
 * code into the idle daemon's resident memory: about 1 MB measured.)
 */
export function randomUuid(): string {
  const b = new Uint8Array(16);
  const fd = openSync("/dev/urandom", "r");
  try {
    readSync(fd, b, 0, 16, null);
  } finally {
    closeSync(fd);
  }
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function rmQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    ignored("gone", err);
  }
}

/** gid of `name` from /etc/group, or undefined when there is no such group. */
export function groupId(name: string, groupFile = "/etc/group"): number | undefined {
  try {
    for (const line of readFileSync(groupFile, "utf8").split("\n")) {
      const [n, , gid] = line.split(":");
      if (n === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
    }
  } catch (err) {
    ignored("no group database", err);
  }
  return undefined;
}

function tlsFiles(config: DaemonConfig): { ca?: string; cert: string; key: string; verifyClient: boolean } {
  const read = (what: string, p?: string) => {
    if (!p) throw new EngineError("invalid-argument", `TLS is enabled but --${what} is not set`);
    try {
      return readFileSync(p, "utf8");
    } catch (err) {
      throw new EngineError("invalid-argument", `cannot read --${what} ${p}: ${messageOf(err)}`);
    }
  };
  return {
    cert: read("tlscert", config.tlsCert),
    key: read("tlskey", config.tlsKey),
    ...(config.tlsCaCert ? { ca: read("tlscacert", config.tlsCaCert) } : {}),
    verifyClient: config.tlsVerify,
  };
}

/** `make` called once; later calls share its promise. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= make());
}
