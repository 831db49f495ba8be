/**
 * Containers on disk: `<data-root>/containers/<id>/config.v2.json` per container (rewritten
 * atomically on every change, so a crash leaves the old or the new record), loaded at start.
 * Lookup by full ID, unique ID prefix or name, with Docker's messages.
 */
import { ignored } from "../log.ts";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../atomic-file.ts";
import { conflict, EngineError, invalidArgument, notFound } from "../errors.ts";
import type { ContainerConfig, HostConfig } from "./create-config.ts";
import type { MountPoint } from "./mounts.ts";
import type { ContainerNetworking } from "../network/network-service.ts";
import type { PortBinding } from "../network/types.ts";

/** Docker's State.Health. */
export interface HealthState {
  Status: "starting" | "healthy" | "unhealthy";
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[];
}

/** Docker's State object. */
export interface ContainerStateRecord {
  Status: "created" | "running" | "paused" | "restarting" | "removing" | "exited" | "dead";
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  Health?: HealthState;
}

/** What is kept per container. */
export interface ContainerRecord {
  Id: string;
  /** "/name". */
  Name: string;
  Created: string;
  Path: string;
  Args: string[];
  /** The image's ID (sha256:…). */
  Image: string;
  /** The image as the client named it. */
  ImageName: string;
  Config: ContainerConfig;
  HostConfig: HostConfig;
  State: ContainerStateRecord;
  RestartCount: number;
  Driver: string;
  LogPath: string;
  ResolvConfPath: string;
  HostnamePath: string;
  HostsPath: string;
  /** Snapshot key of the writable layer. */
  RwLayer: string;
  /** Its mounts (binds, volumes, tmpfs). */
  MountPoints?: MountPoint[];
  /** Its networks and published ports (see core/network). */
  NetworkSettings?: ContainerNetworking;
  /** The published ports, parsed once at create from PortBindings (and ExposedPorts with -P). */
  PublishedPorts?: PortBinding[];
  /** True once the user stopped it (for `unless-stopped`). */
  ManuallyStopped?: boolean;
  /** A build step's container: never outlives its step, so a daemon start removes any left. */
  Transient?: boolean;
}

export const ZERO_TIME = "0001-01-01T00:00:00Z";

/** A fresh State for a created container. */
export function createdState(): ContainerStateRecord {
  return { Status: "created", Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: "", StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME };
}

const NAME = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** The container records, by ID. */
export class ContainerStore {
  private readonly byId = new Map<string, ContainerRecord>();
  /** Bumped on every save and delete: views derived from the records can be cached by it. */
  revision = 0;

  constructor(readonly root: string) {
    mkdirSync(root, { recursive: true, mode: 0o710 });
    for (const id of readdirSync(root)) {
      const file = join(root, id, "config.v2.json");
      if (!/^[0-9a-f]{64}$/.test(id) || !existsSync(file)) continue;
      try {
        this.byId.set(id, JSON.parse(readFileSync(file, "utf8")) as ContainerRecord);
      } catch (err) {
        ignored("unreadable: left on disk for inspection, not served", err);
      }
    }
  }

  /** The container's directory. */
  dir(id: string): string {
    return join(this.root, id);
  }

  all(): ContainerRecord[] {
    return [...this.byId.values()];
  }

  /** Check a requested name (without or with the leading slash); returns "/name". */
  checkName(name: string, exceptId?: string): string {
    if (!NAME.test(name)) throw invalidArgument(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const full = name.startsWith("/") ? name : `/${name}`;
    for (const c of this.byId.values()) {
      if (c.Name === full && c.Id !== exceptId) {
        throw conflict(`Conflict. The container name "${full}" is already in use by container "${c.Id}". You have to remove (or rename) that container to be able to reuse that name.`);
      }
    }
    return full;
  }

  /** By full ID, name, or unique ID prefix (Docker's order). */
  get(ref: string): ContainerRecord {
    if (!ref) throw invalidArgument("container name or ID is empty");
    const exact = this.byId.get(ref);
    if (exact) return exact;
    const byName = [...this.byId.values()].find((c) => c.Name === (ref.startsWith("/") ? ref : `/${ref}`));
    if (byName) return byName;
    if (/^[0-9a-f]+$/.test(ref)) {
      const hits = [...this.byId.values()].filter((c) => c.Id.startsWith(ref));
      if (hits.length === 1) return hits[0]!;
      if (hits.length > 1) throw new EngineError("invalid-argument", `multiple IDs found with provided prefix: ${ref}`);
    }
    throw notFound(`No such container: ${ref}`);
  }

  /** Save (create or update) a record. */
  save(c: ContainerRecord): void {
    this.revision++;
    this.byId.set(c.Id, c);
    writeFileAtomic(join(this.dir(c.Id), "config.v2.json"), JSON.stringify(c), 0o600);
  }

  /** True when `id` (a full ID) has a record. */
  has(id: string): boolean {
    return this.byId.has(id);
  }

  /**
   * Forget a container and remove its directory: the record goes first (the point where it
   * stops being listed), then the rest; a crash in between leaves a directory without a record,
   * which the start-up sweep removes.
   */
  delete(id: string): void {
    this.revision++;
    this.byId.delete(id);
    rmSync(join(this.dir(id), "config.v2.json"), { force: true });
    rmSync(this.dir(id), { recursive: true, force: true });
  }
}
