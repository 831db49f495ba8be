/**
 * The image store: images by ID (the digest of their config, which lives in the content store),
 * references (`docker.io/library/busybox:latest`, `…@sha256:…`) pointing at IDs, and per image the
 * layer blobs it came with (so `save` and `push` can return the exact bytes whose diff IDs the
 * config names). State is one JSON file rewritten atomically. Deletion follows Docker's rules.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../atomic-file.ts";
import type { ContentStore } from "../content/content-store.ts";
import { type Digest, isDigest } from "../content/digest.ts";
import { conflict, EngineError, notFound } from "../errors.ts";
import { chainIds, type ImageConfig, MediaTypes, parseImageConfig } from "./manifest.ts";
import { familiarString, formatReference, parseWithDefaultTag, type Reference } from "./reference.ts";

/** One layer as stored: its diff ID and the blob it was loaded or pulled from. */
export interface StoredLayer {
  diffId: Digest;
  blob: Digest;
  mediaType: string;
  size: number;
}

/** What the store keeps per image. */
export interface ImageMeta {
  id: Digest;
  layers: StoredLayer[];
  created: string;
  lastTagTime?: string;
  /** A build step's image (the build cache): hidden from `images` unless tagged. */
  intermediate?: boolean;
  /** The image it was built on (build steps). */
  parent?: Digest;
}

interface State {
  images: Record<string, ImageMeta>;
  /** Canonical reference → image ID. */
  refs: Record<string, Digest>;
}

/** An image as callers see it. */
export interface ImageRecord extends ImageMeta {
  config: ImageConfig;
  repoTags: string[];
  repoDigests: string[];
  chainIds: Digest[];
}

/** Result lines of a delete, in Docker's shape. */
export type DeleteResult = ({ Untagged: string } | { Deleted: string })[];

/** A container using an image (for the delete rules). */
export interface ImageUser {
  id: string;
  running: boolean;
}

/** The image store. */
export class ImageStore {
  private state: State;
  private readonly file: string;

  constructor(
    root: string,
    private readonly content: ContentStore,
  ) {
    this.file = join(root, "images.json");
    this.state = existsSync(this.file) ? JSON.parse(readFileSync(this.file, "utf8")) : { images: {}, refs: {} };
  }

  private save(): void {
    writeFileAtomic(this.file, JSON.stringify(this.state), 0o600);
  }

  /**
   * Every image whose layer is blob `old` now names `layer`'s blob (the same diff ID, stored
   * compressed). The config, and so every image ID, stays the same.
   */
  replaceLayerBlob(old: Digest, layer: StoredLayer): void {
    let changed = false;
    for (const m of Object.values(this.state.images)) {
      m.layers = m.layers.map((l) => {
        if (l.blob !== old || l.diffId !== layer.diffId) return l;
        changed = true;
        return layer;
      });
    }
    if (changed) this.save();
  }

  /** Mark or unmark an image as a build step's intermediate image. */
  setIntermediate(id: Digest, intermediate: boolean, parent?: Digest): void {
    const m = this.state.images[id];
    if (!m) throw notFound(`No such image: ${id}`);
    if (intermediate) m.intermediate = true;
    else delete m.intermediate;
    if (parent) m.parent = parent;
    this.save();
  }

  /** Add an image whose config blob is already in the content store. Idempotent. */
  add(id: Digest, layers: StoredLayer[], parent?: Digest): ImageRecord {
    const config = parseImageConfig(this.content.readBytes(id));
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== layers.length || diffIds.some((d, i) => d !== layers[i]!.diffId)) {
      throw new EngineError("failed-precondition", `image ${id}: layers do not match the config's diff IDs`);
    }
    this.state.images[id] ??= { id, layers, created: config.created ?? new Date(0).toISOString(), ...(parent ? { parent } : {}) };
    this.save();
    return this.get(id);
  }

  /** Every image. */
  list(): ImageRecord[] {
    return Object.keys(this.state.images).map((id) => this.get(id));
  }

  /**
   * Find an image by full ID (`sha256:…`), hex ID or unique prefix (as Docker accepts), or by
   * reference (tag `latest` implied). Not-found uses Docker's text `No such image: <name>`.
   */
  resolve(name: string): ImageRecord {
    const byId = this.findId(name);
    if (byId) return this.get(byId);
    // Neither an ID nor a well-formed reference: dockerd's "invalid reference format" (400).
    const ref: Reference = parseWithDefaultTag(name);
    const id = this.state.refs[formatReference(ref)];
    if (!id) throw notFound(`No such image: ${name}`);
    return this.get(id);
  }

  private findId(name: string): Digest | undefined {
    const hex = name.startsWith("sha256:") ? name.slice(7) : name;
    if (!/^[a-f0-9]{1,64}$/.test(hex)) return undefined;
    if (hex.length === 64) return this.state.images[`sha256:${hex}`] ? (`sha256:${hex}` as Digest) : undefined;
    const matches = Object.keys(this.state.images).filter((id) => id.slice(7).startsWith(hex));
    if (matches.length > 1) throw new EngineError("invalid-argument", `image ID prefix ${name} is ambiguous`);
    // A short all-hex name may also be a repository name (`docker.io/library/abc`): IDs win only
    // when a prefix of at least 12 characters or an explicit sha256: is given, as Docker does.
    return matches.length === 1 && (hex.length >= 12 || name.startsWith("sha256:")) ? (matches[0] as Digest) : undefined;
  }

  /** The image with this exact ID. */
  get(id: string): ImageRecord {
    const meta = this.state.images[id];
    if (!meta || !isDigest(id)) throw notFound(`No such image: ${id}`);
    const config = parseImageConfig(this.content.readBytes(id as Digest));
    const refs = Object.entries(this.state.refs)
      .filter(([, v]) => v === id)
      .map(([k]) => k);
    return {
      ...meta,
      config,
      repoTags: refs.filter((r) => !r.includes("@")).map((r) => familiarString(parseWithDefaultTag(r))),
      repoDigests: refs.filter((r) => r.includes("@")).map((r) => familiarString(parseWithDefaultTag(r))),
      chainIds: chainIds(config.rootfs.diff_ids),
    };
  }

  /**
   * The image's manifest as bytes and media type: OCI, or with `preferDocker` Docker schema 2
   * when every layer has a Docker media type (what a push sends). Hashed once by the caller and
   * sent as is.
   */
  manifest(id: Digest, opts: { preferDocker?: boolean; indent?: number } = {}): { bytes: Uint8Array; mediaType: string } {
    const meta = this.state.images[id];
    if (!meta) throw notFound(`No such image: ${id}`);
    const config = this.content.readBytes(id);
    const docker = !!opts.preferDocker && meta.layers.length > 0 && meta.layers.every((l) => l.mediaType === MediaTypes.dockerLayerGzip || l.mediaType === MediaTypes.dockerForeignLayerGzip);
    const mediaType = docker ? MediaTypes.dockerManifest : MediaTypes.ociManifest;
    const doc = {
      schemaVersion: 2,
      mediaType,
      config: { mediaType: docker ? MediaTypes.dockerConfig : MediaTypes.ociConfig, digest: id, size: config.length },
      layers: meta.layers.map((l) => ({ mediaType: l.mediaType, digest: l.blob, size: l.size })),
    };
    return { bytes: new TextEncoder().encode(JSON.stringify(doc, null, opts.indent)), mediaType };
  }

  /** The raw config bytes (the image's JSON as stored). */
  configBytes(id: Digest): Uint8Array {
    return this.content.readBytes(id);
  }

  /** Point `ref` at image `id` (moving it from any other image). Returns the familiar name. */
  tag(id: Digest, ref: string | Reference): string {
    if (!this.state.images[id]) throw notFound(`No such image: ${id}`);
    const r = typeof ref === "string" ? parseWithDefaultTag(ref) : ref;
    this.state.refs[formatReference(r)] = id;
    this.state.images[id]!.lastTagTime = new Date().toISOString();
    this.save();
    return familiarString(r);
  }

  /**
   * Delete by reference or ID with Docker's rules (moby's ImageDelete): a reference untags, and
   * the image goes once nothing else names it; the last tag of an image a container uses is kept
   * without `force`; an ID named by several repositories needs `force`; an image a running
   * container uses is never deleted ("cannot be forced"), one a stopped container uses only with
   * `force`. After an untag, such a conflict keeps the image quietly. `users` lists the containers
   * using an image. The result says which chain IDs no remaining image uses.
   */
  delete(name: string, opts: { force?: boolean; users?: (id: Digest) => ImageUser[] } = {}): { result: DeleteResult; freedChains: Digest[] } {
    const img = this.resolve(name);
    const result: DeleteResult = [];
    const refsOf = () => Object.keys(this.state.refs).filter((k) => this.state.refs[k] === img.id);
    const users = opts.users?.(img.id) ?? [];
    const short = img.id.slice(7, 19);
    const byRef = !this.findId(name);
    if (byRef) {
      const canonical = formatReference(parseWithDefaultTag(name));
      const tags = refsOf().filter((k) => !k.includes("@"));
      if (!opts.force && users.length && tags.length === 1 && tags[0] === canonical) {
        throw conflict(`conflict: unable to remove repository reference "${name}" (must force) - container ${users[0]!.id.slice(0, 12)} is using its referenced image ${short}`);
      }
      delete this.state.refs[canonical];
      result.push({ Untagged: familiarString(parseWithDefaultTag(canonical)) });
      if (refsOf().some((k) => !k.includes("@"))) {
        this.save();
        return { result, freedChains: [] };
      }
    } else if (refsOf().filter((k) => !k.includes("@")).length > 1 && !opts.force) {
      throw conflict(`conflict: unable to delete ${short} (must be forced) - image is referenced in multiple repositories`);
    }
    const running = users.find((u) => u.running);
    const stopped = users.find((u) => !u.running);
    const inUse = running
      ? `conflict: unable to delete ${short} (cannot be forced) - image is being used by running container ${running.id.slice(0, 12)}`
      : stopped && !opts.force
        ? `conflict: unable to delete ${short} (must be forced) - image is being used by stopped container ${stopped.id.slice(0, 12)}`
        : undefined;
    if (inUse) {
      if (!byRef) throw conflict(inUse);
      this.save(); // untagged; the image stays for its containers
      return { result, freedChains: [] };
    }
    for (const k of refsOf()) {
      delete this.state.refs[k];
      result.push({ Untagged: familiarString(parseWithDefaultTag(k)) });
    }
    delete this.state.images[img.id];
    this.save();
    result.push({ Deleted: img.id });
    const stillUsed = new Set(this.list().flatMap((i) => i.chainIds));
    const freedChains = [...img.chainIds].reverse().filter((c) => !stillUsed.has(c));
    return { result, freedChains };
  }

  /** Every blob an image needs (configs and layer blobs), for content mark-and-sweep. */
  liveBlobs(): Set<string> {
    const live = new Set<string>();
    for (const m of Object.values(this.state.images)) {
      live.add(m.id);
      for (const l of m.layers) live.add(l.blob);
    }
    return live;
  }
}
