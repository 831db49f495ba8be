/**
 * Image operations as the API needs them: list, inspect, history, tag, remove (with layer release
 * and events), load and save. Shapes follow the Engine API 1.51 documents.
 */
import { ignore, ignored } from "../log.ts";
import type { ContentStore } from "../content/content-store.ts";

import type { EventBus } from "../events/bus.ts";
import { Filters } from "../filters.ts";
import { type Digest, Digester } from "../content/digest.ts";
import { EngineError, invalidArgument } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { AuthConfig } from "../registry/auth.ts";
import type { RegistrySettings } from "../registry/client.ts";
import type { Progress } from "../registry/pull.ts";

export type { Progress };
import { parsePlatform } from "./manifest.ts";
import { writeTar } from "../layer/tar-stream.ts";
import type { LayerStore } from "../storage/layer-store.ts";
import type { Sys } from "../sys/sys.ts";
import { loadArchive, saveArchive } from "./archive.ts";
import type { DeleteResult, ImageRecord, ImageStore, ImageUser } from "./image-store.ts";
import { applyChanges, importPlatform, withConfigDefaults } from "./config-changes.ts";
import { familiarString, formatReference, normalizeRegistryHost, parseWithDefaultTag, type Reference } from "./reference.ts";

export { applyChanges } from "./config-changes.ts";
export { normalizeRegistryHost } from "./reference.ts";

const unix = (iso: string) => Math.floor(Date.parse(iso) / 1000) || 0;

/** The image service. */
export class ImageService {
  constructor(private readonly deps: { sys: Sys; content: ContentStore; images: ImageStore; layers: LayerStore; events: EventBus; tmpRoot: string; registry?: RegistrySettings; log?: Logger }) {}

  private distribution() {
    if (!this.deps.registry || !this.deps.log) throw new EngineError("not-implemented", "registry access is not configured");
    return { content: this.deps.content, images: this.deps.images, layers: this.deps.layers, settings: this.deps.registry, log: this.deps.log };
  }

  /** Pull from a registry (`docker pull`), reporting Docker's progress messages. */
  async pull(name: string | Reference, opts: { auth?: AuthConfig; platform?: string; progress: Progress }): Promise<string> {
    const { pullImage } = await import("../registry/pull.ts");
    const ref = typeof name === "string" ? parseWithDefaultTag(name) : name;
    if (typeof name !== "string") name = familiarString(name);
    const id = await pullImage(this.distribution(), ref, { ...(opts.auth ? { auth: opts.auth } : {}), ...(opts.platform ? { platform: parsePlatform(opts.platform) } : {}), progress: opts.progress });
    this.deps.events.publish({ Type: "image", Action: "pull", Actor: { ID: name, Attributes: { name } } });
    return id;
  }

  /** Push to a registry (`docker push`). */
  async push(name: string, opts: { auth?: AuthConfig; progress: Progress; compression?: "gzip" | "zstd" }): Promise<void> {
    const { pushImage } = await import("../registry/push.ts");
    await pushImage(this.distribution(), name, opts);
    this.deps.events.publish({ Type: "image", Action: "push", Actor: { ID: name, Attributes: { name } } });
  }

  /**
   * `GET /distribution/{name}/json`: the registry's descriptor for `name` and the platforms it
   * has (buildx asks for it after a `--push` through the daemon).
   */
  async distributionInspect(name: string, auth?: AuthConfig): Promise<{ Descriptor: { mediaType: string; digest: string; size: number }; Platforms: { architecture: string; os: string; variant?: string }[] }> {
    const [{ RegistryClient }, { parseManifest, parseImageConfig }] = await Promise.all([import("../registry/client.ts"), import("./manifest.ts")]);
    const ref = parseWithDefaultTag(name);
    const client = new RegistryClient(ref.domain, ref.path, this.distribution().settings, auth, "pull");
    const m = await client.manifest(ref.digest ?? ref.tag ?? "latest");
    const doc = parseManifest(m.bytes, m.contentType);
    let platforms: { architecture: string; os: string; variant?: string }[];
    if (doc.kind === "index") platforms = doc.manifests.flatMap((d) => (d.platform ? [{ architecture: d.platform.architecture, os: d.platform.os, ...(d.platform.variant ? { variant: d.platform.variant } : {}) }] : []));
    else {
      const config = parseImageConfig(new Uint8Array(await (await client.blob(doc.config.digest)).arrayBuffer()));
      platforms = [{ architecture: config.architecture, os: config.os, ...(config.variant ? { variant: config.variant } : {}) }];
    }
    return { Descriptor: { mediaType: m.contentType || doc.mediaType, digest: m.digest, size: m.bytes.length }, Platforms: platforms };
  }

  /** Check credentials against a registry (`docker login`). */
  async login(auth: AuthConfig): Promise<void> {
    const { RegistryClient } = await import("../registry/client.ts");
    const host = normalizeRegistryHost(auth.serveraddress || "docker.io");
    await new RegistryClient(host, "library/bunker-login-check", this.distribution().settings, auth, "pull").ping();
  }

  /** Search a registry's catalog (`docker search host/term`). */
  async search(term: string, limit = 25): Promise<{ name: string; description: string; star_count: number; is_official: boolean; is_automated: boolean }[]> {
    const slash = term.indexOf("/");
    const first = slash > 0 ? term.slice(0, slash) : "";
    if (!/[.:]/.test(first) && first !== "localhost") throw new EngineError("invalid-argument", `search needs a registry that offers a catalog: give its host, as in ${"`"}localhost:5000/${term}${"`"}`);
    const { RegistryClient } = await import("../registry/client.ts");
    const q = term.slice(slash + 1);
    const repos = await new RegistryClient(first, "catalog", this.distribution().settings, undefined, "pull").catalog();
    return repos
      .filter((r) => r.includes(q))
      .slice(0, limit)
      .map((r) => ({ name: `${first}/${r}`, description: "", star_count: 0, is_official: false, is_automated: false }));
  }

  private sizeOf(r: ImageRecord): number {
    return r.layers.reduce((a, l) => a + l.size, 0);
  }

  /** `GET /images/json`. */
  list(filters: Filters, all = false): Record<string, unknown>[] {
    const images = this.deps.images.list();
    const pats = filters.get("reference");
    // The repository is the reference before its tag (a registry's port stays part of it).
    const repoOf = (t: string) => (t.lastIndexOf(":") > t.lastIndexOf("/") ? t.slice(0, t.lastIndexOf(":")) : t);
    const tagMatches = (t: string) => pats.some((p) => globMatch(p, t) || globMatch(p, repoOf(t)));
    const refMatch = (r: ImageRecord) => !pats.length || r.repoTags.some(tagMatches);
    // With a reference filter only the matching tags are listed (moby does the same).
    const tagsShown = (r: ImageRecord) => (pats.length ? r.repoTags.filter(tagMatches) : r.repoTags);
    const parentOf = (r: ImageRecord) => r.parent ?? "";
    // Docker's intermediate images: untagged ones that another image names as its parent,
    // listed only with all=1.
    const parents = new Set(images.map(parentOf).filter(Boolean));
    // before/since compare full creation times (images made in one second stay apart).
    const createdOf = (name: string) => Date.parse(this.deps.images.resolve(name).created) / 1000;
    const precise = (r: ImageRecord) => Date.parse(r.created) / 1000;
    const before = filters.get("before").map(createdOf);
    const since = filters.get("since").map(createdOf);
    const until = filters.get("until").map((u) => {
      if (/^\d+(\.\d+)?$/.test(u)) return Number(u);
      const d = /^(\d+)([smh])$/.exec(u);
      if (d) return Math.floor(Date.now() / 1000) - Number(d[1]) * { s: 1, m: 60, h: 3600 }[d[2] as "s" | "m" | "h"];
      const t = Date.parse(u);
      if (Number.isNaN(t)) throw invalidArgument(`invalid value for until: ${u}`);
      return Math.floor(t / 1000);
    });
    return images
      .filter((r) => before.every((b) => precise(r) < b) && since.every((x) => precise(r) > x) && until.every((u) => unix(r.created) <= u))
      .filter((r) => all || r.repoTags.length > 0 || (!r.intermediate && !parents.has(r.id)))
      .filter((r) => (!filters.has("dangling") ? true : filters.get("dangling").includes("true") ? r.repoTags.length === 0 : r.repoTags.length > 0))
      .filter((r) => filters.matchKV("label", r.config.config?.Labels ?? {}))
      .filter(refMatch)
      .sort((a, b) => unix(b.created) - unix(a.created))
      .map((r) => ({
        Containers: -1,
        Created: unix(r.created),
        Id: r.id,
        Labels: r.config.config?.Labels ?? {},
        ParentId: parentOf(r),
        RepoDigests: r.repoDigests,
        RepoTags: tagsShown(r),
        SharedSize: -1,
        Size: this.sizeOf(r),
      }));
  }

  /** `GET /images/{name}/json`. */
  inspect(name: string): Record<string, unknown> {
    const r = this.deps.images.resolve(name);
    const c = r.config;
    return {
      Id: r.id,
      RepoTags: r.repoTags,
      RepoDigests: r.repoDigests,
      Parent: r.parent ?? "",
      Comment: c.comment ?? "",
      Created: c.created ?? "",
      Container: c.container ?? "",
      ContainerConfig: withConfigDefaults(c.container_config),
      DockerVersion: c.docker_version ?? "",
      Author: c.author ?? "",
      Config: withConfigDefaults(c.config),
      Architecture: c.architecture,
      ...(c.variant ? { Variant: c.variant } : {}),
      Os: c.os,
      Size: this.sizeOf(r),
      GraphDriver: { Name: this.deps.layers.driver.name, Data: null },
      RootFS: { Type: "layers", Layers: c.rootfs.diff_ids },
      Metadata: { LastTagTime: r.lastTagTime ?? "0001-01-01T00:00:00Z" },
    };
  }

  /** `GET /images/{name}/history`, newest first. */
  history(name: string): Record<string, unknown>[] {
    const r = this.deps.images.resolve(name);
    const hist = r.config.history ?? [];
    let layer = r.layers.length - 1;
    return [...hist].reverse().map((h, i) => {
      const size = h.empty_layer ? 0 : (r.layers[layer--]?.size ?? 0);
      return {
        Id: i === 0 ? r.id : "<missing>",
        Created: h.created ? unix(h.created) : 0,
        CreatedBy: h.created_by ?? "",
        Tags: i === 0 ? r.repoTags : null,
        Size: size,
        Comment: h.comment ?? "",
      };
    });
  }

  /** `POST /images/{name}/tag`. */
  tag(name: string, repo: string, tag?: string): string {
    const r = this.deps.images.resolve(name);
    if (/^(docker\.io\/)?(library\/)?(sha256|sha384|sha512)$/.test(repo)) throw invalidArgument("refusing to create an ambiguous tag using digest algorithm as name");
    const ref = tag ? `${repo}:${tag}` : repo;
    const shown = this.deps.images.tag(r.id, ref);
    this.deps.events.publish({ Type: "image", Action: "tag", Actor: { ID: r.id, Attributes: { name: shown } } });
    return shown;
  }

  /** The containers using an image (set by the container service when it loads; none before). */
  containerUsers: (imageId: string) => ImageUser[] = () => [];

  /** `DELETE /images/{name}`; releases layers no image uses any more. */
  async remove(name: string, force: boolean): Promise<DeleteResult> {
    const { result, freedChains } = this.deps.images.delete(name, { force, users: (id) => this.containerUsers(id) });
    for (const line of result) {
      if ("Untagged" in line) this.deps.events.publish({ Type: "image", Action: "untag", Actor: { ID: line.Untagged, Attributes: { name: line.Untagged } } });
      else this.deps.events.publish({ Type: "image", Action: "delete", Actor: { ID: line.Deleted, Attributes: { name: line.Deleted } } });
    }
    for (const chain of freedChains) {
      try {
        await this.deps.layers.release(chain);
        result.push({ Deleted: chain });
      } catch {
        break; // still used (by a container layer, for instance): keep it and its parents
      }
    }
    this.deps.content.sweep(this.deps.images.liveBlobs());
    return result;
  }

  /**
   * `POST /images/prune`: dangling images (no tags), or with `dangling=false` every image; images
   * containers use are kept (containers arrive with the containers issue). Returns Docker's shape.
   */
  async prune(filters: Filters): Promise<{ ImagesDeleted: DeleteResult; SpaceReclaimed: number }> {
    const all = filters.get("dangling").includes("false");
    // Images containers use are kept (moby's prune skips them), running or not, and so are the
    // images they were built on (Docker refuses to delete an image with dependent children).
    const records = this.deps.images.list();
    const byId = new Map(records.map((r) => [r.id, r]));
    const kept = new Set<string>();
    for (const r of records) {
      if (this.containerUsers(r.id).length === 0) continue;
      for (let at: ImageRecord | undefined = r; at && !kept.has(at.id); at = at.parent ? byId.get(at.parent) : undefined) kept.add(at.id);
    }
    const victims = records.filter((r) => (all || r.repoTags.length === 0) && filters.matchKV("label", r.config.config?.Labels ?? {}) && !kept.has(r.id));
    const deleted: DeleteResult = [];
    const sizes = new Map(victims.flatMap((r) => r.layers.map((l) => [l.blob, l.size] as const)));
    for (const r of victims) deleted.push(...(await this.remove(r.id, true)));
    // Only what no remaining image shares is given back (a layer another image uses stays).
    const live = this.deps.images.liveBlobs();
    const reclaimed = [...sizes].filter(([blob]) => !live.has(blob)).reduce((a, [, size]) => a + size, 0);
    return { ImagesDeleted: deleted, SpaceReclaimed: reclaimed };
  }

  /** The images part of `GET /system/df`. */
  diskUsage(containersByImage: Map<string, number> = new Map()): { LayersSize: number; Images: Record<string, unknown>[] } {
    const list = this.list(new Filters());
    const records = this.deps.images.list();
    const blobUse = new Map<string, number>();
    for (const r of records) for (const l of r.layers) blobUse.set(l.blob, (blobUse.get(l.blob) ?? 0) + 1);
    const layersSize = [...new Map(records.flatMap((r) => r.layers.map((l) => [l.blob, l.size] as const))).values()].reduce((a, b) => a + b, 0);
    return {
      LayersSize: layersSize,
      Images: list.map((img) => {
        const r = records.find((x) => x.id === img.Id)!;
        const shared = r.layers.filter((l) => (blobUse.get(l.blob) ?? 0) > 1).reduce((a, l) => a + l.size, 0);
        return { ...img, SharedSize: shared, Containers: containersByImage.get(img.Id as string) ?? 0 };
      }),
    };
  }

  /**
   * `POST /images/create?fromSrc=-`: a rootfs tarball (plain or compressed) becomes a one-layer
   * image; `changes` are Dockerfile instructions applied to its config (`docker import --change`).
   */
  async importRootfs(body: AsyncIterable<Uint8Array>, opts: { repo?: string; tag?: string; changes: string[]; message?: string; platform?: string }): Promise<string> {
    let config: Record<string, unknown>;
    let platform: { os: string; architecture: string };
    try {
      config = applyChanges({}, opts.changes);
      platform = importPlatform(opts.platform);
    } catch (err) {
      for await (const _ of body) void _; // read the upload so the client sees the error, not a broken pipe
      throw err;
    }
    const blob = await this.deps.content.ingest(body);
    let registered: { chainId: Digest; existed: boolean } | undefined;
    try {
      const d = new Digester("sha256");
      const { decompressStream } = await import("../layer/compression.ts");
      const { compression, stream } = await decompressStream(this.deps.content.readStream(blob.digest));
      for await (const c of stream) d.update(c);
      const diffId = d.digest();
      registered = await this.deps.layers.register(undefined, diffId, () => this.deps.content.readStream(blob.digest));
      const { os, architecture } = platform;
      const now = new Date().toISOString();
      const cfgBytes = new TextEncoder().encode(
        JSON.stringify({
          architecture,
          os,
          created: now,
          config,
          rootfs: { type: "layers", diff_ids: [diffId] },
          history: [{ created: now, created_by: "", comment: opts.message || "Imported from -" }],
        }),
      );
      const id = (await this.deps.content.put(cfgBytes)).digest;
      const mediaType = compression === "gzip" ? "application/vnd.oci.image.layer.v1.tar+gzip" : compression === "zstd" ? "application/vnd.oci.image.layer.v1.tar+zstd" : "application/vnd.oci.image.layer.v1.tar";
      this.deps.images.add(id, [{ diffId, blob: blob.digest, mediaType, size: blob.size }]);
      if (opts.repo) this.tag(id, opts.repo, opts.tag);
      this.deps.events.publish({ Type: "image", Action: "import", Actor: { ID: id, Attributes: { name: opts.repo ?? id } } });
      return id;
    } catch (err) {
      if (registered && !registered.existed) await this.deps.layers.release(registered.chainId).catch(ignore("undo of an import or commit: layer release failed"));
      this.deps.content.sweep(this.deps.images.liveBlobs());
      throw err;
    }
  }

  /**
   * `docker commit`: a new image made of `base`'s layers plus `diff` (the container's writable
   * layer as a tar), with `config` as its runtime config. Returns the image ID.
   */
  async commit(
    base: ImageRecord,
    diff: AsyncIterable<Uint8Array>,
    opts: { config: Record<string, unknown>; repo?: string; tag?: string; comment?: string; author?: string; containerId: string; containerConfig?: Record<string, unknown>; createdBy?: string },
  ): Promise<string> {
    const blob = await this.deps.content.ingest(diff);
    let registered: { chainId: Digest; existed: boolean } | undefined;
    try {
      const diffId = blob.digest; // uncompressed: the blob's digest is the diff ID
      registered = await this.deps.layers.register(base.chainIds.at(-1), diffId, () => this.deps.content.readStream(blob.digest));
      const now = new Date().toISOString();
      const cfg = base.config as Record<string, unknown> & { rootfs: { diff_ids: string[] }; history?: unknown[] };
      const cfgBytes = new TextEncoder().encode(
        JSON.stringify({
          ...cfg,
          created: now,
          ...(opts.author ? { author: opts.author } : {}),
          config: opts.config,
          container: opts.containerId,
          // What dockerd records for a commit: the container's own config, the parent image, the message.
          ...(opts.containerConfig ? { container_config: opts.containerConfig } : {}),
          ...(opts.comment ? { comment: opts.comment } : { comment: undefined }),
          rootfs: { type: "layers", diff_ids: [...cfg.rootfs.diff_ids, diffId] },
          history: [...(cfg.history ?? []), { created: now, ...(opts.createdBy ? { created_by: opts.createdBy } : {}), ...(opts.author ? { author: opts.author } : {}), ...(opts.comment ? { comment: opts.comment } : {}) }],
        }),
      );
      const id = (await this.deps.content.put(cfgBytes)).digest;
      this.deps.images.add(id, [...base.layers, { diffId, blob: blob.digest, mediaType: "application/vnd.oci.image.layer.v1.tar", size: blob.size }], base.id);
      if (opts.repo) this.tag(id, opts.repo, opts.tag);
      return id;
    } catch (err) {
      if (registered && !registered.existed) await this.deps.layers.release(registered.chainId).catch(ignore("undo of an import or commit: layer release failed"));
      this.deps.content.sweep(this.deps.images.liveBlobs());
      throw err;
    }
  }

  /**
   * A new image on `base`'s layers with `config` and one more history entry (no new layer): the
   * classic builder's record of a config-only instruction. `base` undefined: an image with no
   * layers (`FROM scratch`).
   */
  async derive(base: ImageRecord | undefined, config: Record<string, unknown>, history: { created_by: string; empty_layer?: boolean }, extra: Record<string, unknown> = {}): Promise<Digest> {
    const now = new Date().toISOString();
    const cfg = (base?.config ?? { architecture: process.arch === "arm64" ? "arm64" : "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] }, history: [] }) as Record<string, unknown> & { history?: unknown[] };
    const cfgBytes = new TextEncoder().encode(
      JSON.stringify({ ...cfg, ...extra, created: now, config, history: [...(cfg.history ?? []), { created: now, created_by: history.created_by, ...(history.empty_layer ? { empty_layer: true } : {}) }] }),
    );
    const id = (await this.deps.content.put(cfgBytes)).digest;
    this.deps.images.add(id, base?.layers ?? [], base?.id);
    return id;
  }

  /** Mark `id` as a build step's image (or, for the final one, as a regular image). */
  markIntermediate(id: string, intermediate: boolean, parent?: string): void {
    this.deps.images.setIntermediate(id as Digest, intermediate, parent as Digest | undefined);
  }

  /** Build-step images no tagged image is built on, for `builder prune`: removed, with their layers. */
  async pruneBuildCache(keep: ReadonlySet<string> = new Set()): Promise<{ CachesDeleted: string[]; SpaceReclaimed: number }> {
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const r of this.deps.images.list()) {
      if (!r.intermediate || r.repoTags.length || keep.has(r.id)) continue;
      reclaimed += this.sizeOf(r);
      try {
        await this.remove(r.id, true);
        deleted.push(r.id);
      } catch (err) {
        ignored("used by a container or a child image: kept", err);
      }
    }
    return { CachesDeleted: deleted, SpaceReclaimed: reclaimed };
  }

  /** The build cache's share of `system df`. */
  buildCacheUsage(): { ID: string; Type: string; Size: number; CreatedAt: string; InUse: boolean; Shared: boolean; Description: string; UsageCount: number }[] {
    return this.deps.images
      .list()
      .filter((r) => r.intermediate && !r.repoTags.length)
      .map((r) => ({ ID: r.id.slice(7, 19), Type: "regular", Size: this.sizeOf(r), CreatedAt: r.created, InUse: false, Shared: false, Description: (r.config.history ?? []).at(-1)?.created_by ?? "", UsageCount: 0 }));
  }

  /** The image `name` refers to (404 "No such image" when none). */
  image(name: string): ImageRecord {
    return this.deps.images.resolve(name);
  }

  /** The layer store under the images (containers' writable layers go on top of it). */
  get layers(): LayerStore {
    return this.deps.layers;
  }

  /** True when `name` means the built-in hello-world image. */
  isBuiltin(name: string | Reference): boolean {
    try {
      return formatReference(typeof name === "string" ? parseWithDefaultTag(name) : name) === "docker.io/library/hello-world:latest";
    } catch {
      return false;
    }
  }

  /**
   * Make the built-in hello-world image present if `name` refers to it and it is missing.
   * Returns true when it was created now.
   */
  async provideBuiltin(name: string): Promise<boolean> {
    if (!this.isBuiltin(name)) return false;
    try {
      this.deps.images.resolve("hello-world:latest");
      return false;
    } catch (err) {
      ignored("create it", err);
    }
    const { helloWorldImage } = await import("./hello-world.ts");
    const { writeTar } = await import("../layer/tar-stream.ts");
    const img = helloWorldImage(process.arch === "arm64" ? "arm64" : "amd64");
    const tar = Buffer.concat(await Array.fromAsync(writeTar(img.entries)));
    const blob = await this.deps.content.put(tar);
    await this.deps.layers.register(undefined, blob.digest, () => this.deps.content.readStream(blob.digest));
    const id = (await this.deps.content.put(img.config(blob.digest))).digest;
    this.deps.images.add(id, [{ diffId: blob.digest, blob: blob.digest, mediaType: "application/vnd.oci.image.layer.v1.tar", size: blob.size }]);
    this.tag(id, "hello-world", "latest");
    return true;
  }

  /** `POST /images/load`: messages as they complete. */
  async *load(archive: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
    for await (const msg of loadArchive(this.deps, archive)) {
      for (const line of msg.split("\n")) {
        const name = line.replace(/^Loaded image( ID)?: /, "");
        this.deps.events.publish({ Type: "image", Action: "load", Actor: { ID: name, Attributes: { name } } });
      }
      yield msg;
    }
  }

  /** `GET /images/get`: a tar stream. Names keep their tag; IDs save untagged. */
  save(names: string[]): AsyncIterable<Uint8Array> {
    const items = names.map((n) => {
      const record = this.deps.images.resolve(n);
      const byId = record.id === n || record.id.slice(7).startsWith(n.replace(/^sha256:/, ""));
      return { record, tags: byId ? [] : [familiarString(parseWithDefaultTag(n))] };
    });
    for (const { record } of items) this.deps.events.publish({ Type: "image", Action: "save", Actor: { ID: record.id, Attributes: { name: record.repoTags[0] ?? record.id } } });
    return writeTar(saveArchive(this.deps, items));
  }

  /** Number of images (for `/info`). */
  count(): number {
    return this.deps.images.list().length;
  }
}

/** Docker's reference filter glob (`*` within a path component). */
function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, "[^/]*")
      .replace(/\?/g, "[^/]")}$`,
  );
  return re.test(s);
}
