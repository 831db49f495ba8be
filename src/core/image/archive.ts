/**
 * `docker load` and `docker save` archives. Load accepts the docker-archive format
 * (`manifest.json`, configs, layer tars, as old and new dockerd write it) and the OCI image layout
 * (`index.json`, `blobs/`). The archive is first unpacked with the secure layer code into a private
 * directory and every member is then read through openat2 inside it, so symlinks in a hostile
 * archive cannot pull host files into an image. Save writes both formats in one tar, as dockerd
 * 25+ does, so dockerd, skopeo and umoci can all read it.
 */
import { ignore } from "../log.ts";
import { createReadStream, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { ContentStore } from "../content/content-store.ts";
import { type Digest, digestOf } from "../content/digest.ts";
import { invalidArgument } from "../errors.ts";
import { applyLayer } from "../layer/apply.ts";
import { type Compression, detectCompression } from "../layer/compression.ts";
import type { TarInput } from "../layer/tar-stream.ts";
import type { LayerStore } from "../storage/layer-store.ts";
import { AT_FDCWD, O_CLOEXEC, O_NOFOLLOW, O_RDONLY, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, type Sys } from "../sys/sys.ts";
import type { ImageRecord, ImageStore, StoredLayer } from "./image-store.ts";
import { type Descriptor, hostPlatform, type ImageManifest, MediaTypes, parseImageConfig, parseManifest, selectPlatform } from "./manifest.ts";
import { familiarName, parseWithDefaultTag } from "./reference.ts";

/** Stores an import or export works with. */
export interface ArchiveDeps {
  sys: Sys;
  content: ContentStore;
  images: ImageStore;
  layers: LayerStore;
  /** Scratch space on the data root's filesystem. */
  tmpRoot: string;
}

/** Read a member of an unpacked archive, resolved inside it. */
async function* readMember(sys: Sys, root: string, path: string): AsyncGenerator<Uint8Array> {
  let fd: number;
  try {
    const rootFd = sys.openat2(AT_FDCWD, root, O_RDONLY | O_CLOEXEC, 0, 0);
    try {
      fd = sys.openat2(rootFd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    } finally {
      sys.close(rootFd);
    }
  } catch (err) {
    throw invalidArgument(`archive member ${path}: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  yield* createReadStream("", { fd, autoClose: true }) as AsyncIterable<Uint8Array>;
}

/** True when `path` exists inside the unpacked archive (resolved inside it). */
function memberExists(sys: Sys, root: string, path: string): boolean {
  try {
    const rootFd = sys.openat2(AT_FDCWD, root, O_RDONLY | O_CLOEXEC, 0, 0);
    try {
      sys.close(sys.openat2(rootFd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS));
      return true;
    } finally {
      sys.close(rootFd);
    }
  } catch {
    return false;
  }
}

/** The first bytes of a stored blob (enough for compression magic). */
async function headOf(content: ContentStore, digest: Digest): Promise<Uint8Array> {
  for await (const c of content.readStream(digest)) return c.subarray(0, 8);
  return new Uint8Array(0);
}

async function readAll(s: AsyncIterable<Uint8Array>, limit = 64 * 1024 * 1024): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of s) {
    n += c.length;
    if (n > limit) throw invalidArgument(`archive member larger than ${limit} bytes where JSON was expected`);
    parts.push(c);
  }
  return Buffer.concat(parts);
}

const LAYER_TYPE: Record<Compression, string> = {
  gzip: MediaTypes.ociLayerGzip,
  zstd: MediaTypes.ociLayerZstd,
  none: MediaTypes.ociLayer,
};

/** One image to import: where its config and layers are inside the archive. */
interface ImportItem {
  config: string;
  layers: { path: string; digest?: Digest }[];
  tags: string[];
}

/**
 * Load an archive; yields a message per loaded image (`Loaded image: busybox:latest`).
 * Nothing is tagged unless every layer of that image verified.
 */
export async function* loadArchive(deps: ArchiveDeps, archive: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  mkdirSync(deps.tmpRoot, { recursive: true, mode: 0o700 });
  const dir = mkdtempSync(join(deps.tmpRoot, "load-"));
  try {
    await applyLayer(deps.sys, dir, archive, { whiteouts: "remove", chown: false, sync: false });
    const json = async (p: string) => {
      try {
        return JSON.parse(new TextDecoder().decode(await readAll(readMember(deps.sys, dir, p))));
      } catch (err) {
        throw invalidArgument(`invalid ${p} in archive: ${err instanceof Error ? err.message : String(err)}`);
      }
    };
    let items: ImportItem[];
    if (memberExists(deps.sys, dir, "manifest.json")) items = dockerItems(await json("manifest.json"));
    else if (memberExists(deps.sys, dir, "index.json")) items = await ociItems(deps, dir, await json("index.json"));
    else throw invalidArgument("not an image archive: neither manifest.json nor index.json found");
    for (const item of items) yield await importOne(deps, dir, item);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function dockerItems(manifest: unknown): ImportItem[] {
  if (!Array.isArray(manifest)) throw invalidArgument("invalid manifest.json in archive: expected a list");
  return manifest.map((m, i) => {
    // An image without layers may leave Layers out (or null), as dockerd reads it.
    if (typeof m?.Config !== "string" || (m?.Layers != null && !Array.isArray(m.Layers))) throw invalidArgument(`invalid manifest.json in archive: entry ${i} needs Config and Layers`);
    return { config: m.Config, layers: ((m.Layers ?? []) as string[]).map((path) => ({ path })), tags: Array.isArray(m.RepoTags) ? m.RepoTags : [] };
  });
}

async function ociItems(deps: ArchiveDeps, dir: string, index: unknown): Promise<ImportItem[]> {
  const blobPath = (d: Descriptor) => `blobs/${d.digest.replace(":", "/")}`;
  const readBlob = async (d: Descriptor) => {
    const bytes = await readAll(readMember(deps.sys, dir, blobPath(d)));
    if (digestOf(bytes, d.digest.startsWith("sha512:") ? "sha512" : "sha256") !== d.digest) throw invalidArgument(`blob ${d.digest} in archive does not match its digest`);
    return bytes;
  };
  const top = parseManifest(JSON.stringify(index), MediaTypes.ociIndex);
  if (top.kind !== "index") throw invalidArgument("index.json is not an image index");
  const items: ImportItem[] = [];
  for (const d of top.manifests) {
    let desc = d;
    let m = parseManifest(await readBlob(desc), desc.mediaType);
    if (m.kind === "index") {
      desc = selectPlatform(m, hostPlatform());
      m = parseManifest(await readBlob(desc), desc.mediaType);
    }
    const man = m as ImageManifest;
    const name = d.annotations?.["io.containerd.image.name"] ?? d.annotations?.["org.opencontainers.image.ref.name"];
    items.push({
      config: blobPath(man.config),
      layers: man.layers.map((l) => ({ path: blobPath(l), digest: l.digest })),
      tags: name && !/^[\w][\w.-]*$/.test(name) ? [name] : [],
    });
  }
  return items;
}

async function importOne(deps: ArchiveDeps, dir: string, item: ImportItem): Promise<string> {
  const configBytes = await readAll(readMember(deps.sys, dir, item.config));
  const config = parseImageConfig(configBytes);
  const id = (await deps.content.put(configBytes)).digest;
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== item.layers.length) throw invalidArgument(`image ${id}: ${item.layers.length} layers in the archive, ${diffIds.length} in its config`);
  const stored: StoredLayer[] = [];
  const created: Digest[] = [];
  let parent: Digest | undefined;
  try {
    for (const [i, l] of item.layers.entries()) {
      const blob = await deps.content.ingest(readMember(deps.sys, dir, l.path), l.digest ? { digest: l.digest } : {});
      const head = await headOf(deps.content, blob.digest);
      const reg = await deps.layers.register(parent, diffIds[i]!, () => deps.content.readStream(blob.digest));
      if (!reg.existed) created.push(reg.chainId);
      stored.push({ diffId: diffIds[i]!, blob: blob.digest, mediaType: LAYER_TYPE[detectCompression(head)], size: blob.size });
      parent = reg.chainId;
    }
    deps.images.add(id, stored);
  } catch (err) {
    // Nothing partial stays: layers this import created, and blobs no image references.
    for (const chain of created.reverse()) await deps.layers.release(chain).catch(ignore("undo of a load: layer release failed"));
    deps.content.sweep(deps.images.liveBlobs());
    throw err;
  }
  const names = item.tags.map((t) => deps.images.tag(id, t));
  return names.length ? names.map((n) => `Loaded image: ${n}`).join("\n") : `Loaded image ID: ${id}`;
}

/** Tar entries of a save archive for `images` (docker-archive and OCI layout together). */
export async function* saveArchive(deps: ArchiveDeps, images: { record: ImageRecord; tags: string[] }[]): AsyncGenerator<TarInput> {
  const now = Math.floor(Date.now() / 1000);
  const file = (name: string, body: Uint8Array | AsyncIterable<Uint8Array>, size: number): TarInput => ({
    header: { name, type: "file", mode: 0o644, uid: 0, gid: 0, size, mtime: now },
    body,
  });
  const dirEntry = (name: string): TarInput => ({ header: { name, type: "directory", mode: 0o755, uid: 0, gid: 0, size: 0, mtime: now } });
  const enc = (x: unknown) => new TextEncoder().encode(JSON.stringify(x));
  const written = new Set<string>();
  const blobName = (d: string) => `blobs/${d.replace(":", "/")}`;
  yield dirEntry("blobs/");
  yield dirEntry("blobs/sha256/");
  const manifestJson: unknown[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const indexEntries: Descriptor[] = [];
  for (const { record, tags } of images) {
    if (!written.has(record.id)) {
      const cfg = deps.images.configBytes(record.id);
      written.add(record.id);
      // The config's time is the image's creation, as docker save writes it.
      const created = Date.parse(record.created);
      yield { ...file(blobName(record.id), cfg, cfg.length), header: { ...file(blobName(record.id), cfg, cfg.length).header, mtime: Number.isNaN(created) ? now : Math.floor(created / 1000) } };
    }
    for (const l of record.layers) {
      if (written.has(l.blob)) continue;
      written.add(l.blob);
      yield file(blobName(l.blob), deps.content.readStream(l.blob), l.size);
    }
    const mbytes = deps.images.manifest(record.id).bytes;
    const mdigest = digestOf(mbytes);
    if (!written.has(mdigest)) {
      written.add(mdigest);
      yield file(blobName(mdigest), mbytes, mbytes.length);
    }
    manifestJson.push({ Config: blobName(record.id), RepoTags: tags.length ? tags : null, Layers: record.layers.map((l) => blobName(l.blob)) });
    for (const t of tags) {
      const r = parseWithDefaultTag(t);
      const repo = familiarName(r);
      (repositories[repo] ??= {})[r.tag ?? "latest"] = record.id.slice(7);
      indexEntries.push({ mediaType: MediaTypes.ociManifest, digest: mdigest, size: mbytes.length, annotations: { "io.containerd.image.name": `${r.domain}/${r.path}:${r.tag}`, "org.opencontainers.image.ref.name": r.tag ?? "latest" } });
    }
    if (!tags.length) indexEntries.push({ mediaType: MediaTypes.ociManifest, digest: mdigest, size: mbytes.length });
  }
  const files: [string, Uint8Array][] = [
    ["index.json", enc({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: indexEntries })],
    ["manifest.json", enc(manifestJson)],
    ["oci-layout", enc({ imageLayoutVersion: "1.0.0" })],
    ["repositories", enc(repositories)],
  ];
  for (const [name, body] of files) yield file(name, body, body.length);
}
