/**
 * Storage of the registry server: blobs in a content store (verified on the way in, shared by all
 * repositories), and per repository the blobs it may serve (links), its manifests by digest with
 * their media types, and its tags. Links and tags are small files written atomically, so a crash
 * leaves each either old or new. Garbage collection keeps what manifests still reference.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../atomic-file.ts";
import { ContentStore } from "../content/content-store.ts";
import { type Digest, isDigest } from "../content/digest.ts";
import { parseManifest } from "../image/manifest.ts";

/** A repository name as the distribution spec allows it. */
export const REPO_NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
/** A tag. */
export const TAG = /^[\w][\w.-]{0,127}$/;

/** A stored manifest's identity. */
export interface StoredManifest {
  digest: Digest;
  mediaType: string;
  size: number;
}

/** The registry's files under `root`. */
export class RegistryStore {
  readonly content: ContentStore;

  constructor(readonly root: string) {
    this.content = new ContentStore(join(root, "content"));
    mkdirSync(join(root, "repositories"), { recursive: true, mode: 0o700 });
  }

  private repoDir(name: string): string {
    return join(this.root, "repositories", ...name.split("/"));
  }

  private hex(d: Digest): string {
    return d.replace(":", "-");
  }

  /** Allow `name` to serve blob `d` (after an upload or a mount). */
  linkBlob(name: string, d: Digest): void {
    const dir = join(this.repoDir(name), "_blobs");
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, this.hex(d)), "", 0o600, { durable: false });
  }

  /** Whether `name` may serve blob `d` and the store has it. */
  hasBlob(name: string, d: Digest): boolean {
    return existsSync(join(this.repoDir(name), "_blobs", this.hex(d))) && this.content.has(d);
  }

  unlinkBlob(name: string, d: Digest): boolean {
    const f = join(this.repoDir(name), "_blobs", this.hex(d));
    if (!existsSync(f)) return false;
    rmSync(f);
    return true;
  }

  /** Store manifest bytes for `name` (the caller verified the blobs it references). */
  async putManifest(name: string, bytes: Uint8Array, mediaType: string, tag?: string): Promise<StoredManifest> {
    const { digest, size } = await this.content.put(bytes);
    const dir = join(this.repoDir(name), "_manifests");
    mkdirSync(join(dir, "revisions"), { recursive: true });
    writeFileAtomic(join(dir, "revisions", this.hex(digest)), JSON.stringify({ mediaType }), 0o600);
    if (tag) {
      mkdirSync(join(dir, "tags"), { recursive: true });
      writeFileAtomic(join(dir, "tags", tag), digest, 0o600);
    }
    return { digest, mediaType, size };
  }

  /** A manifest by tag or digest, or undefined. */
  manifest(name: string, ref: string): (StoredManifest & { bytes: Uint8Array }) | undefined {
    const dir = join(this.repoDir(name), "_manifests");
    let digest: string;
    if (isDigest(ref)) digest = ref;
    else {
      if (!TAG.test(ref) || !existsSync(join(dir, "tags", ref))) return undefined;
      digest = readFileSync(join(dir, "tags", ref), "utf8").trim();
    }
    const rev = join(dir, "revisions", this.hex(digest as Digest));
    if (!isDigest(digest) || !existsSync(rev) || !this.content.has(digest)) return undefined;
    const { mediaType } = JSON.parse(readFileSync(rev, "utf8")) as { mediaType: string };
    const bytes = this.content.readBytes(digest);
    return { digest, mediaType, size: bytes.length, bytes };
  }

  /** Delete a manifest by digest (and the tags pointing at it), or a tag alone. */
  deleteManifest(name: string, ref: string): boolean {
    const dir = join(this.repoDir(name), "_manifests");
    if (!isDigest(ref)) {
      const t = join(dir, "tags", ref);
      if (!TAG.test(ref) || !existsSync(t)) return false;
      rmSync(t);
      return true;
    }
    const rev = join(dir, "revisions", this.hex(ref));
    if (!existsSync(rev)) return false;
    rmSync(rev);
    for (const t of this.tags(name)) if (readFileSync(join(dir, "tags", t), "utf8").trim() === ref) rmSync(join(dir, "tags", t));
    return true;
  }

  /** Tags of `name`, sorted (undefined when the repository does not exist). */
  tags(name: string): string[] {
    return safeReaddir(join(this.repoDir(name), "_manifests", "tags")).sort();
  }

  exists(name: string): boolean {
    return existsSync(join(this.repoDir(name), "_manifests"));
  }

  /** Every manifest digest stored for `name`. */
  revisions(name: string): { digest: Digest; mediaType: string }[] {
    const dir = join(this.repoDir(name), "_manifests", "revisions");
    return safeReaddir(dir).map((f) => ({ digest: f.replace("-", ":") as Digest, mediaType: (JSON.parse(readFileSync(join(dir, f), "utf8")) as { mediaType: string }).mediaType }));
  }

  /** Repository names, sorted. */
  repositories(): string[] {
    const out: string[] = [];
    const walk = (dir: string, prefix: string) => {
      for (const e of safeReaddir(dir)) {
        if (e.startsWith("_")) continue;
        const p = join(dir, e);
        if (!statSync(p).isDirectory()) continue;
        const name = prefix ? `${prefix}/${e}` : e;
        if (existsSync(join(p, "_manifests"))) out.push(name);
        walk(p, name);
      }
    };
    walk(join(this.root, "repositories"), "");
    return out.sort();
  }

  /**
   * Garbage collection: every blob a stored manifest references (configs, layers, child
   * manifests of indexes, subjects) is kept; the rest of the content store is deleted. With
   * `untagged`, manifests no tag reaches are deleted first.
   */
  collect(opts: { untagged?: boolean } = {}): Digest[] {
    const live = new Set<string>();
    for (const repo of this.repositories()) {
      const tagged = new Set(this.tags(repo).map((t) => this.manifest(repo, t)?.digest));
      for (const rev of this.revisions(repo)) {
        if (opts.untagged && !tagged.has(rev.digest) && !this.isChildOfTagged(repo, rev.digest, tagged)) {
          this.deleteManifest(repo, rev.digest);
          continue;
        }
        live.add(rev.digest);
        for (const d of referencedBlobs(this.content.readBytes(rev.digest), rev.mediaType)) live.add(d);
      }
    }
    return this.content.sweep(live);
  }

  private isChildOfTagged(repo: string, digest: Digest, tagged: Set<Digest | undefined>): boolean {
    for (const t of tagged) {
      if (!t) continue;
      const m = this.manifest(repo, t);
      if (m && referencedBlobs(m.bytes, m.mediaType).includes(digest)) return true;
    }
    return false;
  }
}

/** What a manifest points at: blobs (config, layers) or child manifests (an index), and its subject. */
export function manifestRefs(bytes: Uint8Array, mediaType: string): { blobs: Digest[]; manifests: Digest[]; subject?: Digest } {
  const m = parseManifest(bytes, mediaType);
  const subject = (JSON.parse(new TextDecoder().decode(bytes)) as { subject?: { digest?: string } }).subject?.digest;
  return {
    blobs: m.kind === "index" ? [] : [m.config.digest, ...m.layers.map((l) => l.digest)],
    manifests: m.kind === "index" ? m.manifests.map((d) => d.digest) : [],
    ...(subject && isDigest(subject) ? { subject } : {}),
  };
}

/** Every digest a manifest keeps alive. */
export function referencedBlobs(bytes: Uint8Array, mediaType: string): Digest[] {
  const r = manifestRefs(bytes, mediaType);
  return [...r.blobs, ...r.manifests, ...(r.subject ? [r.subject] : [])];
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
