/**
 * `POST /containers/create`: the request checked and merged with the image's config, the
 * writable layer prepared, volumes created, the record saved and a `create` event sent.
 */
import { mkdirSync, rmdirSync } from "node:fs";
import { join, posix } from "node:path";
import { randomHex } from "../bytes.ts";
import { invalidArgument, notFound } from "../errors.ts";
import { splitLink } from "../network/network-service.ts";
import { foldKeys, parseOrThrow } from "../validate.ts";
import { compareApiVersions } from "../version.ts";
import { type ContainerRecord, createdState } from "./container-store.ts";
import { type ContainerContext, DEFAULT_PATH, now } from "./context.ts";
import { type CreateBody, CreateBodySchema, type HostConfig, HostConfigSchema } from "./create-config.ts";
import { mergeEnv } from "./env.ts";
import { validateHostConfig } from "./host-config-rules.ts";
import { containerMounts } from "./mounts.ts";
import { randomName } from "./names.ts";
import { DEFAULT_MASKED, DEFAULT_READONLY } from "./oci-spec.ts";

/** The request body, with Go's case-insensitive field names folded and its schema checked. */
function parseBody(raw: unknown): CreateBody {
  // Field names match case-insensitively, as Go's JSON decoding does (docker-py sends CPURealtimePeriod).
  const folded = foldKeys(raw ?? {}, CreateBodySchema.entries) as Record<string, unknown>;
  if (folded.HostConfig) folded.HostConfig = foldKeys(folded.HostConfig, HostConfigSchema.entries);
  return parseOrThrow(CreateBodySchema, folded, "container config") as CreateBody;
}

/** Every rule of the request that needs no image: moby's `verifyContainerSettings` and friends. */
function checkRequest(ctx: ContainerContext, body: CreateBody, h: HostConfig, apiVersion: string): void {
  validateHostConfig(h, { cgroupDriver: ctx.deps.cgroupDriver });
  if (body.WorkingDir && !body.WorkingDir.startsWith("/")) throw invalidArgument(`the working directory '${body.WorkingDir}' is invalid, it needs to be an absolute path`);
  if (body.WorkingDir) body.WorkingDir = posix.normalize(body.WorkingDir).replace(/(.)\/+$/, "$1"); // "/tmp/" → "/tmp", as filepath.Clean
  // Namespaces of another container: it must exist now (it must run at start).
  for (const mode of [h.PidMode, h.IpcMode, h.NetworkMode]) {
    if (!mode?.startsWith("container:")) continue;
    try {
      ctx.store.get(mode.slice("container:".length));
    } catch {
      throw invalidArgument(`No such container: ${mode.slice("container:".length)}`);
    }
  }
  for (const e of body.Env ?? []) if (e === "" || e.startsWith("=")) throw invalidArgument(`invalid environment variable: ${e}`);
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
      ctx.store.get(target);
    } catch {
      throw invalidArgument(`could not get container for ${target}`);
    }
  }
}

/** A platform that the image is not for: not found (moby's words), whatever its spelling. */
function checkPlatform(image: string, platform: string, cfg: { os: string; architecture: string; variant?: string | undefined }): void {
  const [os = "", arch = "", variant] = platform.toLowerCase().split("/");
  const have = `${cfg.os}/${cfg.architecture}${cfg.variant ? `/${cfg.variant}` : ""}`;
  if ((os && os !== cfg.os) || (arch && arch !== cfg.architecture) || (variant && cfg.variant && variant !== cfg.variant)) {
    throw notFound(`image with reference ${image} was found but does not match the specified platform: wanted ${platform}, actual: ${have}`);
  }
}

/** `POST /containers/create`. */
export async function createContainer(ctx: ContainerContext, raw: unknown, name?: string, platform?: string, apiVersion = "1.51", opts: { transient?: boolean } = {}): Promise<{ Id: string; Warnings: string[] }> {
  const body = parseBody(raw);
  if (!body.Image) throw invalidArgument("config cannot be empty in order to create a container");
  const fullName = name ? ctx.store.checkName(name) : uniqueName(ctx);
  const h = body.HostConfig ?? {};
  checkRequest(ctx, body, h, apiVersion);
  const images = await ctx.deps.images();
  await images.provideBuiltin(body.Image);
  const img = images.image(body.Image);
  if (platform) checkPlatform(body.Image, platform, img.config);
  const ic = img.config.config ?? {};
  const entrypoint = body.Entrypoint != null ? body.Entrypoint.filter((x, i, a) => !(a.length === 1 && x === "")) : (ic.Entrypoint ?? []);
  const cmd = body.Cmd != null && body.Cmd.length ? body.Cmd : body.Entrypoint != null ? [] : (ic.Cmd ?? []);
  const args = [...entrypoint, ...cmd];
  if (!args.length) throw invalidArgument("No command specified");
  const mounts = containerMounts(body, h, (ic.Volumes as Record<string, unknown>) ?? {}, (other) => {
    try {
      return ctx.store.get(other).MountPoints ?? [];
    } catch {
      throw invalidArgument(`No such container: ${other}`);
    }
  });
  const id = randomHex(32);
  const dir = ctx.store.dir(id);
  mkdirSync(dir, { recursive: true, mode: 0o710 });
  const layers = images.layers;
  const rwKey = `container-${id}`;
  try {
    await layers.prepareWritable(rwKey, img.chainIds.at(-1));
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
  const netMode = networkModeOf(ctx, h.NetworkMode);
  const networking = ctx.deps.networks.initialNetworking(netMode, body.NetworkingConfig?.EndpointsConfig ?? {});
  // The container-level MacAddress (deprecated, still sent by docker-py and older CLIs) is the
  // primary network's, unless that endpoint asks for its own.
  const primary = Object.values(networking.Networks)[0];
  if (body.MacAddress && primary && !primary.RequestedMac) {
    if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(body.MacAddress)) throw invalidArgument(`invalid MAC address: ${body.MacAddress}`);
    primary.RequestedMac = body.MacAddress.toLowerCase();
    primary.MacAddress = body.MacAddress;
  }
  // The port bindings, parsed once here (bad ones fail the create); the start publishes these.
  const publishedPorts = ctx.deps.networks.portsOf({ Id: "", Name: "", Config: { ExposedPorts: { ...((ic.ExposedPorts as Record<string, unknown>) ?? {}), ...(body.ExposedPorts ?? {}) } }, HostConfig: h, State: { Running: false, Pid: 0 } });
  delete (config as Record<string, unknown>).HostConfig;
  delete (config as Record<string, unknown>).NetworkingConfig;
  const links = (h.Links ?? []) as string[];
  const rec: ContainerRecord = {
    Id: id,
    Name: fullName,
    Created: now(),
    Path: args[0]!,
    Args: args.slice(1),
    Image: img.id,
    ImageName: body.Image,
    Config: config,
    HostConfig: {
      ...h,
      ...(links.length
        ? {
            Links: links.map((l) => {
              const [t, a] = splitLink(l);
              return `/${t}:${fullName}/${a}`;
            }),
          }
        : {}),
      NetworkMode: netMode,
      LogConfig: logConfigOf(ctx, h),
    },
    State: createdState(),
    RestartCount: 0,
    Driver: layers.driverName,
    LogPath: join(dir, `${id}-json.log`),
    ResolvConfPath: join(dir, "resolv.conf"),
    HostnamePath: join(dir, "hostname"),
    HostsPath: join(dir, "hosts"),
    RwLayer: rwKey,
    NetworkSettings: networking,
    PublishedPorts: publishedPorts,
    ...(opts.transient ? { Transient: true } : {}),
  };
  if (!["json-file", "none", "local"].includes(rec.HostConfig.LogConfig!.Type!)) {
    await layers.removeWritable(rwKey, ctx.rootfsOf(rec));
    ctx.store.delete(id);
    throw invalidArgument(`error looking up logging plugin ${rec.HostConfig.LogConfig!.Type}: plugin "${rec.HostConfig.LogConfig!.Type}" not found`);
  }
  // Volumes: named ones are created when missing, anonymous ones get a fresh name.
  for (const m of mounts) {
    if (m.Type !== "volume") continue;
    const driver = m.Driver && m.Driver !== "local" ? m.Driver : h.VolumeDriver || "local";
    const vol = await ctx.deps.volumes.create({ ...(m.Name ? { Name: m.Name } : {}), Driver: driver }, { anonymous: !!m.Anonymous });
    m.Name = vol.Name;
    m.Driver = vol.Driver;
    m.Source = vol.Mountpoint;
  }
  rec.MountPoints = mounts;
  ctx.store.save(rec);
  ctx.publish(rec, "create");
  return { Id: id, Warnings: [] };
}

/** The log config: the request's driver, else the daemon's default with the request's options over its own. */
function logConfigOf(ctx: ContainerContext, h: HostConfig): { Type: string; Config: Record<string, string> } {
  if (h.LogConfig?.Type) return { Type: h.LogConfig.Type, Config: h.LogConfig.Config ?? {} };
  return { Type: ctx.deps.defaultLog?.Type ?? "json-file", Config: { ...(ctx.deps.defaultLog?.Config ?? {}), ...(h.LogConfig?.Config ?? {}) } };
}

/** The network mode a request asks for: Docker's "default" is the bridge network when there is one. */
function networkModeOf(ctx: ContainerContext, mode: string | null | undefined): string {
  if (!mode || mode === "default") return ctx.deps.networks.find("bridge") ? "bridge" : "none";
  if (mode.startsWith("container:")) {
    const other = ctx.store.get(mode.slice("container:".length));
    return `container:${other.Id}`;
  }
  return mode;
}

/** A random name (adjective_scientist) no container has. */
function uniqueName(ctx: ContainerContext): string {
  for (;;) {
    const n = `/${randomName()}`;
    if (!ctx.store.all().some((c) => c.Name === n)) return n;
  }
}
