/**
 * The layer store: image layers as committed snapshots of the selected driver, named by chain ID.
 * Registering a layer decompresses it (detected from content), applies it through the driver, and
 * verifies its diff ID (sha256 of the uncompressed tar) while it streams; only a verified layer is
 * committed, so a chain ID always names exactly the content it claims. Rootfs mounts for
 * containers (their writable layers) are prepared, mounted with reference counts, measured and
 * removed here: container code never touches the driver.
 */
import { ignore, ignored } from "../log.ts";
import { chainIdOf, type Digest, Digester } from "../content/digest.ts";
import { EngineError } from "../errors.ts";
import { applyLayer } from "../layer/apply.ts";
import { decompressStream } from "../layer/compression.ts";
import type { Sys } from "../sys/sys.ts";
import { type Change, changesBetween, changesToEntries, overlayUpperEntries } from "../layer/changes.ts";
import { writeTar } from "../layer/tar-stream.ts";
import { hasDirectApply, hasNativeDiff, hasTarApply, hasTarDiff, type StorageDriver } from "./driver.ts";
import { isMountPoint, mountAll, unmount } from "./mount.ts";
import { mkdirSync, mkdtempSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";

/** A snapshot mounted on a temporary directory. */
interface TempMount {
  path: string;
  release(): void;
}

/** Result of registering one layer. */
export interface RegisteredLayer {
  chainId: Digest;
  diffId: Digest;
  /** Uncompressed size in bytes (0 when the layer already existed). */
  size: number;
  existed: boolean;
}

/** Tee a stream into a digester. */
async function* hashing(source: AsyncIterable<Uint8Array>, d: Digester): AsyncGenerator<Uint8Array> {
  for await (const c of source) {
    d.update(c);
    yield c;
  }
}

/** Layers on top of one storage driver. */
export class LayerStore {
  private readonly inflight = new Map<string, Promise<RegisteredLayer>>();
  /** Containers' writable layers mounted on their roots, with reference counts. */
  private readonly writable = new Map<string, { target: string; refs: number }>();

  /**
   * `tmpRoot`: where temporary mounts (a diff's, an export's) are made; the daemon gives
   * `<data-root>/tmp`, which its start-up sweep empties (unmounting first), so a daemon killed
   * mid-diff leaves no mount behind.
   */
  constructor(
    private readonly sys: Sys,
    readonly driver: StorageDriver,
    private readonly tmpRoot: string = tmpdir(),
  ) {}

  /** True when the layer with this chain ID is present. */
  has(chainId: Digest): boolean {
    try {
      return this.driver.stat(chainId).kind === "committed";
    } catch {
      return false;
    }
  }

  /**
   * Register the layer whose diff ID is `diffId` on top of `parent` (a chain ID, or undefined for
   * a base layer), reading its (possibly compressed) tar from `blob()` only if it is missing.
   * A caller that has computed the chain ID already (a pull plans every layer's) passes it.
   */
  register(parent: Digest | undefined, diffId: Digest, blob: () => AsyncIterable<Uint8Array>, chainId: Digest = chainIdOf(parent, diffId)): Promise<RegisteredLayer> {
    // Present already: the new blob must still prove it is this layer (a blob is kept with the
    // image for save and push, so an unverified one must never be accepted).
    if (this.has(chainId))
      return this.verifyOnly(blob).then((got) => {
        if (got.digest !== diffId) throw new EngineError("failed-precondition", `layer content does not match its diff ID: expected ${diffId}, got ${got.digest}`);
        return { chainId, diffId, size: got.size, existed: true };
      });
    const running = this.inflight.get(chainId);
    if (running) return running;
    const p = this.apply(chainId, parent, diffId, blob).finally(() => this.inflight.delete(chainId));
    this.inflight.set(chainId, p);
    return p;
  }

  /** Digest of a layer blob's uncompressed tar. */
  private async verifyOnly(blob: () => AsyncIterable<Uint8Array>): Promise<{ digest: Digest; size: number }> {
    const d = new Digester("sha256");
    const { stream } = await decompressStream(blob());
    for await (const c of stream) d.update(c);
    return { digest: d.digest(), size: d.size };
  }

  private async apply(chainId: Digest, parent: Digest | undefined, diffId: Digest, blob: () => AsyncIterable<Uint8Array>): Promise<RegisteredLayer> {
    if (parent && !this.has(parent)) throw new EngineError("failed-precondition", `parent layer ${parent} is not present`);
    const key = `extract-${process.pid}-${Date.now()}-${chainId.slice(7, 19)}`;
    await this.driver.prepare(key, parent);
    const digester = new Digester("sha256");
    try {
      const { stream } = await decompressStream(blob());
      const tar = hashing(stream, digester);
      await this.applyTo(key, tar);
      // Drain anything after the end-of-archive blocks so the digest covers the whole stream.
      for await (const _ of tar) void _;
      const got = digester.digest();
      if (got !== diffId) throw new EngineError("failed-precondition", `layer content does not match its diff ID: expected ${diffId}, got ${got}`);
      await this.driver.commit(chainId, key);
      return { chainId, diffId, size: digester.size, existed: false };
    } catch (err) {
      await this.driver.remove(key).catch(ignore("undo of a layer apply: snapshot removal failed"));
      throw err;
    }
  }

  /**
   * Apply an uncompressed layer tar into active snapshot `key` in the driver's own way: handed to
   * the driver (plugins), written into its layer directory with its whiteout form, or applied
   * onto the mounted snapshot with whiteouts as deletions.
   */
  async applyTo(key: string, tar: AsyncIterable<Uint8Array>): Promise<void> {
    if (hasTarApply(this.driver)) await this.driver.applyTar(key, tar);
    else if (hasDirectApply(this.driver)) {
      const t = this.driver.applyTarget(key);
      await applyLayer(this.sys, t.path, tar, { whiteouts: t.whiteouts });
    } else {
      await this.withMount(key, (root) => applyLayer(this.sys, root, tar, { whiteouts: "remove" }));
    }
  }

  /** Remove a layer (fails while a child layer or container snapshot uses it). */
  async release(chainId: Digest): Promise<void> {
    await this.driver.remove(chainId);
  }

  /**
   * The changes of active snapshot `key` against its parent, as an uncompressed layer tar: read
   * from the driver's own upper directory where it has one, made by the driver itself where it
   * offers that (plugins), else by comparing the mounted
   * snapshot with a read-only view of its parent.
   */
  async *diff(key: string): AsyncGenerator<Uint8Array> {
    if (hasNativeDiff(this.driver)) {
      yield* writeTar(overlayUpperEntries(this.sys, this.driver.upperDir(key)));
      return;
    }
    if (hasTarDiff(this.driver)) {
      yield* this.driver.diffTar(key);
      return;
    }
    const m = await this.mountWithParent(key);
    try {
      yield* writeTar(changesToEntries(this.sys, m.upper, changesBetween(this.sys, m.upper, m.lower)));
    } finally {
      await m.release();
    }
  }

  /** The whole tree of snapshot `key` as a tar, streamed while it is mounted (`docker export`). */
  async *exportTar(key: string): AsyncGenerator<Uint8Array> {
    const { archiveDirectory } = await import("../layer/archive-dir.ts");
    const m = await this.mountTemp(key);
    try {
      yield* writeTar(archiveDirectory(this.sys, m.path));
    } finally {
      m.release();
    }
  }

  /** The changes of active snapshot `key` against its parent (`docker diff`): paths and kinds. */
  async changes(key: string): Promise<Change[]> {
    const m = await this.mountWithParent(key);
    try {
      return changesBetween(this.sys, m.upper, m.lower);
    } finally {
      await m.release();
    }
  }

  /**
   * Snapshot `key` and a read-only view of its parent (an empty directory for a base layer),
   * each on a temporary mount, for comparing them.
   */
  private async mountWithParent(key: string): Promise<{ upper: string; lower: string; release(): Promise<void> }> {
    const parent = this.driver.stat(key).parent;
    const viewKey = `diff-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    let lower: TempMount | undefined;
    try {
      if (parent) {
        await this.driver.view(viewKey, parent);
        lower = await this.mountTemp(viewKey);
      } else {
        mkdirSync(this.tmpRoot, { recursive: true, mode: 0o700 });
        const empty = mkdtempSync(join(this.tmpRoot, "bunker-empty-"));
        lower = { path: empty, release: () => rmdirSync(empty) };
      }
      const upper = await this.mountTemp(key);
      const low = lower;
      return {
        upper: upper.path,
        lower: low.path,
        release: async () => {
          upper.release();
          low.release();
          if (parent) await this.driver.remove(viewKey);
        },
      };
    } catch (err) {
      lower?.release();
      if (parent) await this.driver.remove(viewKey).catch(ignore("undo of a parent view: snapshot removal failed"));
      throw err;
    }
  }

  /** Mount snapshot `key` on a private temporary directory; `release` unmounts and removes it. */
  private async mountTemp(key: string): Promise<TempMount> {
    const mounts = await this.driver.mounts(key);
    mkdirSync(this.tmpRoot, { recursive: true, mode: 0o700 });
    const target = mkdtempSync(join(this.tmpRoot, "bunker-mnt-"));
    try {
      mountAll(this.sys, mounts, target);
    } catch (err) {
      rmdirSync(target);
      throw err;
    }
    return {
      path: target,
      release: () => {
        unmount(this.sys, target);
        rmdirSync(target);
      },
    };
  }

  // ---- containers' writable layers ------------------------------------------------------------

  /** The driver's name (a container's `Driver`, inspect's `GraphDriver.Name`). */
  get driverName(): string {
    return this.driver.name;
  }

  /** Prepare the writable layer `key` of a container on top of the image's top layer. */
  prepareWritable(key: string, parent: Digest | undefined): Promise<void> {
    return this.driver.prepare(key, parent).then(() => undefined);
  }

  /**
   * Mount writable layer `key` on `target`, taking a reference: the first mounts (or adopts a
   * mount left from before a daemon restart), later ones count up.
   */
  async mountWritable(key: string, target: string): Promise<void> {
    const held = this.writable.get(key);
    if (held && held.target === target) {
      held.refs++;
      return;
    }
    if (!isMountPoint(target)) mountAll(this.sys, await this.driver.mounts(key), target);
    this.writable.set(key, { target, refs: 1 });
  }

  /** Drop a reference to the mount of `key` on `target`; the last one (or none known) unmounts. */
  unmountWritable(key: string, target: string): void {
    const held = this.writable.get(key);
    if (held && held.target === target && --held.refs > 0) return;
    this.writable.delete(key);
    try {
      unmount(this.sys, target);
    } catch (err) {
      ignored("not mounted", err);
    }
  }

  /** Remove writable layer `key` (already gone is fine); its mount on `target` goes first. */
  async removeWritable(key: string, target: string): Promise<void> {
    this.writable.delete(key);
    try {
      unmount(this.sys, target);
    } catch (err) {
      ignored("not mounted", err);
    }
    try {
      await this.driver.remove(key);
    } catch (err) {
      if (!(err instanceof EngineError && err.code === "not-found")) throw err;
    }
  }

  /** The bytes writable layer `key` holds (0 when it is gone). */
  async usage(key: string): Promise<number> {
    try {
      return (await this.driver.usage(key)).size;
    } catch {
      return 0;
    }
  }

  /** Mount snapshot `key` on a private temporary directory for the duration of `fn`. */
  async withMount<T>(key: string, fn: (root: string) => Promise<T>): Promise<T> {
    const m = await this.mountTemp(key);
    try {
      return await fn(m.path);
    } finally {
      m.release();
    }
  }
}
