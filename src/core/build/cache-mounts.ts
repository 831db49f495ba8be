/**
 * RUN `--mount=type=cache` directories: kept under `<data-root>/build/cache-mounts`, one per
 * cache ID (a `private` mount in use gets another instance), persistent across builds and
 * daemon restarts, counted by `system df` and removed by `builder prune` when not in use.
 * `sharing=shared` lets concurrent steps use one directory, `locked` makes them take turns.
 */
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, lstatSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../atomic-file.ts";

/** A cache directory handed to one step. */
export interface CacheLease {
  path: string;
  release(): void;
}

/** One cache directory as `system df` and `builder prune` see it. */
export interface CacheMountRecord {
  id: string;
  instance: string;
  /** A short ID for listings (12 hex digits, one per instance). */
  shortId: string;
  path: string;
  size: number;
  inUse: boolean;
  createdAt: number;
  lastUsedAt: number;
}

interface Meta {
  id: string;
  createdAt: number;
  lastUsedAt: number;
}

const key = (id: string) => new Bun.CryptoHasher("sha256").update(id).digest("hex").slice(0, 32);

/** The cache directories of one daemon. */
export class CacheMounts {
  private inUse = new Map<string, number>();
  private lockWaiters = new Map<string, (() => void)[]>();

  constructor(private readonly root: string) {}

  /** A directory for cache `id`: made (with mode, uid, gid) on first use. */
  async acquire(id: string, sharing: "shared" | "private" | "locked", init: { mode: number; uid: number; gid: number }): Promise<CacheLease> {
    const base = key(id);
    let instance = base;
    if (sharing === "locked") while (this.inUse.get(base)) await new Promise<void>((r) => this.lockWaiters.set(base, [...(this.lockWaiters.get(base) ?? []), r]));
    if (sharing === "private") for (let n = 1; this.inUse.get(instance); n++) instance = `${base}-${n}`;
    const dir = join(this.root, instance);
    if (!existsSync(join(dir, "data"))) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const staging = join(dir, "data.new");
      rmSync(staging, { recursive: true, force: true });
      mkdirSync(staging, { mode: init.mode });
      chownSync(staging, init.uid, init.gid);
      renameSync(staging, join(dir, "data"));
    }
    const now = Date.now();
    const metaFile = join(dir, "meta.json");
    const prior = existsSync(metaFile) ? (JSON.parse(readFileSync(metaFile, "utf8")) as Meta) : undefined;
    writeFileAtomic(metaFile, JSON.stringify({ id, createdAt: prior?.createdAt ?? now, lastUsedAt: now }), 0o600, { durable: false });
    this.inUse.set(instance, (this.inUse.get(instance) ?? 0) + 1);
    let released = false;
    return {
      path: join(dir, "data"),
      release: () => {
        if (released) return;
        released = true;
        const left = (this.inUse.get(instance) ?? 1) - 1;
        if (left) this.inUse.set(instance, left);
        else this.inUse.delete(instance);
        for (const w of this.lockWaiters.get(instance)?.splice(0) ?? []) w();
      },
    };
  }

  /** Every cache directory with its size. */
  list(): CacheMountRecord[] {
    if (!existsSync(this.root)) return [];
    const out: CacheMountRecord[] = [];
    for (const instance of readdirSync(this.root)) {
      const dir = join(this.root, instance);
      let meta: Meta;
      try {
        meta = JSON.parse(readFileSync(join(dir, "meta.json"), "utf8")) as Meta;
      } catch {
        continue;
      }
      out.push({ id: meta.id, instance, shortId: key(instance).slice(0, 12), path: join(dir, "data"), size: duSize(join(dir, "data")), inUse: !!this.inUse.get(instance), createdAt: meta.createdAt, lastUsedAt: meta.lastUsedAt });
    }
    return out;
  }

  /** Remove the directories not in use; resolves with what went and the bytes freed. */
  prune(): { removed: CacheMountRecord[]; reclaimed: number } {
    const removed = this.list().filter((r) => !r.inUse);
    for (const r of removed) {
      // Renamed first, so a crash mid-removal leaves no half-emptied cache under its ID.
      const doomed = join(this.root, `.trash-${r.instance}-${Date.now()}`);
      renameSync(join(this.root, r.instance), doomed);
      rmSync(doomed, { recursive: true, force: true });
    }
    for (const leftover of existsSync(this.root) ? readdirSync(this.root).filter((n) => n.startsWith(".trash-")) : []) rmSync(join(this.root, leftover), { recursive: true, force: true });
    return { removed, reclaimed: removed.reduce((n, r) => n + r.size, 0) };
  }
}

/** Bytes used under `dir` (apparent sizes of regular files, not following symlinks). */
function duSize(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) total += st.size;
    }
  };
  try {
    if (statSync(dir).isDirectory()) walk(dir);
  } catch {
    return total;
  }
  return total;
}
