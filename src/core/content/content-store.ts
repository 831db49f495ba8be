/**
 * The content-addressed blob store: `<root>/blobs/<algorithm>/<hex>`.
 *
 * Blobs enter only through a writer: bytes go to `<root>/ingest/<key>/data`, are checked for size
 * and then digest, fsynced, and renamed into place, so a blob path always holds verified content
 * and a crash at any point leaves either no blob or the whole blob. An interrupted ingest keeps its
 * partial data; opening a writer with the same ref resumes at its offset (the registry client
 * continues with an HTTP Range request). Deletion of unreferenced blobs is mark-and-sweep: callers
 * that own references (images, build cache) pass the live set to `sweep`.
 */
import { ignore } from "../log.ts";
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { fsyncDir, writeFileAtomic } from "../atomic-file.ts";
import { failpoint } from "../failpoints.ts";
import { conflict, EngineError, notFound } from "../errors.ts";
import { type Digest, type DigestAlgorithm, Digester, digestOf, parseDigest } from "./digest.ts";

/** A committed blob. */
export interface BlobInfo {
  digest: Digest;
  size: number;
}

/** What the caller knows about the content before it arrives. */
export interface Expected {
  digest?: Digest;
  size?: number;
}

/** An in-progress ingest, as listed by `ingests()`. */
export interface IngestStatus {
  ref: string;
  offset: number;
  expected: Expected;
  startedAt: string;
}

/** An open writer. `offset` is where writing continues (non-zero when resuming). */
export interface ContentWriter {
  readonly ref: string;
  readonly offset: number;
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Verify size, then digest, then move into place. Idempotent for already-present blobs. A size
   * or digest mismatch drops the ingest and throws failed-precondition. `claim` adds what became
   * known only at the end (a registry upload's digest arrives with its last request).
   */
  commit(claim?: Expected): Promise<BlobInfo>;
  /** Drop the ingest and its data. */
  abort(): Promise<void>;
  /** Close the file but keep the partial data for a later resume. */
  suspend(): Promise<void>;
}

/** Streams accepted by `ingest`. */
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array> | ReadableStream<Uint8Array>;

/** The blob store. */
export class ContentStore {
  private readonly active = new Set<string>();

  constructor(readonly root: string) {
    mkdirSync(join(root, "blobs"), { recursive: true, mode: 0o700 });
    mkdirSync(join(root, "ingest"), { recursive: true, mode: 0o700 });
  }

  /** Path of a blob (whether or not it exists). */
  blobPath(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.root, "blobs", algorithm, hex);
  }

  has(digest: Digest): boolean {
    return existsSync(this.blobPath(digest));
  }

  /** Size of a committed blob; not-found otherwise. */
  info(digest: Digest): BlobInfo {
    try {
      return { digest, size: statSync(this.blobPath(digest)).size };
    } catch {
      throw notFound(`blob ${digest}: not found`);
    }
  }

  /** The whole blob (for manifests and configs). */
  readBytes(digest: Digest): Uint8Array {
    try {
      return readFileSync(this.blobPath(digest));
    } catch {
      throw notFound(`blob ${digest}: not found`);
    }
  }

  /** Stream a blob from `offset`. */
  readStream(digest: Digest, offset = 0): AsyncIterable<Uint8Array> {
    this.info(digest);
    return createReadStream(this.blobPath(digest), { start: offset }) as AsyncIterable<Uint8Array>;
  }

  /** Re-hash a stored blob and compare (detects on-disk corruption). */
  async verify(digest: Digest): Promise<boolean> {
    const d = new Digester(parseDigest(digest).algorithm);
    for await (const c of this.readStream(digest)) d.update(c);
    return d.digest() === digest;
  }

  /** Every committed blob. */
  list(): BlobInfo[] {
    const out: BlobInfo[] = [];
    for (const alg of safeReaddir(join(this.root, "blobs"))) {
      for (const hex of safeReaddir(join(this.root, "blobs", alg))) {
        out.push({ digest: `${alg}:${hex}` as Digest, size: statSync(join(this.root, "blobs", alg, hex)).size });
      }
    }
    return out;
  }

  /** Delete a blob; not-found if absent. */
  delete(digest: Digest): void {
    try {
      unlinkSync(this.blobPath(digest));
    } catch {
      throw notFound(`blob ${digest}: not found`);
    }
  }

  /** Delete every blob not in `live`; returns what was removed. Blobs being ingested are kept. */
  sweep(live: ReadonlySet<string>): Digest[] {
    const removed: Digest[] = [];
    for (const b of this.list()) {
      if (live.has(b.digest) || this.active.has(b.digest)) continue;
      failpoint(`blob delete ${b.digest}`);
      unlinkSync(this.blobPath(b.digest));
      removed.push(b.digest);
    }
    return removed;
  }

  /** In-progress (or interrupted) ingests. */
  ingests(): IngestStatus[] {
    const out: IngestStatus[] = [];
    for (const key of safeReaddir(join(this.root, "ingest"))) {
      const meta = this.readMeta(key);
      if (meta) out.push({ ...meta, offset: sizeOf(join(this.root, "ingest", key, "data")) });
    }
    return out;
  }

  /** Remove interrupted ingests started more than `olderThanMs` ago (and any without metadata). */
  cleanIngests(olderThanMs: number, now = Date.now()): string[] {
    const removed: string[] = [];
    for (const key of safeReaddir(join(this.root, "ingest"))) {
      const meta = this.readMeta(key);
      if (meta && (this.active.has(meta.ref) || now - Date.parse(meta.startedAt) < olderThanMs)) continue;
      rmSync(join(this.root, "ingest", key), { recursive: true, force: true });
      removed.push(meta?.ref ?? key);
    }
    return removed;
  }

  /**
   * Open a writer for `ref` (by convention the expected digest, so a retried download resumes).
   * A second writer on the same ref while one is open is a conflict.
   */
  async writer(ref: string, expected: Expected = {}): Promise<ContentWriter> {
    if (expected.digest) parseDigest(expected.digest);
    if (this.active.has(ref)) throw conflict(`ref ${ref} is locked: another ingest is writing it`);
    this.active.add(ref);
    const key = digestOf(ref).slice("sha256:".length, "sha256:".length + 32);
    const dir = join(this.root, "ingest", key);
    const dataPath = join(dir, "data");
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const meta = this.readMeta(key);
      const sameExpectation = meta && meta.ref === ref && meta.expected.digest === expected.digest && meta.expected.size === expected.size;
      if (!sameExpectation) {
        rmSync(dataPath, { force: true });
        writeFileAtomic(join(dir, "ref.json"), JSON.stringify({ ref, expected, startedAt: new Date().toISOString() }), 0o600);
      }
      const algorithm: DigestAlgorithm = expected.digest ? parseDigest(expected.digest).algorithm : "sha256";
      const digester = new Digester(algorithm);
      if (existsSync(dataPath)) for await (const c of createReadStream(dataPath) as AsyncIterable<Uint8Array>) digester.update(c);
      const fh = await open(dataPath, "a", 0o600);
      return new Writer(this, ref, dir, dataPath, fh, digester, expected, () => this.active.delete(ref));
    } catch (err) {
      this.active.delete(ref);
      throw err;
    }
  }

  /** Stream `source` into the store, verifying against `expected`. Resumes a partial ingest of `ref`. */
  async ingest(source: ByteSource, expected: Expected = {}, ref = expected.digest ?? `anon-${crypto.randomUUID()}`): Promise<BlobInfo> {
    const w = await this.writer(ref, expected);
    try {
      for await (const chunk of source as AsyncIterable<Uint8Array>) await w.write(chunk);
      return await w.commit();
    } catch (err) {
      await w.abort();
      throw err;
    }
  }

  /** Store a small in-memory blob (manifest, config). */
  async put(data: Uint8Array | string, expected: Expected = {}): Promise<BlobInfo> {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    return this.ingest([bytes], expected, expected.digest ?? digestOf(bytes));
  }

  private readMeta(key: string): Omit<IngestStatus, "offset"> | undefined {
    try {
      return JSON.parse(readFileSync(join(this.root, "ingest", key, "ref.json"), "utf8"));
    } catch {
      return undefined;
    }
  }

  /** Called by a writer that verified its data. */
  place(tmp: string, digest: Digest): void {
    const target = this.blobPath(digest);
    const dir = join(target, "..");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    failpoint(`blob ${digest}`);
    renameSync(tmp, target);
    fsyncDir(dir);
  }
}

class Writer implements ContentWriter {
  private done = false;

  constructor(
    private readonly store: ContentStore,
    readonly ref: string,
    private readonly dir: string,
    private readonly dataPath: string,
    private readonly fh: FileHandle,
    private readonly digester: Digester,
    private readonly expected: Expected,
    private readonly release: () => void,
  ) {}

  get offset(): number {
    return this.digester.size;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.done) throw new EngineError("failed-precondition", `ingest ${this.ref} is closed`);
    const size = this.expected.size;
    if (size !== undefined && this.digester.size + chunk.length > size) {
      await this.abort(); // the data can never verify: drop it rather than keep it for a resume
      throw new EngineError("failed-precondition", `${this.ref}: content exceeds the expected size of ${size} bytes`);
    }
    let off = 0;
    while (off < chunk.length) off += (await this.fh.write(chunk, off, chunk.length - off)).bytesWritten;
    this.digester.update(chunk);
  }

  async commit(claim: Expected = {}): Promise<BlobInfo> {
    if (this.done) throw new EngineError("failed-precondition", `ingest ${this.ref} is closed`);
    const size = this.digester.size;
    const want = claim.digest ?? this.expected.digest;
    const wantSize = claim.size ?? this.expected.size;
    if (wantSize !== undefined && size !== wantSize) {
      await this.abort();
      throw new EngineError("failed-precondition", `${this.ref}: unexpected size ${size}, expected ${wantSize}`);
    }
    const got = this.digester.digest();
    if (want !== undefined && got !== want) {
      await this.abort(); // tampered or corrupt: nothing of it stays
      throw new EngineError("failed-precondition", `digest mismatch: expected ${want}, got ${got}`);
    }
    await this.fh.sync();
    await this.fh.close();
    this.done = true;
    try {
      if (this.store.has(got)) rmSync(this.dataPath, { force: true });
      else this.store.place(this.dataPath, got);
      rmSync(this.dir, { recursive: true, force: true });
    } finally {
      this.release();
    }
    return { digest: got, size };
  }

  async abort(): Promise<void> {
    await this.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async suspend(): Promise<void> {
    await this.close();
  }

  private async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.fh.sync().catch(ignore("aborted ingest: fsync of the partial blob failed"));
      await this.fh.close().catch(ignore("aborted ingest: close of the partial blob failed"));
    }
    this.release();
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
