/**
 * Snapshot bookkeeping shared by the built-in drivers: keys, parents, kinds and the numeric id
 * that names each snapshot's directory, kept in `<driver root>/metadata.json` and rewritten
 * atomically on every change, with containerd's rules for what may happen to which kind.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../atomic-file.ts";
import { EngineError, invalidArgument, notFound } from "../errors.ts";
import type { DirectApply, SnapshotInfo, SnapshotKind, StorageDriver, Usage } from "./driver.ts";
import { diskUsage } from "./fs-info.ts";

/** A stored snapshot record. */
export interface SnapshotRecord extends SnapshotInfo {
  id: number;
}

interface State {
  nextId: number;
  snapshots: Record<string, SnapshotRecord>;
}

/** The metadata of one driver instance. */
export class SnapshotMetadata {
  private state: State;
  private readonly file: string;

  constructor(root: string) {
    this.file = join(root, "metadata.json");
    this.state = existsSync(this.file) ? JSON.parse(readFileSync(this.file, "utf8")) : { nextId: 1, snapshots: {} };
  }

  private save(): void {
    writeFileAtomic(this.file, JSON.stringify(this.state), 0o600);
  }

  /**
   * Remove the directories under `snapshotsDir` that no record names: a snapshot whose record
   * was removed (the removal's commit point) before its files, or a create cut short before its
   * record, by a daemon killed then. Run when the driver is opened.
   */
  removeOrphans(snapshotsDir: string): string[] {
    const ids = new Set(this.list().map((s) => String(s.id)));
    const gone: string[] = [];
    for (const d of existsSync(snapshotsDir) ? readdirSync(snapshotsDir) : []) {
      if (ids.has(d) || !/^\d+$/.test(d)) continue;
      rmSync(join(snapshotsDir, d), { recursive: true, force: true });
      gone.push(d);
    }
    return gone;
  }

  get(key: string): SnapshotRecord {
    const s = this.state.snapshots[key];
    if (!s) throw notFound(`snapshot ${key}: not found`);
    return s;
  }

  has(key: string): boolean {
    return key in this.state.snapshots;
  }

  list(): SnapshotRecord[] {
    return Object.values(this.state.snapshots);
  }

  /** The public view of a snapshot (no internal id). */
  info(key: string): SnapshotInfo {
    const { parent, kind, created } = this.get(key);
    return { key, kind, created, ...(parent ? { parent } : {}) };
  }

  /** Public views of all snapshots. */
  infos(): SnapshotInfo[] {
    return this.list().map((s) => this.info(s.key));
  }

  /** The record of `key` if it can be mounted (active or view); committed ones cannot. */
  mountable(key: string): SnapshotRecord {
    const s = this.get(key);
    if (s.kind === "committed") throw new EngineError("failed-precondition", `snapshot ${key} is committed: it has no mounts`);
    return s;
  }

  /** The record of `key` if a layer may be applied into it (active only). */
  active(key: string): SnapshotRecord {
    const s = this.get(key);
    if (s.kind !== "active") throw new EngineError("failed-precondition", `snapshot ${key} is ${s.kind}: layers apply only to active snapshots`);
    return s;
  }

  /** Parents of `key`, nearest first (committed chain). */
  ancestors(key: string): SnapshotRecord[] {
    const out: SnapshotRecord[] = [];
    for (let p = this.get(key).parent; p; p = this.get(p).parent) out.push(this.get(p));
    return out;
  }

  /** Add an active or view snapshot; the parent must be committed. Returns the record (not yet saved). */
  create(key: string, kind: Exclude<SnapshotKind, "committed">, parent?: string): SnapshotRecord {
    if (!key) throw invalidArgument("snapshot key must not be empty");
    if (this.has(key)) throw new EngineError("already-exists", `snapshot ${key}: already exists`);
    if (parent !== undefined && this.get(parent).kind !== "committed") {
      throw new EngineError("failed-precondition", `snapshot ${parent} is not committed and cannot be a parent`);
    }
    const rec: SnapshotRecord = { key, kind, id: this.state.nextId++, created: new Date().toISOString(), ...(parent ? { parent } : {}) };
    return rec;
  }

  /** Persist a record made by `create` (after its directories exist). */
  add(rec: SnapshotRecord): void {
    this.state.snapshots[rec.key] = rec;
    this.save();
  }

  /** Active `key` becomes committed `name`. */
  commit(name: string, key: string): SnapshotRecord {
    const s = this.get(key);
    if (s.kind !== "active") throw new EngineError("failed-precondition", `snapshot ${key} is ${s.kind}, only active snapshots can be committed`);
    if (this.has(name)) throw new EngineError("already-exists", `snapshot ${name}: already exists`);
    delete this.state.snapshots[key];
    const rec = { ...s, key: name, kind: "committed" as const, created: new Date().toISOString() };
    this.state.snapshots[name] = rec;
    this.save();
    return rec;
  }

  /** Remove a record; refused while children exist. */
  remove(key: string): SnapshotRecord {
    const s = this.get(key);
    const child = this.list().find((c) => c.parent === key);
    if (child) throw new EngineError("failed-precondition", `cannot remove snapshot ${key}: snapshot ${child.key} depends on it`);
    delete this.state.snapshots[key];
    this.save();
    return s;
  }
}

/**
 * The read-side driver methods of drivers whose every snapshot is a full tree in its own
 * directory (vfs, btrfs): stat, list, usage of that directory, and layers applied straight into
 * it with whiteouts as deletions.
 */
export function fullCopyDriverReads(meta: SnapshotMetadata, dirOf: (s: SnapshotRecord) => string): Pick<StorageDriver, "stat" | "list" | "usage"> & DirectApply {
  return {
    stat: (key) => meta.info(key),
    list: () => meta.infos(),
    usage: async (key): Promise<Usage> => diskUsage(dirOf(meta.get(key))),
    applyTarget(key) {
      return { path: dirOf(meta.active(key)), whiteouts: "remove" };
    },
  };
}
