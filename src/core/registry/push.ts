/**
 * `docker push`: the image's layer blobs and config go up first (skipped when the repository has
 * them, mounted from another repository of the same registry when one of the image's names is
 * there, else uploaded: small blobs in one request, larger ones in chunks), then the manifest's
 * exact bytes (Docker schema 2 when every layer has a Docker media type, OCI otherwise). The
 * digest the registry reports must match the bytes sent; it becomes the image's RepoDigest.
 */
import type { Digest } from "../content/digest.ts";
import { EngineError } from "../errors.ts";
import type { StoredLayer } from "../image/image-store.ts";
import { MediaTypes } from "../image/manifest.ts";
import { familiarName, parseWithDefaultTag, type Reference } from "../image/reference.ts";
import { compressStream } from "../layer/compression.ts";
import type { AuthConfig } from "./auth.ts";
import { RegistryClient } from "./client.ts";
import { bar, type DistributionDeps, type Progress, shortId } from "./pull.ts";

/** Blobs up to this size go in one request; larger ones in chunks of this size. */
export const UPLOAD_CHUNK = 4 * 1024 * 1024;

/** Read `size` bytes of a blob in chunks of `chunk` bytes (the last may be shorter). */
async function* chunksOf(source: AsyncIterable<Uint8Array>, chunk: number): AsyncGenerator<Uint8Array> {
  let buf = new Uint8Array(chunk);
  let n = 0;
  for await (const c of source) {
    let off = 0;
    while (off < c.length) {
      const take = Math.min(chunk - n, c.length - off);
      buf.set(c.subarray(off, off + take), n);
      n += take;
      off += take;
      if (n === chunk) {
        yield buf;
        buf = new Uint8Array(chunk);
        n = 0;
      }
    }
  }
  if (n) yield buf.subarray(0, n);
}

/** Upload one blob unless the repository has it; returns what happened for the progress line. */
async function pushBlob(client: RegistryClient, deps: DistributionDeps, digest: Digest, size: number, mountFrom: string[], onBytes: (n: number) => void): Promise<"exists" | { mounted: string } | "pushed"> {
  if (await client.hasBlob(digest)) return "exists";
  let location: string | undefined;
  for (const from of mountFrom) {
    const m = await client.mount(digest, from);
    if (m.mounted) return { mounted: from };
    location ??= m.location;
  }
  location ??= await client.startUpload();
  if (size <= UPLOAD_CHUNK) {
    // Monolithic: the whole blob with the closing PUT.
    const bytes = deps.content.readBytes(digest);
    await client.finish(location, digest, bytes);
    onBytes(size);
    return "pushed";
  }
  let sent = 0;
  for await (const chunk of chunksOf(deps.content.readStream(digest), UPLOAD_CHUNK)) {
    location = await client.patch(location, chunk, sent);
    sent += chunk.length;
    onBytes(sent);
  }
  await client.finish(location, digest);
  return "pushed";
}

const UNCOMPRESSED: readonly string[] = [MediaTypes.ociLayer, "application/vnd.docker.image.rootfs.diff.tar"];

/**
 * The layer as it goes to a registry: an uncompressed one (from `docker load`, a commit, a
 * build) is compressed once (gzip as `docker push` does, zstd when asked) and the compressed
 * blob replaces it in every image that has it, so the next push sends the same bytes and a pull
 * of them finds them here. The diff ID, what the image's config names, stays.
 */
async function pushable(deps: DistributionDeps, l: StoredLayer, compression: "gzip" | "zstd"): Promise<StoredLayer> {
  if (!UNCOMPRESSED.includes(l.mediaType)) return l;
  const blob = await deps.content.ingest(compressStream(deps.content.readStream(l.blob), compression));
  const layer: StoredLayer = { diffId: l.diffId, blob: blob.digest, mediaType: compression === "gzip" ? MediaTypes.dockerLayerGzip : MediaTypes.ociLayerZstd, size: blob.size };
  deps.images.replaceLayerBlob(l.blob, layer);
  return layer;
}

/** Push `name` (a local tag; `latest` implied, or every tag of a repository with `allTags`). */
export async function pushImage(deps: DistributionDeps, name: string, opts: { auth?: AuthConfig; progress: Progress; compression?: "gzip" | "zstd" }): Promise<{ digest: string; size: number }> {
  const ref = parseWithDefaultTag(name);
  if (ref.digest) throw new EngineError("invalid-argument", "cannot push a digest reference");
  const img = deps.images.resolve(name);
  const progress = opts.progress;
  const client = new RegistryClient(ref.domain, ref.path, deps.settings, opts.auth, "pull,push");
  progress({ status: `The push refers to repository [${ref.domain}/${ref.path}]` });
  // Other repositories of the same registry that hold this image: blobs can be mounted from them.
  const siblings = [
    ...new Set(
      [...img.repoTags, ...img.repoDigests]
        .map((t) => parseWithDefaultTag(t))
        .filter((r: Reference) => r.domain === ref.domain && r.path !== ref.path)
        .map((r) => r.path),
    ),
  ];
  const layers = [...img.layers].reverse();
  for (const l of layers) progress({ status: "Preparing", progressDetail: {}, id: shortId(l.blob) });
  for (const stored of layers) {
    const id = shortId(stored.blob);
    const l = await pushable(deps, stored, opts.compression ?? "gzip");
    const res = await pushBlob(client, deps, l.blob, l.size, siblings, (n) => progress({ status: "Pushing", progressDetail: { current: n, total: l.size }, progress: bar(n, l.size), id }));
    if (res === "exists") progress({ status: "Layer already exists", progressDetail: {}, id });
    else if (res === "pushed") progress({ status: "Pushed", progressDetail: {}, id });
    else progress({ status: `Mounted from ${familiarName({ domain: ref.domain, path: res.mounted })}`, progressDetail: {}, id });
  }
  const config = deps.images.configBytes(img.id);
  await pushBlob(client, deps, img.id, config.length, siblings, () => {});
  const m = deps.images.manifest(img.id, { preferDocker: true, indent: 3 });
  const digest = `sha256:${new Bun.CryptoHasher("sha256").update(m.bytes).digest("hex")}`;
  const reported = await client.putManifest(ref.tag ?? "latest", m.bytes, m.mediaType);
  if (reported && reported !== digest) throw new EngineError("failed-precondition", `registry reported digest ${reported} for a manifest whose digest is ${digest}`);
  deps.images.tag(img.id, `${ref.domain}/${ref.path}@${digest}`);
  progress({ status: `${ref.tag ?? "latest"}: digest: ${digest} size: ${m.bytes.length}` });
  progress({ progressDetail: {}, aux: { Tag: ref.tag ?? "latest", Digest: digest, Size: m.bytes.length } });
  return { digest, size: m.bytes.length };
}
