/**
 * `docker pull`: resolve the reference to a manifest (an index picks the platform), verify every
 * document and blob (size, then digest; the manifest against a requested digest and its
 * Content-Type; the config's diff IDs against the layers), download layers concurrently
 * (bounded), resuming a dropped transfer with an HTTP Range from what is already on disk, and
 * extract each layer as soon as it and its parent are ready, so extraction overlaps the
 * downloads. The image is recorded (and tagged) only after everything verified; on failure the
 * layers it created are released, while blobs that verified stay in the content store so a
 * retry does not fetch them again.
 */
import { ignore } from "../log.ts";
import type { ContentStore } from "../content/content-store.ts";
import { chainIdOf, type Digest } from "../content/digest.ts";
import { EngineError, messageOf } from "../errors.ts";
import type { ImageStore, StoredLayer } from "../image/image-store.ts";
import { type Descriptor, hostPlatform, type ImageManifest, LAYER_TYPES, type Platform, parseImageConfig, parseManifest, selectPlatform } from "../image/manifest.ts";
import { familiarName, familiarString, formatReference, type Reference } from "../image/reference.ts";
import type { Logger } from "../log.ts";
import type { LayerStore } from "../storage/layer-store.ts";
import type { AuthConfig } from "./auth.ts";
import { RegistryClient, type RegistrySettings } from "./client.ts";

/** One NDJSON progress message (Docker's jsonmessage). */
export interface ProgressMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  progress?: string;
  aux?: unknown;
}

/** Where pull and push report. */
export type Progress = (m: ProgressMessage) => void;

/** Stores and settings a pull works with. */
/**
 * What pull and push need of the image store (the ImageStore is one): record a pulled image,
 * name it, read what a push sends. The registry code depends on this, not on the store itself.
 */
export type ImageSink = Pick<ImageStore, "add" | "tag" | "resolve" | "manifest" | "configBytes" | "replaceLayerBlob">;

export interface DistributionDeps {
  content: ContentStore;
  images: ImageSink;
  layers: LayerStore;
  settings: RegistrySettings;
  log: Logger;
}

const MAX_CONFIG = 8 * 1024 * 1024;
const CONCURRENT_DOWNLOADS = 3;

/** Docker's short layer ID in progress lines. */
export const shortId = (d: string) => d.replace(/^sha256:/, "").slice(0, 12);

/** Docker's pre-rendered bar (still sent next to progressDetail). */
export function bar(current: number, total: number): string {
  const width = 50;
  const filled = total > 0 ? Math.min(width, Math.floor((current / total) * width)) : 0;
  const fmt = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}MB` : n >= 1e3 ? `${(n / 1e3).toFixed(2)}kB` : `${n}B`);
  return `[${"=".repeat(Math.max(0, filled - 1))}${filled ? ">" : ""}${" ".repeat(width - filled)}] ${fmt(current)}/${fmt(total)}`;
}

/** Read a body, failing when nothing arrives for `stallMs`. */
export async function* readWithStallTimeout(body: ReadableStream<Uint8Array>, stallMs: number): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new EngineError("unavailable", `transfer stalled: nothing received for ${stallMs} ms`)), stallMs);
      });
      try {
        const r = await Promise.race([reader.read(), stalled]);
        if (r.done) return;
        yield r.value;
      } finally {
        clearTimeout(timer);
      }
    }
  } finally {
    reader.cancel().catch(ignore("blob download: cancelling the body stream failed"));
  }
}

/** Downloads in progress by digest, so two pulls of one blob share one transfer. */
const inflight = new Map<string, Promise<void>>();

/**
 * Fetch blob `desc` into the content store, resuming a partial ingest. A verification failure
 * (size or digest) drops the data and fails at once; a transfer failure keeps what arrived and
 * retries from there, with backoff, up to `settings.attempts` times.
 */
export function fetchBlob(client: RegistryClient, deps: DistributionDeps, desc: Descriptor, onBytes: (n: number) => void): Promise<void> {
  if (deps.content.has(desc.digest)) return Promise.resolve();
  const running = inflight.get(desc.digest);
  if (running) return running;
  const p = (async () => {
    let lastError = "";
    for (let attempt = 1; attempt <= deps.settings.attempts; attempt++) {
      const w = await deps.content.writer(desc.digest, { digest: desc.digest, size: desc.size });
      try {
        if (w.offset < desc.size) {
          const res = await client.blob(desc.digest, w.offset);
          if (w.offset > 0 && res.status !== 206) {
            // The registry ignored the range: start over rather than append the whole blob.
            await res.body?.cancel();
            await w.abort();
            continue;
          }
          for await (const chunk of readWithStallTimeout(res.body!, deps.settings.stallMs)) {
            await w.write(chunk);
            onBytes(w.offset);
          }
        }
        await w.commit();
        return;
      } catch (err) {
        if (err instanceof EngineError && err.code === "failed-precondition") throw new EngineError("failed-precondition", `blob ${desc.digest} from ${client.domain}: ${err.message}`); // already dropped
        if (err instanceof EngineError && (err.code === "permission-denied" || err.code === "not-found")) {
          await w.suspend();
          throw err;
        }
        await w.suspend(); // keep what arrived for the next attempt
        lastError = messageOf(err);
        deps.log.warn("blob transfer interrupted; resuming", { digest: desc.digest, attempt, error: lastError });
        await Bun.sleep(Math.min(200 * 2 ** (attempt - 1), 3000));
      }
    }
    throw new EngineError("unavailable", `blob ${desc.digest} from ${client.domain}: ${lastError || "transfer failed"} (gave up after ${deps.settings.attempts} attempts)`);
  })().finally(() => inflight.delete(desc.digest));
  inflight.set(desc.digest, p);
  return p;
}

/** Pull `ref` (parsed once, at the edge, with tag `latest` implied); resolves with the image ID. */
export async function pullImage(deps: DistributionDeps, ref: Reference, opts: { auth?: AuthConfig; platform?: Platform; progress: Progress }): Promise<Digest> {
  const progress = opts.progress;
  const client = new RegistryClient(ref.domain, ref.path, deps.settings, opts.auth, "pull");
  const wanted = ref.digest ?? ref.tag ?? "latest";
  // The manifest: verified against a requested digest and its Content-Type. "Pulling from"
  // comes after it, as in moby: a registry that cannot be reached fails before any output.
  let fetched = await client.manifest(wanted);
  progress({ status: `Pulling from ${familiarName({ ...ref, tag: undefined, digest: undefined } as typeof ref)}`, id: ref.digest ?? ref.tag ?? "latest" });
  if (ref.digest && fetched.digest !== ref.digest) throw new EngineError("failed-precondition", `manifest digest ${fetched.digest} does not match the requested ${ref.digest}`);
  const topDigest = fetched.digest;
  let doc = parseManifest(fetched.bytes, fetched.contentType || undefined);
  if (doc.kind === "index") {
    const desc = selectPlatform(doc, opts.platform ?? hostPlatform());
    fetched = await client.manifest(desc.digest);
    if (fetched.digest !== desc.digest) throw new EngineError("failed-precondition", `manifest digest ${fetched.digest} does not match the index's ${desc.digest}`);
    doc = parseManifest(fetched.bytes, fetched.contentType || desc.mediaType);
    if (doc.kind === "index") throw new EngineError("failed-precondition", "an index inside an index is not supported");
  }
  const manifest = doc as ImageManifest;
  for (const l of manifest.layers) {
    if (!LAYER_TYPES.includes(l.mediaType)) throw new EngineError("failed-precondition", `unsupported layer media type ${l.mediaType}`);
    if ((l as { urls?: unknown }).urls) throw new EngineError("failed-precondition", `foreign layer ${l.digest} (urls) is not supported`);
  }

  // The config: small, verified, then checked against the layers.
  if (manifest.config.size > MAX_CONFIG) throw new EngineError("failed-precondition", `image config larger than ${MAX_CONFIG} bytes`);
  await fetchBlob(client, deps, manifest.config, () => {});
  const config = parseImageConfig(deps.content.readBytes(manifest.config.digest));
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) throw new EngineError("failed-precondition", `image config names ${diffIds.length} layers, the manifest ${manifest.layers.length}`);
  const id = manifest.config.digest;

  // Layers: downloads run ahead (bounded); extraction follows in order as each one is ready.
  let parent: Digest | undefined;
  const chains: { chain: Digest; present: boolean }[] = [];
  for (const d of diffIds) {
    const chain = chainIdOf(parent, d);
    chains.push({ chain, present: deps.layers.has(chain) });
    parent = chain;
  }
  const downloads: Promise<void>[] = [];
  let slots = CONCURRENT_DOWNLOADS;
  const waiting: (() => void)[] = [];
  const acquire = () => (slots > 0 ? (slots--, Promise.resolve()) : new Promise<void>((r) => waiting.push(r)));
  const releaseSlot = () => {
    const next = waiting.shift();
    if (next) next();
    else slots++;
  };
  manifest.layers.forEach((l, i) => {
    const short = shortId(l.digest);
    if (chains[i]!.present && deps.content.has(l.digest)) {
      progress({ status: "Already exists", progressDetail: {}, id: short });
      downloads.push(Promise.resolve());
      return;
    }
    progress({ status: "Pulling fs layer", progressDetail: {}, id: short });
    const download = (async () => {
      await acquire();
      try {
        let last = 0;
        await fetchBlob(client, deps, l, (n) => {
          if (n - last < 512 * 1024 && n < l.size) return;
          last = n;
          progress({ status: "Downloading", progressDetail: { current: n, total: l.size }, progress: bar(n, l.size), id: short });
        });
        progress({ status: "Verifying Checksum", progressDetail: {}, id: short });
        progress({ status: "Download complete", progressDetail: {}, id: short });
      } finally {
        releaseSlot();
      }
    })();
    // Awaited in order below; one that fails while an earlier layer is still being extracted
    // must not be an unhandled rejection meanwhile (found by the crash-point harness).
    download.catch(ignore("a later layer's download failure is met when its turn comes"));
    downloads.push(download);
  });
  const created: Digest[] = [];
  const stored: StoredLayer[] = [];
  parent = undefined;
  try {
    for (const [i, l] of manifest.layers.entries()) {
      await downloads[i];
      const short = shortId(l.digest);
      const present = chains[i]!.present;
      if (!present) progress({ status: "Extracting", progressDetail: { current: l.size, total: l.size }, progress: bar(l.size, l.size), id: short });
      const reg = await deps.layers.register(parent, diffIds[i]!, () => deps.content.readStream(l.digest), chains[i]!.chain);
      if (!reg.existed) created.push(reg.chainId);
      if (!present) progress({ status: "Pull complete", progressDetail: {}, id: short });
      stored.push({ diffId: diffIds[i]!, blob: l.digest, mediaType: l.mediaType, size: l.size });
      parent = reg.chainId;
    }
  } catch (err) {
    await Promise.allSettled(downloads);
    for (const c of created.reverse()) await deps.layers.release(c).catch(ignore("undo of a pull: layer release failed"));
    throw err;
  }
  // What the tag named before this pull: the same image means "up to date".
  const before = ref.tag ? safeResolve(deps.images, formatReference({ ...ref, digest: undefined } as typeof ref)) : undefined;
  deps.images.add(id, stored);
  const repo = { domain: ref.domain, path: ref.path };
  if (ref.tag && !ref.digest) deps.images.tag(id, { ...repo, tag: ref.tag });
  deps.images.tag(id, { ...repo, digest: topDigest });
  progress({ status: `Digest: ${topDigest}` });
  const shown = familiarString({ ...ref });
  progress({ status: before === id ? `Status: Image is up to date for ${shown}` : `Status: Downloaded newer image for ${shown}` });
  return id;
}

function safeResolve(images: ImageSink, name: string): string | undefined {
  try {
    return images.resolve(name).id;
  } catch {
    return undefined;
  }
}
