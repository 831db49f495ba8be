/**
 * Container routes (Engine API 1.51, docker-api.md §1.3–1.6): create, list, inspect, start,
 * stop, restart, kill, wait, remove, attach (hijacked), logs, resize, pause, rename, top.
 */
import { posix } from "node:path";
import { truthy } from "../http/request.ts";
import type { ContainerService } from "../../container/container-service.ts";
import type { Sys } from "../../sys/sys.ts";
import type { ContainerRecord } from "../../container/container-store.ts";
import { type LogEntry, readJsonLog, rfc3339Nano } from "../../container/json-log.ts";
import { LOCAL_DEFAULTS, localLogFile, readLocalLog } from "../../container/local-log.ts";
import type { OutputSubscriber } from "../../container/output-pump.ts";
import type { SpoolRecord } from "../../container/spool.ts";
import { splitLink } from "../../network/network-service.ts";
import { conflict, EngineError, invalidArgument, messageOf, notFound } from "../../errors.ts";
import { compareApiVersions } from "../../version.ts";
import { Filters } from "../filters.ts";
import type { Route, RouteContext } from "../router.ts";


/** Filter keys `GET /containers/json` accepts. */
const CONTAINER_FILTER_KEYS = ["ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task", "label", "name", "network", "publish", "since", "status", "volume"] as const;

/** The 8-byte header of a multiplexed frame. */
function frame(stream: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + payload.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, payload.length, false);
  out.set(payload, 8);
  return out;
}

/** "Up 3 minutes", "Exited (0) 2 seconds ago", "Created" as docker ps shows. */
export function statusText(c: ContainerRecord, nowMs = Date.now()): string {
  const ago = (iso: string) => humanDuration(nowMs - Date.parse(iso));
  const health = c.State.Health ? ` (${c.State.Health.Status === "starting" ? "health: starting" : c.State.Health.Status})` : "";
  if (c.State.Running) return `Up ${ago(c.State.StartedAt)}${c.State.Paused ? " (Paused)" : health}`;
  if (c.State.Restarting) return `Restarting (${c.State.ExitCode}) ${ago(c.State.FinishedAt)} ago`;
  if (c.State.Status === "created") return "Created";
  if (c.State.Status === "dead") return "Dead";
  return `Exited (${c.State.ExitCode}) ${ago(c.State.FinishedAt)} ago`;
}

/** docker's wording for a duration (go-units HumanDuration: seconds and minutes truncate, hours round). */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return "Less than a second";
  if (seconds === 1) return "1 second";
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes === 1) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.trunc(ms / 3_600_000 + 0.5);
  if (hours === 1) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(ms / 3_600_000 / 24 / 365)} years`;
}

/** inspect's and ps's `Mounts`. */
function mountsView(c: ContainerRecord): Record<string, unknown>[] {
  return (c.MountPoints ?? []).filter((m) => !m.FromTmpfsOption).map((m) => ({
    Type: m.Type,
    ...(m.Name ? { Name: m.Name } : {}),
    Source: m.Source,
    Destination: m.Destination,
    ...(m.Driver ? { Driver: m.Driver } : {}),
    Mode: m.Mode,
    RW: m.RW,
    Propagation: m.Propagation,
  }));
}

/** `docker inspect`'s object. */
export function inspectOf(c: ContainerRecord, driver: string, execIds?: string[]): Record<string, unknown> {
  return {
    Id: c.Id,
    Created: c.Created,
    Path: c.Path,
    Args: c.Args,
    State: c.State,
    Image: c.Image,
    ResolvConfPath: c.ResolvConfPath,
    HostnamePath: c.HostnamePath,
    HostsPath: c.HostsPath,
    LogPath: c.HostConfig.LogConfig?.Type === "json-file" ? c.LogPath : "", // Docker names only json-file's
    Name: c.Name,
    RestartCount: c.RestartCount,
    Driver: driver,
    Platform: "linux",
    MountLabel: "",
    ProcessLabel: "",
    AppArmorProfile: "",
    ExecIDs: execIds?.length ? execIds : null,
    // Docker names the runtime even when the request did not: runc is the default's name.
    HostConfig: { ...c.HostConfig, Runtime: c.HostConfig.Runtime || "runc" },
    GraphDriver: { Name: driver, Data: null },
    Mounts: mountsView(c),
    Config: c.Config,
    NetworkSettings: networkSettingsView(c),
  };
}

/** `NetworkSettings` of inspect: per-network settings, ports, and the legacy top-level fields of the default bridge. */
export function networkSettingsView(c: ContainerRecord): Record<string, unknown> {
  const ns = c.NetworkSettings;
  const networks = Object.fromEntries(Object.entries(ns?.Networks ?? {}).map(([k, { HostIf: _h, IfName: _i, RequestedMac: _m, ...s }]) => [k, s]));
  const def = ns?.Networks["bridge"];
  return {
    Bridge: "",
    SandboxID: c.State.Running && ns?.SandboxKey ? c.Id : "",
    SandboxKey: c.State.Running ? (ns?.SandboxKey ?? "") : "",
    Ports: c.State.Running ? (ns?.Ports ?? {}) : {},
    HairpinMode: false,
    LinkLocalIPv6Address: "",
    LinkLocalIPv6PrefixLen: 0,
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    EndpointID: def?.EndpointID ?? "",
    Gateway: def?.Gateway ?? "",
    GlobalIPv6Address: def?.GlobalIPv6Address ?? "",
    GlobalIPv6PrefixLen: def?.GlobalIPv6PrefixLen ?? 0,
    IPAddress: def?.IPAddress ?? "",
    IPPrefixLen: def?.IPPrefixLen ?? 0,
    IPv6Gateway: def?.IPv6Gateway ?? "",
    MacAddress: def?.MacAddress ?? "",
    Networks: networks,
  };
}

/** `Ports` of `docker ps`: published bindings, and exposed ports without one. */
function portsSummary(c: ContainerRecord): { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] {
  if (!c.State.Running) return [];
  const out: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] = [];
  for (const [key, list] of Object.entries(c.NetworkSettings?.Ports ?? {})) {
    const [port, type = "tcp"] = key.split("/");
    if (!list) out.push({ PrivatePort: Number(port), Type: type });
    else for (const b of list) out.push({ IP: b.HostIp, PrivatePort: Number(port), PublicPort: Number(b.HostPort), Type: type });
  }
  return out;
}

/** Summaries by record, rebuilt when the record changes (its JSON on disk is rewritten then). */
const summaries = new WeakMap<ContainerRecord, { key: string; created: number; value: Record<string, unknown> }>();

function cachedSummary(c: ContainerRecord): { created: number; value: Record<string, unknown> } {
  const key = `${c.Name}\0${c.State.Status}\0${c.State.StartedAt}\0${c.State.FinishedAt}\0${c.State.ExitCode}\0${c.State.Paused}\0${c.State.Health?.Status}\0${Object.entries(c.NetworkSettings?.Networks ?? {}).map(([k, n]) => k + n.IPAddress).join()}`;
  const hit = summaries.get(c);
  if (hit && hit.key === key) return hit;
  const entry = { key, created: Date.parse(c.Created), value: buildSummary(c) };
  summaries.set(c, entry);
  return entry;
}

/** `?h=&w=` of the resize endpoints (containers and execs). */
function resizeArgs(ctx: RouteContext): [number, number] {
  const h = Number(ctx.req.query.get("h"));
  const w = Number(ctx.req.query.get("w"));
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 0 || w < 0) throw invalidArgument("invalid resize parameters");
  return [h, w];
}

/** Recent `GET /containers/json` bodies per store, by query, store revision and second. */
const listCaches = new WeakMap<object, Map<string, string>>();

/** `docker ps`'s object. */
export function summaryOf(c: ContainerRecord): Record<string, unknown> {
  return { ...cachedSummary(c).value, Status: statusText(c) };
}

function buildSummary(c: ContainerRecord): Record<string, unknown> {
  return {
    Id: c.Id,
    Names: [c.Name],
    Image: c.ImageName,
    ImageID: c.Image,
    Command: [c.Path, ...c.Args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(" "),
    Created: Math.floor(Date.parse(c.Created) / 1000),
    Ports: portsSummary(c),
    Labels: c.Config.Labels ?? {},
    State: c.State.Status,
    Status: statusText(c),
    HostConfig: { NetworkMode: c.HostConfig.NetworkMode || "none" },
    NetworkSettings: { Networks: (networkSettingsView(c) as { Networks: Record<string, unknown> }).Networks },
    Mounts: mountsView(c),
  };
}

function matches(c: ContainerRecord, f: Filters, all: ContainerRecord[]): boolean {
  const ok = (key: string, test: (v: string) => boolean) => !f.has(key) || f.get(key).some(test);
  const created = (ref: string) => {
    const o = all.find((x) => x.Id === ref || x.Id.startsWith(ref) || x.Name === `/${ref}`);
    if (!o) throw invalidArgument(`No such container: ${ref}`);
    return Date.parse(o.Created);
  };
  return (
    ok("id", (v) => c.Id.startsWith(v)) &&
    ok("name", (v) => new RegExp(v).test(c.Name.slice(1))) &&
    ok("status", (v) => {
      if (!["created", "restarting", "running", "removing", "paused", "exited", "dead"].includes(v)) throw invalidArgument(`invalid filter 'status=${v}'`);
      return c.State.Status === v;
    }) &&
    ok("exited", (v) => !c.State.Running && c.State.Status === "exited" && c.State.ExitCode === Number(v)) &&
    f.matchKV("label", c.Config.Labels ?? {}) && // every label filter must match (Docker ANDs them)
    ok("ancestor", (v) => c.ImageName === v || c.Image === v || c.Image.startsWith(`sha256:${v}`) || c.ImageName === `${v}:latest`) &&
    ok("before", (v) => Date.parse(c.Created) < created(v)) &&
    ok("since", (v) => Date.parse(c.Created) > created(v)) &&
    ok("network", (v) => (c.HostConfig.NetworkMode ?? "none") === v || Object.entries(c.NetworkSettings?.Networks ?? {}).some(([name, s]) => name === v || (s.NetworkID !== "" && s.NetworkID.startsWith(v)))) &&
    ok("health", (v) => (c.State.Health?.Status ?? "none") === v) &&
    ok("volume", (v) => (c.MountPoints ?? []).some((m) => m.Name === v || m.Destination === v || (m.Type === "bind" && m.Source === v))) &&
    ok("expose", (v) => portKeys(v).some((k) => k in (c.Config.ExposedPorts ?? {}) || k in (c.HostConfig.PortBindings ?? {}))) &&
    ok("publish", (v) => portKeys(v).some((k) => k in (c.HostConfig.PortBindings ?? {})))
  );
}

/** `80`, `80/udp`, `8000-8002/tcp` as port keys (`80/tcp` …), as moby's expose/publish filters read them. */
function portKeys(v: string): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/.exec(v);
  if (!m) throw invalidArgument(`invalid filter value for publish/expose: ${v}`);
  const lo = Number(m[1]);
  const hi = m[2] ? Number(m[2]) : lo;
  if (hi < lo || hi - lo > 65535) throw invalidArgument(`invalid port range: ${v}`);
  return Array.from({ length: hi - lo + 1 }, (_, i) => `${lo + i}/${m[3] ?? "tcp"}`);
}

/** Seconds (with fraction) or RFC 3339 as nanoseconds since the epoch; Docker's `since`/`until`. */
function timeArg(v: string | null): bigint | undefined {
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) {
    const [s, frac = ""] = v.split(".");
    return BigInt(s!) * 1_000_000_000n + BigInt(frac.padEnd(9, "0").slice(0, 9));
  }
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw invalidArgument(`invalid value for time: ${v}`);
  return BigInt(ms) * 1_000_000n;
}

/** The container routes. */
export function containerRoutes(service: () => Promise<ContainerService>, sys: () => Sys): Route[] {
  const get = async (ctx: RouteContext) => {
    const svc = await service();
    return { svc, c: svc.store.get(ctx.params.id!) };
  };
  const contentType = (ctx: RouteContext, tty: boolean) =>
    !tty && compareApiVersions(ctx.apiVersion, "1.42") >= 0 ? "application/vnd.docker.multiplexed-stream" : "application/vnd.docker.raw-stream";

  return [
    {
      method: "POST",
      path: "/containers/create",
      handler: async (ctx) => {
        const { req, res } = ctx;
        const name = req.query.get("name") ?? undefined;
        const body = await req.json();
        const platform = req.query.get("platform") || undefined;
        res.json(201, await (await service()).create(body, name || undefined, platform, ctx.apiVersion));
      },
    },
    {
      method: "GET",
      path: "/containers/json",
      handler: async ({ req, res }) => {
        const svc = await service();
        // `ps` is polled (watch, compose, monitoring): the same query on unchanged records in the
        // same second (statuses read "Up N seconds") gets the body made last time.
        const key = `${req.query.get("all")}|${req.query.get("filters")}|${req.query.get("limit")}|${req.query.get("size")}|${svc.store.revision}|${Math.floor(Date.now() / 1000)}`;
        const listCache = listCaches.get(svc.store) ?? listCaches.set(svc.store, new Map()).get(svc.store)!;
        const hit = listCache.get(key);
        if (hit !== undefined) return res.send(200, hit, "application/json");
        const filters = Filters.parse(req.query.get("filters"), CONTAINER_FILTER_KEYS);
        const all = svc.store.all();
        // Without all=1, running containers and those restarting (dockerd counts them as running).
        let list = all.filter((c) => (truthy(req.query.get("all")) || c.State.Running || c.State.Restarting || filters.has("status") || filters.has("exited")) && matches(c, filters, all));
        list.sort((a, b) => cachedSummary(b).created - cachedSummary(a).created);
        const limit = Number(req.query.get("limit") ?? -1);
        if (limit > 0) list = list.slice(0, limit);
        // A container's names include the legacy link names others know it by ("/web/db").
        const linkNames = new Map<string, string[]>();
        for (const p of all) {
          for (const l of (p.HostConfig.Links ?? []) as string[]) {
            const [target, alias] = splitLink(l);
            const t = all.find((x) => x.Name === `/${target}` || x.Id === target);
            if (t) linkNames.set(t.Id, [...(linkNames.get(t.Id) ?? []), `${p.Name}/${alias}`]);
          }
        }
        const summaryWithLinks = (c: ContainerRecord) => {
          const v = summaryOf(c);
          const extra = linkNames.get(c.Id);
          return extra ? { ...v, Names: [c.Name, ...extra] } : v;
        };
        if (!truthy(req.query.get("size"))) {
          const body = JSON.stringify(list.map(summaryWithLinks)) + "\n";
          if (listCache.size >= 8) listCache.clear();
          listCache.set(key, body);
          return res.send(200, body, "application/json");
        }
        // `ps -s`: the writable layer's size (SizeRw) and, as Docker, the image's plus that (SizeRootFs).
        const out = [];
        for (const c of list) out.push({ ...summaryWithLinks(c), ...(await svc.sizes(c.Id)) });
        res.json(200, out);
      },
    },
    {
      method: "GET",
      path: "/containers/{id}/json",
      handler: async (ctx) => {
        const { svc, c } = await get(ctx);
        const body = inspectOf(c, c.Driver, svc.execs.idsOf(c.Id));
        if (truthy(ctx.req.query.get("size"))) Object.assign(body, await svc.sizes(c.Id));
        ctx.res.json(200, body);
      },
    },
    {
      method: "POST",
      path: "/containers/{id}/start",
      handler: async (ctx) => {
        const { svc } = await get(ctx);
        ctx.res.send((await svc.start(ctx.params.id!)) ? 204 : 304);
      },
    },
    {
      method: "POST",
      path: "/containers/{id}/stop",
      handler: async (ctx) => {
        const { svc } = await get(ctx);
        const t = ctx.req.query.get("t");
        ctx.res.send((await svc.stop(ctx.params.id!, t !== null && t !== "" ? Number(t) : undefined, ctx.req.query.get("signal") ?? undefined)) ? 204 : 304);
      },
    },
    {
      method: "POST",
      path: "/containers/{id}/restart",
      handler: async (ctx) => {
        const { svc, c } = await get(ctx);
        const t = ctx.req.query.get("t");
        await svc.restart(c.Id, t !== null && t !== "" ? Number(t) : undefined, ctx.req.query.get("signal") ?? undefined);
        ctx.res.send(204);
      },
    },
    {
      method: "POST",
      path: "/containers/{id}/kill",
      handler: async (ctx) => {
        const { svc } = await get(ctx);
        await svc.kill(ctx.params.id!, ctx.req.query.get("signal") || "SIGKILL");
        ctx.res.send(204);
      },
    },
    {
      method: "POST",
      path: "/containers/{id}/pause",
      handler: async (ctx) => {
        (await get(ctx)).svc.pause(ctx.params.id!, true);
        ctx.res.send(204);
      },
    },
    {
      method: "POST",
      path: "/containers/{id}/unpause",
      handler: async (ctx) => {
        (await get(ctx)).svc.pause(ctx.params.id!, false);
        ctx.res.send(204);
      },
    },
    {
      method: "POST",
      path: "/containers/{id}/update",
      handler: async (ctx) => {
        const { svc, c } = await get(ctx);
        ctx.res.json(200, svc.update(c.Id, await ctx.req.json(), ctx.apiVersion));
      },
    },
    {
      method: "POST",
      path: "/containers/{id}/rename",
      handler: async (ctx) => {
        const name = ctx.req.query.get("name");
        if (!name) throw invalidArgument("Neither old nor new names may be empty");
        (await get(ctx)).svc.rename(ctx.params.id!, name);
        ctx.res.send(204);
      },
    },
    {
      method: "POST",
      path: "/containers/{id}/resize",
      handler: async (ctx) => {
        const [h, w] = resizeArgs(ctx);
        (await get(ctx)).svc.resize(ctx.params.id!, h, w);
        ctx.res.send(200);
      },
    },
    {
      method: "POST",
      path: "/containers/{id}/wait",
      handler: async (ctx) => {
        const { svc, c } = await get(ctx);
        const done = svc.wait(c.Id, ctx.req.query.get("condition") ?? "not-running");
        const out = ctx.res.stream(200, "application/json"); // headers at once: the CLI waits for them before start
        const code = await done;
        await out.write(`${JSON.stringify({ StatusCode: code, Error: null })}\n`);
        out.end();
      },
    },
    {
      method: "DELETE",
      path: "/containers/{id}",
      handler: async (ctx) => {
        const { svc, c } = await get(ctx);
        if (truthy(ctx.req.query.get("link"))) throw conflict("Conflict, cannot remove the default link name of the container");
        await svc.remove(c.Id, { force: truthy(ctx.req.query.get("force")), volumes: truthy(ctx.req.query.get("v")) });
        ctx.res.send(204);
      },
    },
    {
      // `docker rm --link /web/db`: the link name is <parent>/<alias>.
      method: "DELETE",
      path: "/containers/{name:.*}",
      handler: async (ctx) => {
        const svc = await service();
        if (!truthy(ctx.req.query.get("link"))) throw notFound(`No such container: ${ctx.params.name}`);
        svc.removeLink(ctx.params.name!);
        ctx.res.send(204);
      },
    },
    {
      method: "GET",
      path: "/containers/{id}/stats",
      handler: async (ctx) => {
        const { svc, c } = await get(ctx);
        const q = ctx.req.query;
        const stream = q.get("stream") === null ? true : truthy(q.get("stream"));
        const oneShot = truthy(q.get("one-shot"));
        const empty = { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };
        let prev = svc.statsSample(c.Id);
        if (!stream) {
          // As dockerd: two samples a moment apart, so the client can compute a CPU percentage.
          if (!oneShot && c.State.Running) await Bun.sleep(500);
          const cur = oneShot ? prev : svc.statsSample(c.Id);
          return ctx.res.json(200, { ...cur, preread: oneShot ? "0001-01-01T00:00:00Z" : prev.read, precpu_stats: oneShot ? empty : prev.cpu_stats });
        }
        const out = ctx.res.stream(200, "application/json");
        await out.write(`${JSON.stringify({ ...prev, precpu_stats: empty })}\n`);
        while (!ctx.req.closed && !out.closed) {
          await Bun.sleep(1000);
          let cur;
          try {
            cur = svc.statsSample(c.Id);
          } catch {
            break; // removed
          }
          await out.write(`${JSON.stringify({ ...cur, preread: prev.read, precpu_stats: prev.cpu_stats })}\n`);
          prev = cur;
        }
        out.end();
      },
    },
    {
      method: "POST",
      path: "/containers/prune",
      handler: async (ctx) => {
        const svc = await service();
        const f = Filters.parse(ctx.req.query.get("filters"), ["label", "until"] as const);
        const deleted: string[] = [];
        let reclaimed = 0;
        for (const c of svc.store.all()) {
          if (c.State.Running || c.State.Restarting) continue;
          if (f.has("until") && Date.parse(c.Created) >= Number(timeArg(f.get("until")[0]!)! / 1_000_000n)) continue;
          if (f.has("label") && !matches(c, f, [])) continue;
          // The writable layer's size, as dockerd counts what a prune gives back.
          const size = await svc.sizes(c.Id).then((s) => s.SizeRw, () => 0);
          await svc.remove(c.Id, {});
          deleted.push(c.Id);
          reclaimed += size;
        }
        ctx.res.json(200, { ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
      },
    },
    {
      method: "GET",
      path: "/containers/{id}/top",
      handler: async (ctx) => {
        const { svc, c } = await get(ctx);
        if (!c.State.Running) throw conflict(`Container ${c.Id} is not running`);
        ctx.res.json(200, await svc.top(c.Id, ctx.req.query.get("ps_args") || "-ef"));
      },
    },
    {
      method: "POST",
      path: "/containers/{id}/attach",
      handler: async (ctx) => {
        const { svc, c } = await get(ctx);
        const q = ctx.req.query;
        const tty = !!c.Config.Tty;
        const want = { 1: truthy(q.get("stdout")), 2: truthy(q.get("stderr")) } as Record<number, boolean>;
        let stream: ReturnType<typeof ctx.res.hijack> | undefined;
        let queue = Promise.resolve();
        const sub: OutputSubscriber = {
          data(rec: SpoolRecord) {
            if (!want[rec.stream] || !stream) return;
            const bytes = tty ? rec.data : frame(rec.stream, rec.data);
            const s = stream;
            queue = queue.then(() => s.write(bytes));
          },
          end() {
            const s = stream;
            void queue.then(() => s?.close());
          },
        };
        // logs=1 replays what was logged first (moby does, for a stopped container too); stream=0
        // ends there. Without stream the output goes live, as before.
        const logs = truthy(q.get("logs"));
        const live = q.get("stream") === null || truthy(q.get("stream"));
        if (logs && (!live || (!c.State.Running && c.State.Status !== "created"))) {
          const out = ctx.res.hijack(contentType(ctx, tty));
          for (const e of storedLogs(svc, c)) {
            const n = e.stream === "stdout" ? 1 : 2;
            if (want[n]) await out.write(tty ? e.text : frame(n, e.text));
          }
          out.close();
          return;
        }
        const handle = svc.attach(c.Id, { stdin: truthy(q.get("stdin")) }, sub);
        stream = ctx.res.hijack(contentType(ctx, tty));
        if (logs) for (const e of storedLogs(svc, c)) {
          const n = e.stream === "stdout" ? 1 : 2;
          if (want[n]) await stream.write(tty ? e.text : frame(n, e.text));
        }
        const detachSeen = detachWatcher(q.get("detachKeys") || "ctrl-p,ctrl-q"); // empty means the default, as dockerd
        stream.onData((chunk) => {
          if (detachSeen(chunk)) {
            handle.detach();
            stream!.close();
            return;
          }
          handle.input(chunk);
        });
        // The client's end of input: with StdinOnce the container's stdin ends too; otherwise this
        // attach ends (dockerd closes its output then; it is how the CLI's detach keys work).
        stream.onEnd(() => {
          if (c.Config.StdinOnce || !truthy(q.get("stdin"))) handle.endInput();
          else {
            handle.detach();
            stream!.close();
          }
        });
        stream.onClose(() => handle.detach());
      },
    },
    {
      method: "POST",
      path: "/commit",
      handler: async ({ req, res }) => {
        const svc = await service();
        const q = req.query;
        const container = q.get("container");
        if (!container) throw invalidArgument("container is required");
        const body = (await req.json()) as Record<string, unknown> | undefined;
        const id = await svc.commit(container, {
          ...(q.get("repo") ? { repo: q.get("repo")! } : {}),
          ...(q.get("tag") ? { tag: q.get("tag")! } : {}),
          ...(q.get("comment") ? { comment: q.get("comment")! } : {}),
          ...(q.get("author") ? { author: q.get("author")! } : {}),
          pause: q.get("pause") === null ? true : truthy(q.get("pause")),
          changes: q.getAll("changes").flatMap((c) => c.split("\n")).filter(Boolean),
          ...(body && typeof body === "object" ? { config: body } : {}),
        });
        res.json(201, { Id: id });
      },
    },
    {
      method: "HEAD",
      path: "/containers/{id}/archive",
      handler: async (ctx) => {
        const { svc, c } = await get(ctx);
        const path = ctx.req.query.get("path");
        if (!path) throw invalidArgument("path is required");
        const { statPath } = await import("../../container/archive.ts"); // loaded by the first cp
        const st = await namedErrors(ctx.params.id!, path, () => svc.withRoot(c.Id, path, async (root, inner) => ({ ...statPath(sys(), root, inner, path), name: posix.basename(posix.normalize(`/${path}`)) || "/" }), { action: "archive-path", path }));
        ctx.res.setHeader("X-Docker-Container-Path-Stat", Buffer.from(JSON.stringify(st)).toString("base64"));
        ctx.res.send(200);
      },
    },
    {
      method: "GET",
      path: "/containers/{id}/archive",
      handler: async (ctx) => {
        const { svc, c } = await get(ctx);
        const path = ctx.req.query.get("path");
        if (!path) throw invalidArgument("path is required");
        const { archivePath, statPath } = await import("../../container/archive.ts");
        await namedErrors(ctx.params.id!, path, () =>
          svc.withRoot(c.Id, path, async (root, inner) => {
            const st = { ...statPath(sys(), root, inner, path), name: posix.basename(posix.normalize(`/${path}`)) || "/" };
            ctx.res.setHeader("X-Docker-Container-Path-Stat", Buffer.from(JSON.stringify(st)).toString("base64"));
            const out = ctx.res.stream(200, "application/x-tar");
            for await (const chunk of archivePath(sys(), root, inner, path)) await out.write(chunk);
            out.end();
          }, { action: "archive-path", path }),
        );
      },
    },
    {
      method: "PUT",
      path: "/containers/{id}/archive",
      handler: async (ctx) => {
        const { svc, c } = await get(ctx);
        const path = ctx.req.query.get("path");
        if (!path) throw invalidArgument("path is required");
        if (c.HostConfig.ReadonlyRootfs) throw new EngineError("permission-denied", "container rootfs is marked read-only");
        const { extractTo } = await import("../../container/archive.ts");
        await namedErrors(ctx.params.id!, path, () => svc.withRoot(c.Id, path, (root, inner) => extractTo(sys(), root, inner, ctx.req.stream()), { action: "extract-to-dir", path }));
        ctx.res.send(200);
      },
    },
    {
      method: "GET",
      path: "/containers/{id}/changes",
      handler: async (ctx) => {
        const { svc, c } = await get(ctx);
        const list = await svc.changes(c.Id);
        ctx.res.json(200, list.length ? list : null);
      },
    },
    {
      method: "GET",
      path: "/containers/{id}/export",
      handler: async (ctx) => {
        const { svc, c } = await get(ctx);
        const tar = svc.exportFs(c.Id);
        const out = ctx.res.stream(200, "application/x-tar");
        for await (const chunk of tar) await out.write(chunk);
        out.end();
      },
    },
    {
      method: "POST",
      path: "/containers/{id}/exec",
      handler: async (ctx) => {
        const { svc, c } = await get(ctx);
        ctx.res.json(201, { Id: svc.execs.create(c.Id, await ctx.req.json()) });
      },
    },
    {
      method: "GET",
      path: "/exec/{id}/json",
      handler: async (ctx) => ctx.res.json(200, (await service()).execs.inspect(ctx.params.id!)),
    },
    {
      method: "POST",
      path: "/exec/{id}/resize",
      handler: async (ctx) => {
        const [h, w] = resizeArgs(ctx);
        (await service()).execs.resize(ctx.params.id!, h, w);
        ctx.res.send(200);
      },
    },
    {
      method: "POST",
      path: "/exec/{id}/start",
      handler: async (ctx) => {
        const svc = await service();
        const body = ((await ctx.req.json()) ?? {}) as { Detach?: boolean; Tty?: boolean };
        const e = svc.execs.get(ctx.params.id!);
        // The stream is raw or multiplexed as the *start* request says (moby frames by it), even
        // when the process has a terminal: docker-py starts a Tty exec with Tty false.
        const tty = body.Tty ?? !!e.config.Tty;
        if (body.Detach) {
          await svc.execs.start(e.id, { detach: true });
          return ctx.res.send(200);
        }
        // Hijack first, as dockerd does: a process that cannot start is reported in the stream,
        // with exit code 126 (missing or not executable alike) for the CLI's inspect.
        const stream = ctx.res.hijack(contentType(ctx, tty));
        let queue = Promise.resolve();
        const want = { 1: !!e.config.AttachStdout, 2: !!e.config.AttachStderr } as Record<number, boolean>;
        let run;
        try {
          run = await svc.execs.start(e.id, {
            detach: false,
            sink: {
              data(streamNo, chunk) {
                if (!want[streamNo]) return;
                const bytes = tty ? chunk : frame(streamNo, chunk);
                queue = queue.then(() => stream.write(bytes));
              },
            },
          });
        } catch (err) {
          const msg = `OCI runtime exec failed: exec failed: unable to start container process: ${messageOf(err)}: unknown\r\n`;
          await stream.write(tty ? new TextEncoder().encode(msg) : frame(1, new TextEncoder().encode(msg))); // on stdout, as dockerd writes it
          stream.close();
          return;
        }
        // Detach keys (the exec's, else ctrl-p,ctrl-q) end the stream; the process goes on.
        const detachSeen = detachWatcher(e.config.DetachKeys || "ctrl-p,ctrl-q");
        let detached = false;
        stream.onData((chunk) => {
          if (detached) return;
          if (e.config.AttachStdin && detachSeen(chunk)) {
            detached = true;
            stream.close();
            return;
          }
          run.input(chunk);
        });
        stream.onEnd(() => run.endInput());
        await Promise.race([run.done, new Promise<void>((resolve) => stream.onClose(resolve))]); // the exit code is recorded before the stream closes
        if (detached) return;
        await queue;
        stream.close();
      },
    },
    {
      method: "GET",
      path: "/containers/{id}/logs",
      handler: async (ctx) => {
        const { svc, c } = await get(ctx);
        const q = ctx.req.query;
        const want = { stdout: truthy(q.get("stdout")), stderr: truthy(q.get("stderr")) };
        if (!want.stdout && !want.stderr) throw invalidArgument("Bad parameters: you must choose at least one stream");
        if (c.HostConfig.LogConfig?.Type === "none") throw invalidArgument(`configured logging driver does not support reading`);
        const since = timeArg(q.get("since"));
        const until = timeArg(q.get("until"));
        const timestamps = truthy(q.get("timestamps"));
        const tailArg = q.get("tail") ?? "all";
        const tail = tailArg === "all" || tailArg === "" ? -1 : Number(tailArg);
        if (!Number.isInteger(tail)) throw invalidArgument(`invalid tail value: ${tailArg}`);
        const tty = !!c.Config.Tty;
        const out = ctx.res.stream(200, contentType(ctx, tty));
        const keep = (e: LogEntry) => want[e.stream] && (since === undefined || e.timeNs > since) && (until === undefined || e.timeNs <= until);
        const render = (e: LogEntry) => {
          const text = timestamps ? concat(new TextEncoder().encode(`${rfc3339Nano(e.timeNs)} `), e.text) : e.text;
          return tty ? text : frame(e.stream === "stdout" ? 1 : 2, text);
        };
        let entries = storedLogs(svc, c).filter(keep);
        if (tail >= 0) entries = tail === 0 ? [] : entries.slice(-tail);
        for (const e of entries) await out.write(render(e));
        const live = svc.io(c.Id);
        if (!truthy(q.get("follow")) || !live) return out.end();
        await new Promise<void>((resolve) => {
          let queue = Promise.resolve();
          const stop = live.pump.follow({
            entries(es) {
              for (const e of es.filter(keep)) queue = queue.then(() => out.write(render(e)));
            },
            end() {
              void queue.then(resolve);
            },
          });
          ctx.req.onClose(() => {
            stop();
            resolve();
          });
        });
        out.end();
      },
    },
  ];
}

/**
 * A missing path is reported as dockerd words it, with the path the client asked for (not the
 * one inside a mount) and the container as the client named it.
 */
async function namedErrors<T>(container: string, path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof EngineError && err.code === "not-found" && err.message.startsWith("Could not find the file")) throw notFound(`Could not find the file ${path} in container ${container}`);
    throw err;
  }
}

/** What the container's log driver stored, oldest first. */
function storedLogs(svc: ContainerService, c: ContainerRecord): LogEntry[] {
  const maxFile = c.HostConfig.LogConfig?.Config?.["max-file"];
  if (c.HostConfig.LogConfig?.Type === "none") return [];
  return c.HostConfig.LogConfig?.Type === "local" ? readLocalLog(localLogFile(svc.store.dir(c.Id)), Number(maxFile ?? LOCAL_DEFAULTS.maxFile)) : readJsonLog(c.LogPath, Number(maxFile ?? 1));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.length + b.length);
  o.set(a);
  o.set(b, a.length);
  return o;
}

/** A watcher fed each chunk of input: true once the detach sequence `keys` has been typed. */
export function detachWatcher(keys: string): (chunk: Uint8Array) => boolean {
  const seq = parseDetachKeys(keys);
  let matched = 0;
  return (chunk) => {
    if (!seq.length) return false;
    for (const b of chunk) {
      matched = b === seq[matched] ? matched + 1 : b === seq[0] ? 1 : 0;
      if (matched === seq.length) return true;
    }
    return false;
  };
}

/** Docker's detach key syntax: "ctrl-p,ctrl-q", "a", "ctrl-@"… to bytes. */
export function parseDetachKeys(s: string): number[] {
  if (!s) return [];
  return s.split(",").map((k) => {
    if (k.length === 1) return k.charCodeAt(0);
    const m = /^ctrl-([a-z@[\\\]^_])$/.exec(k);
    if (!m) throw new EngineError("invalid-argument", `Invalid detach keys (${s}) provided`);
    const ch = m[1]!;
    return ch >= "a" && ch <= "z" ? ch.charCodeAt(0) - 96 : { "@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, _: 31 }[ch]!;
  });
}
