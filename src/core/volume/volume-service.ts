/**
 * Volumes with the `local` driver: a directory `<data-root>/volumes/<name>/_data` and its record
 * `<name>/volume.json` (written atomically). Named volumes are created on demand by a container
 * that names them; anonymous ones (an image's VOLUME, `-v /path`) get a random 64-hex name and go
 * with `rm -v`. A volume in use by a container cannot be removed. Any other driver name is a
 * Docker VolumeDriver plugin (JSON over HTTP on a Unix socket, docker-api.md §5.4): it creates,
 * mounts (answering with the path to bind), unmounts and removes the volume.
 */
import { ignored } from "../log.ts";
import { randomHex } from "../bytes.ts";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { fsyncDir, writeFileAtomic } from "../atomic-file.ts";
import { failpoint } from "../failpoints.ts";
import type { EventBus } from "../events/bus.ts";
import { conflict, invalidArgument, notFound } from "../errors.ts";
import { parseOrThrow } from "../validate.ts";
import { type DockerPluginClient, dockerPluginFinder } from "../plugin/docker-plugin.ts";

/** A volume as the API shows it. */
export interface Volume {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: "local";
  Options: Record<string, string>;
  /** Not in the API: true for anonymous volumes (removed with `rm -v`). */
  Anonymous?: boolean;
}

export const VolumeCreateSchema = v.looseObject({
  Name: v.nullish(v.string()),
  Driver: v.nullish(v.string()),
  DriverOpts: v.nullish(v.record(v.string(), v.string())),
  Labels: v.nullish(v.record(v.string(), v.string())),
});

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
/** Where removed volumes wait for their files to be deleted (a name no volume can have). */
const TRASH = ".trash";

/** The volume store and the local driver. */
export class VolumeService {
  /** Tells whether a container uses the volume (by name); set by the container manager. */
  inUse: (name: string) => string[] = () => [];

  private readonly findPlugin: (name: string) => Promise<DockerPluginClient | undefined>;

  constructor(
    private readonly root: string,
    private readonly events: EventBus,
    pluginOpts: { dirs?: string[]; retryFor?: number } = {},
  ) {
    mkdirSync(root, { recursive: true, mode: 0o701 });
    this.findPlugin = dockerPluginFinder("VolumeDriver", (_name, client) => client, pluginOpts);
    this.finishInterrupted();
  }

  /**
   * What a daemon killed mid-operation left: removals already moved out of sight (in `.trash`)
   * are finished, and a directory whose record was never written (a create cut short) goes.
   */
  private finishInterrupted(): void {
    rmSync(join(this.root, TRASH), { recursive: true, force: true });
    for (const n of readdirSync(this.root)) if (NAME.test(n) && !existsSync(this.file(n))) rmSync(join(this.root, n), { recursive: true, force: true });
  }

  /** The VolumeDriver plugin `name` (discovered like dockerd: sockets, .spec, .json), activated once. */
  /** Volume plugins used since the daemon started (their List is merged into `volume ls`). */
  private readonly usedDrivers = new Set<string>();

  private async plugin(name: string): Promise<DockerPluginClient> {
    const client = await this.findPlugin(name);
    if (client) this.usedDrivers.add(name);
    if (!client) throw notFound(`error looking up volume plugin ${name}: plugin "${name}" not found`);
    return client;
  }

  /**
   * The directory to mount for container `containerId` (a plugin's volume is mounted by the
   * plugin: VolumeDriver.Mount, answered with its path).
   */
  async mount(name: string, containerId: string): Promise<string> {
    const vol = this.get(name);
    if (vol.Driver === "local") return vol.Mountpoint;
    const r = await (await this.plugin(vol.Driver)).call("VolumeDriver.Mount", { Name: name, ID: containerId }, v.looseObject({ Mountpoint: v.string() }));
    return r.Mountpoint;
  }

  /** The container is done with the volume (VolumeDriver.Unmount for a plugin's). */
  async unmount(name: string, containerId: string): Promise<void> {
    let vol: Volume;
    try {
      vol = this.get(name);
    } catch {
      return;
    }
    if (vol.Driver === "local") return;
    await (await this.plugin(vol.Driver)).call("VolumeDriver.Unmount", { Name: name, ID: containerId }, v.looseObject({}));
  }

  private file(name: string): string {
    return join(this.root, name, "volume.json");
  }

  /** All volumes. */
  list(): Volume[] {
    return readdirSync(this.root)
      .filter((n) => existsSync(this.file(n)))
      .map((n) => this.get(n));
  }

  /**
   * `GET /volumes`: the records here, plus what each VolumeDriver plugin in use lists
   * (`VolumeDriver.List`: volumes made on the plugin's side show up too, as with dockerd).
   */
  async listAll(): Promise<Volume[]> {
    const mine = this.list();
    const known = new Set(mine.map((x) => x.Name));
    const drivers = new Set([...mine.map((x) => x.Driver), ...this.usedDrivers].filter((d) => d !== "local"));
    for (const d of drivers) {
      try {
        const r = await (await this.plugin(d)).call("VolumeDriver.List", {}, v.looseObject({ Volumes: v.nullish(v.array(v.looseObject({ Name: v.string(), Mountpoint: v.nullish(v.string()) }))) }));
        for (const pv of r.Volumes ?? []) {
          if (known.has(pv.Name)) continue;
          known.add(pv.Name);
          mine.push({ Name: pv.Name, Driver: d, Mountpoint: pv.Mountpoint ?? "", CreatedAt: "", Labels: {}, Scope: "local", Options: {} });
        }
      } catch (err) {
        ignored("a plugin that is gone lists nothing", err);
      }
    }
    return mine;
  }

  /** `GET /volumes/{name}`: a plugin's volume gets its Mountpoint and Status from `VolumeDriver.Get`. */
  async inspect(name: string): Promise<Volume & { Status?: Record<string, unknown> }> {
    const vol = this.get(name);
    if (vol.Driver === "local") return vol;
    try {
      const r = await (await this.plugin(vol.Driver)).call("VolumeDriver.Get", { Name: name }, v.looseObject({ Volume: v.looseObject({ Mountpoint: v.nullish(v.string()), Status: v.nullish(v.record(v.string(), v.unknown())) }) }));
      return { ...vol, Mountpoint: r.Volume.Mountpoint ?? vol.Mountpoint, ...(r.Volume.Status ? { Status: r.Volume.Status } : {}) };
    } catch {
      return vol;
    }
  }

  get(name: string): Volume {
    if (!NAME.test(name) || !existsSync(this.file(name))) throw notFound(`get ${name}: no such volume`);
    return JSON.parse(readFileSync(this.file(name), "utf8")) as Volume;
  }

  /** `POST /volumes/create` (an existing volume of the same name is returned as is). */
  async create(raw: unknown, opts: { anonymous?: boolean } = {}): Promise<Volume> {
    const body = parseOrThrow(VolumeCreateSchema, raw ?? {}, "volume config");
    const name = body.Name || randomHex(32);
    if (!NAME.test(name)) throw invalidArgument(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
    const driver = body.Driver || "local";
    if (existsSync(this.file(name))) return this.get(name);
    if (driver !== "local") {
      // A plugin's volume: the plugin creates it; the record here names the driver.
      await (await this.plugin(driver)).call("VolumeDriver.Create", { Name: name, Opts: body.DriverOpts ?? {} }, v.looseObject({}));
      mkdirSync(join(this.root, name), { mode: 0o700 });
      const vol: Volume = {
        Name: name,
        Driver: driver,
        Mountpoint: "",
        CreatedAt: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        Labels: body.Labels ?? {},
        Scope: "local",
        Options: body.DriverOpts ?? {},
        ...(opts.anonymous ? { Anonymous: true } : {}),
      };
      writeFileAtomic(this.file(name), JSON.stringify(vol), 0o600);
      this.events.publish({ Type: "volume", Action: "create", Actor: { ID: name, Attributes: { driver } } });
      return vol;
    }
    const opts2 = body.DriverOpts ?? {};
    for (const k of Object.keys(opts2)) if (!["type", "device", "o", "size"].includes(k)) throw invalidArgument(`create ${name}: invalid option: "${k}"`);
    if (opts2.type || opts2.device) throw invalidArgument(`create ${name}: local volumes with mount options (type, device, o) are not supported yet`);
    const mountpoint = join(this.root, name, "_data");
    failpoint(`volume directory ${name}`);
    mkdirSync(mountpoint, { recursive: true, mode: 0o755 });
    const vol: Volume = {
      Name: name,
      Driver: "local",
      Mountpoint: mountpoint,
      CreatedAt: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      Labels: body.Labels ?? {},
      Scope: "local",
      Options: opts2,
      ...(opts.anonymous ? { Anonymous: true } : {}),
    };
    writeFileAtomic(this.file(name), JSON.stringify(vol), 0o600);
    this.events.publish({ Type: "volume", Action: "create", Actor: { ID: name, Attributes: { driver: "local" } } });
    return vol;
  }

  /** `DELETE /volumes/{name}`. */
  async remove(name: string, force = false): Promise<void> {
    if (!existsSync(this.file(name))) {
      if (force) return;
      throw notFound(`get ${name}: no such volume`);
    }
    const users = this.inUse(name);
    if (users.length) throw conflict(`remove ${name}: volume is in use - [${users.join(", ")}]`);
    const vol = this.get(name);
    if (vol.Driver !== "local") await (await this.plugin(vol.Driver)).call("VolumeDriver.Remove", { Name: name }, v.looseObject({}));
    // One rename takes the whole volume out of the list (the removal's commit point); its files
    // are deleted after, and a daemon killed meanwhile finishes that at its next start.
    const trash = join(this.root, TRASH);
    mkdirSync(trash, { recursive: true, mode: 0o700 });
    const gone = join(trash, `${name}-${randomHex(4)}`);
    failpoint(`volume out of the list ${name}`);
    renameSync(join(this.root, name), gone);
    fsyncDir(this.root);
    failpoint(`volume files ${name}`);
    rmSync(gone, { recursive: true, force: true });
    this.events.publish({ Type: "volume", Action: "destroy", Actor: { ID: name, Attributes: { driver: "local" } } });
  }

  /** `POST /volumes/prune`: unused anonymous volumes (all unused with `all`). */
  async prune(all: boolean): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    const deleted: string[] = [];
    for (const vol of this.list()) {
      if ((!all && !vol.Anonymous) || this.inUse(vol.Name).length) continue;
      await this.remove(vol.Name);
      deleted.push(vol.Name);
    }
    return { VolumesDeleted: deleted, SpaceReclaimed: 0 };
  }
}
