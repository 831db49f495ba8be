/**
 * An out-of-process storage driver speaking Docker's GraphDriver plugin protocol
 * (docker-api.md §5.2), so a driver written in any language can store Bunker's layers.
 *
 * GraphDriver is layer-oriented (Create/CreateReadWrite a layer on a parent, Get/Put a mount,
 * ApplyDiff/Diff a tar); Bunker's drivers are snapshotters (prepare/view/commit). The proxy keeps
 * the snapshot bookkeeping itself (core/storage/snapshot-metadata.ts) and maps each snapshot to
 * one plugin layer whose ID is the snapshot's numeric id:
 * - prepare → CreateReadWrite, view → Create; a committed snapshot keeps its layer;
 * - mounts → Get (the directory, bind-mounted; read-only for views), commit/remove → Put;
 * - layer apply → ApplyDiff, layer diff → Diff, usage → DiffSize, status → Status,
 *   close → Cleanup.
 */
import { ignore } from "../log.ts";
import * as v from "valibot";
import { EngineError, NotSupportedError } from "../errors.ts";
import { DOCKER_PLUGIN_DIRS, DockerPluginClient, findDockerPlugin, type DockerPluginClientOptions } from "./docker-plugin.ts";
import type { Mount, StorageDriver, TarApply, TarDiff, Usage } from "../storage/driver.ts";
import { SnapshotMetadata, type SnapshotRecord } from "../storage/snapshot-metadata.ts";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const Empty = v.looseObject({});
const GetReply = v.looseObject({ Dir: v.string() });
const StatusReply = v.looseObject({ Status: v.nullish(v.array(v.tuple([v.string(), v.string()]))) });
const SizeReply = v.looseObject({ Size: v.number() });

/** A GraphDriver plugin as a Bunker storage driver. */
export type GraphDriverProxy = StorageDriver & TarApply & TarDiff;

/**
 * Connect to the plugin behind `client`, initialise it with `<root>/home` as its home, and return
 * the driver; the snapshot metadata stays in `root`. `name` is what `info` shows as the driver.
 */
export async function createGraphDriverProxy(client: DockerPluginClient, name: string, root: string): Promise<GraphDriverProxy> {
  await client.activate("GraphDriver");
  const home = join(root, "home");
  mkdirSync(home, { recursive: true, mode: 0o700 });
  await client.call("GraphDriver.Init", { Home: home, Opts: [], UIDMaps: [], GIDMaps: [] }, Empty);
  const meta = new SnapshotMetadata(root);
  const status = (await client.call("GraphDriver.Status", {}, StatusReply)).Status ?? [];
  /** Directories the plugin has given us (Get) and not yet taken back (Put). */
  const dirs = new Map<string, string>();
  const idOf = (s: SnapshotRecord) => String(s.id);
  const parentId = (s: SnapshotRecord) => (s.parent ? idOf(meta.get(s.parent)) : "");

  const put = async (s: SnapshotRecord) => {
    if (!dirs.delete(idOf(s))) return;
    await client.call("GraphDriver.Put", { ID: idOf(s) }, Empty);
  };
  const mountsOf = async (s: SnapshotRecord): Promise<Mount[]> => {
    let dir = dirs.get(idOf(s));
    if (!dir) {
      dir = (await client.call("GraphDriver.Get", { ID: idOf(s), MountLabel: "" }, GetReply)).Dir;
      dirs.set(idOf(s), dir);
    }
    return [{ type: "bind", source: dir, options: [s.kind === "view" ? "ro" : "rw", "rbind"] }];
  };
  const create = async (key: string, kind: "active" | "view", parent?: string) => {
    const rec = meta.create(key, kind, parent);
    const method = kind === "active" ? "GraphDriver.CreateReadWrite" : "GraphDriver.Create";
    await client.call(method, { ID: idOf(rec), Parent: parentId(rec), MountLabel: "", StorageOpt: {} }, Empty);
    meta.add(rec);
    return mountsOf(rec);
  };

  return {
    name,
    status: () => status,
    prepare: (key, parent) => create(key, "active", parent),
    view: (key, parent) => create(key, "view", parent),
    mounts: async (key) => mountsOf(meta.mountable(key)),
    async commit(newName, key) {
      await put(meta.commit(newName, key));
    },
    async remove(key) {
      const rec = meta.remove(key);
      await put(rec);
      await client.call("GraphDriver.Remove", { ID: idOf(rec) }, Empty);
    },
    stat: (key) => meta.info(key),
    list: () => meta.infos(),
    async usage(key): Promise<Usage> {
      const rec = meta.get(key);
      const { Size } = await client.call("GraphDriver.DiffSize", { ID: idOf(rec), Parent: parentId(rec) }, SizeReply);
      return { size: Size, inodes: 0 };
    },
    async applyTar(key, tar) {
      const rec = meta.active(key);
      const query = `?id=${encodeURIComponent(idOf(rec))}&parent=${encodeURIComponent(parentId(rec))}`;
      return (await client.call("GraphDriver.ApplyDiff", tar, SizeReply, query)).Size;
    },
    async *diffTar(key) {
      const rec = meta.get(key);
      const res = await client.request("GraphDriver.Diff", { ID: idOf(rec), Parent: parentId(rec) });
      if (!res.ok || !res.body) throw new EngineError("internal", `plugin ${name}: GraphDriver.Diff: HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
      for await (const chunk of res.body) yield chunk;
    },
    async close() {
      for (const id of [...dirs.keys()]) {
        dirs.delete(id);
        await client.call("GraphDriver.Put", { ID: id }, Empty).catch(ignore("GraphDriver.Put after a failed diff failed"));
      }
      await client.call("GraphDriver.Cleanup", {}, Empty);
    },
  };
}

/**
 * Find plugin `name` in the discovery directories (waiting up to `retryFor` for it to appear)
 * and connect to it as a storage driver; a missing plugin is NotSupported with the places searched.
 */
export async function connectGraphDriverPlugin(name: string, root: string, opts: DockerPluginClientOptions & { dirs?: readonly string[] } = {}): Promise<GraphDriverProxy> {
  // As moby's loadWithRetry: a plugin that starts after the daemon gets until the deadline to appear.
  const deadline = Date.now() + (opts.retryFor ?? 30_000);
  let address = findDockerPlugin(name, opts.dirs);
  for (let delay = 50; !address && Date.now() + delay <= deadline; delay = Math.min(delay * 2, 1_000)) {
    await Bun.sleep(delay);
    address = findDockerPlugin(name, opts.dirs);
  }
  if (!address) throw new NotSupportedError(`no plugin named ${name} in ${(opts.dirs ?? DOCKER_PLUGIN_DIRS).join(", ")}`);
  return createGraphDriverProxy(new DockerPluginClient(address, opts), name, root);
}
