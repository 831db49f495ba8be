/**
 * Volumes with the `local` driver: a directory `<data-root>/volumes/<name>/_data` and its record
 * `<name>/volume.json` (written atomically). Named volumes are created on demand by a container
 * that names them; anonymous ones (an image's VOLUME, `-v /path`) get a random 64-hex name and go
 * with `rm -v`. A volume in use by a container cannot be removed.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { writeFileAtomic } from "../atomic-file.ts";
import type { EventBus } from "../daemon/events.ts";
import { conflict, invalidArgument, notFound } from "../errors.ts";
import { parseOrThrow } from "../validate.ts";

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

/** The volume store and the local driver. */
export class VolumeService {
  /** Tells whether a container uses the volume (by name); set by the container manager. */
  inUse: (name: string) => string[] = () => [];

  constructor(
    private readonly root: string,
    private readonly events: EventBus,
  ) {
    mkdirSync(root, { recursive: true, mode: 0o701 });
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

  get(name: string): Volume {
    if (!NAME.test(name) || !existsSync(this.file(name))) throw notFound(`get ${name}: no such volume`);
    return JSON.parse(readFileSync(this.file(name), "utf8")) as Volume;
  }

  /** `POST /volumes/create` (an existing volume of the same name is returned as is). */
  create(raw: unknown, opts: { anonymous?: boolean } = {}): Volume {
    const body = parseOrThrow(VolumeCreateSchema, raw ?? {}, "volume config");
    const name = body.Name || randomHex(32);
    if (!NAME.test(name)) throw invalidArgument(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
    const driver = body.Driver || "local";
    if (driver !== "local") throw notFound(`create ${name}: error looking up volume plugin ${driver}: plugin "${driver}" not found`);
    if (existsSync(this.file(name))) return this.get(name);
    const opts2 = body.DriverOpts ?? {};
    for (const k of Object.keys(opts2)) if (!["type", "device", "o", "size"].includes(k)) throw invalidArgument(`create ${name}: invalid option: "${k}"`);
    if (opts2.type || opts2.device) throw invalidArgument(`create ${name}: local volumes with mount options (type, device, o) are not supported yet`);
    const mountpoint = join(this.root, name, "_data");
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
  remove(name: string, force = false): void {
    if (!existsSync(this.file(name))) {
      if (force) return;
      throw notFound(`get ${name}: no such volume`);
    }
    const users = this.inUse(name);
    if (users.length) throw conflict(`remove ${name}: volume is in use - [${users.join(", ")}]`);
    rmSync(join(this.root, name), { recursive: true, force: true });
    this.events.publish({ Type: "volume", Action: "destroy", Actor: { ID: name, Attributes: { driver: "local" } } });
  }

  /** `POST /volumes/prune`: unused anonymous volumes (all unused with `all`). */
  prune(all: boolean): { VolumesDeleted: string[]; SpaceReclaimed: number } {
    const deleted: string[] = [];
    for (const vol of this.list()) {
      if ((!all && !vol.Anonymous) || this.inUse(vol.Name).length) continue;
      this.remove(vol.Name);
      deleted.push(vol.Name);
    }
    return { VolumesDeleted: deleted, SpaceReclaimed: 0 };
  }
}

function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))].map((x) => x.toString(16).padStart(2, "0")).join("");
}
