/**
 * Image operations as the API needs them: list, inspect, history, tag, remove (with layer release
 * and events), load and save. Shapes follow the Engine API 1.51 documents.
 */
import type { ContentStore } from "../content/content-store.ts";

import type { EventBus } from "../daemon/events.ts";
import { Filters } from "../api/filters.ts";
import { writeTar } from "../layer/tar-stream.ts";
import type { LayerStore } from "../storage/layer-store.ts";
import type { Sys } from "../sys/sys.ts";
import { loadArchive, saveArchive } from "./archive.ts";
import type { DeleteResult, ImageRecord, ImageStore } from "./image-store.ts";
import { parseWithDefaultTag, familiarString } from "./reference.ts";


const unix = (iso: string) => Math.floor(Date.parse(iso) / 1000) || 0;

/** The image service. */
export class ImageService {
  constructor(
    private readonly deps: { sys: Sys; content: ContentStore; images: ImageStore; layers: LayerStore; events: EventBus; tmpRoot: string },
  ) {}

  private sizeOf(r: ImageRecord): number {
    return r.layers.reduce((a, l) => a + l.size, 0);
  }

  /** `GET /images/json`. */
  list(filters: Filters): Record<string, unknown>[] {
    const all = this.deps.images.list();
    const refMatch = (r: ImageRecord) => {
      const pats = filters.get("reference");
      if (!pats.length) return true;
      return r.repoTags.some((t) => pats.some((p) => globMatch(p.includes(":") ? p : `${p}:*`, t) || globMatch(p, t.split(":")[0]!)));
    };
    return all
      .filter((r) => (!filters.has("dangling") ? true : filters.get("dangling").includes("true") ? r.repoTags.length === 0 : r.repoTags.length > 0))
      .filter((r) => filters.matchKV("label", r.config.config?.Labels ?? {}))
      .filter(refMatch)
      .sort((a, b) => unix(b.created) - unix(a.created))
      .map((r) => ({
        Containers: -1,
        Created: unix(r.created),
        Id: r.id,
        Labels: r.config.config?.Labels ?? {},
        ParentId: "",
        RepoDigests: r.repoDigests,
        RepoTags: r.repoTags,
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
      Parent: "",
      Comment: "",
      Created: c.created ?? "",
      DockerVersion: "",
      Author: c.author ?? "",
      Config: c.config ?? null,
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
  tag(name: string, repo: string, tag?: string): void {
    const r = this.deps.images.resolve(name);
    const ref = tag ? `${repo}:${tag}` : repo;
    const shown = this.deps.images.tag(r.id, ref);
    this.deps.events.publish({ Type: "image", Action: "tag", Actor: { ID: r.id, Attributes: { name: shown } } });
  }

  /** `DELETE /images/{name}`; releases layers no image uses any more. */
  async remove(name: string, force: boolean): Promise<DeleteResult> {
    const { result, freedChains } = this.deps.images.delete(name, { force });
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
    const victims = this.deps.images.list().filter((r) => (all || r.repoTags.length === 0) && filters.matchKV("label", r.config.config?.Labels ?? {}));
    const deleted: DeleteResult = [];
    let reclaimed = 0;
    for (const r of victims) {
      const before = this.sizeOf(r);
      const lines = await this.remove(r.id, true);
      deleted.push(...lines);
      if (lines.some((l) => "Deleted" in l && l.Deleted === r.id)) reclaimed += before;
    }
    return { ImagesDeleted: deleted, SpaceReclaimed: reclaimed };
  }

  /** The images part of `GET /system/df`. */
  diskUsage(): { LayersSize: number; Images: Record<string, unknown>[] } {
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
        return { ...img, SharedSize: shared, Containers: 0 };
      }),
    };
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

  /** Content digests the images reference. */
  liveBlobs(): Set<string> {
    return this.deps.images.liveBlobs();
  }
}

/** Docker's reference filter glob (`*` within a path component). */
function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]")}$`);
  return re.test(s);
}


