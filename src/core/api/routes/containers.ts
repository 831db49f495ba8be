/**
 * Container routes (Engine API 1.51, docker-api.md §1.3–1.6): create, list, inspect, start,
 * stop, restart, kill, wait, remove, pause, update, rename, resize, prune, top, commit, the
 * archive API, changes and export. Each handler reads the request, calls the container backend
 * and writes the answer; the streams (attach, logs, stats, exec) are in container-streams.ts.
 */
import { type ContainerBackend, CONTAINER_FILTER_KEYS, type ContainerRecord } from "../../container/container-backend.ts";
import { conflict, invalidArgument, notFound } from "../../errors.ts";
import { Filters } from "../../filters.ts";
import { truthy } from "../http/request.ts";
import type { Route, RouteContext } from "../router.ts";
import { inspectOf, summaryOf } from "../views/container.ts";
import { streamRoutes } from "./container-streams.ts";
import { type Entry, type Handler, resizeArgs, timeArg } from "./query-args.ts";

/** `?t=` seconds, if given. */
const timeoutArg = (ctx: RouteContext) => {
  const t = ctx.req.query.get("t");
  return t !== null && t !== "" ? Number(t) : undefined;
};

/** `?path=`, required by the archive endpoints. */
const pathArg = (ctx: RouteContext) => {
  const path = ctx.req.query.get("path");
  if (!path) throw invalidArgument("path is required");
  return path;
};

/** Recent `GET /containers/json` bodies per backend, by query, record revision and second. */
const listCaches = new WeakMap<object, Map<string, string>>();

const create: Handler = async (ctx, b) => {
  const name = ctx.req.query.get("name") ?? undefined;
  const body = await ctx.req.json();
  const platform = ctx.req.query.get("platform") || undefined;
  ctx.res.json(201, await b.create(body, name || undefined, platform, ctx.apiVersion));
};

const list: Handler = async ({ req, res }, b) => {
  // `ps` is polled (watch, compose, monitoring): the same query on unchanged records in the
  // same second (statuses read "Up N seconds") gets the body made last time.
  const key = `${req.query.get("all")}|${req.query.get("filters")}|${req.query.get("limit")}|${req.query.get("size")}|${b.revision}|${Math.floor(Date.now() / 1000)}`;
  const cache = listCaches.get(b) ?? listCaches.set(b, new Map()).get(b)!;
  const hit = cache.get(key);
  if (hit !== undefined) return res.send(200, hit, "application/json");
  const filters = Filters.parse(req.query.get("filters"), CONTAINER_FILTER_KEYS);
  const found = b.list({ all: truthy(req.query.get("all")), filters, limit: Number(req.query.get("limit") ?? -1) });
  // A container's names include the legacy link names others know it by ("/web/db").
  const linkNames = b.linkNames();
  const summary = (c: ContainerRecord) => {
    const v = summaryOf(c);
    const extra = linkNames.get(c.Id);
    return extra ? { ...v, Names: [c.Name, ...extra] } : v;
  };
  if (!truthy(req.query.get("size"))) {
    const body = JSON.stringify(found.map(summary)) + "\n";
    if (cache.size >= 8) cache.clear();
    cache.set(key, body);
    return res.send(200, body, "application/json");
  }
  // `ps -s`: the writable layer's size (SizeRw) and, as Docker, the image's plus that (SizeRootFs).
  const out = [];
  for (const c of found) out.push({ ...summary(c), ...(await b.sizes(c.Id)) });
  res.json(200, out);
};

const inspect: Handler = async (ctx, b) => {
  const c = b.get(ctx.params.id!);
  const body = inspectOf(c, c.Driver, b.execIds(c.Id));
  if (truthy(ctx.req.query.get("size"))) Object.assign(body, await b.sizes(c.Id));
  ctx.res.json(200, body);
};

const wait: Handler = async (ctx, b) => {
  const c = b.get(ctx.params.id!);
  const done = b.wait(c.Id, ctx.req.query.get("condition") ?? "not-running");
  const out = ctx.res.stream(200, "application/json"); // headers at once: the CLI waits for them before start
  const code = await done;
  await out.write(`${JSON.stringify({ StatusCode: code, Error: null })}\n`);
  out.end();
};

const remove: Handler = async (ctx, b) => {
  const c = b.get(ctx.params.id!);
  if (truthy(ctx.req.query.get("link"))) throw conflict("Conflict, cannot remove the default link name of the container");
  await b.remove(c.Id, { force: truthy(ctx.req.query.get("force")), volumes: truthy(ctx.req.query.get("v")) });
  ctx.res.send(204);
};

/** `docker rm --link /web/db`: the link name is <parent>/<alias>. */
const removeLink: Handler = (ctx, b) => {
  if (!truthy(ctx.req.query.get("link"))) throw notFound(`No such container: ${ctx.params.name}`);
  b.removeLink(ctx.params.name!);
  ctx.res.send(204);
};

const prune: Handler = async (ctx, b) => {
  const f = Filters.parse(ctx.req.query.get("filters"), ["label", "until"] as const);
  const until = f.has("until") ? Number(timeArg(f.get("until")[0]!)! / 1_000_000n) : undefined;
  ctx.res.json(200, await b.prune(f, until));
};

const commit: Handler = async ({ req, res }, b) => {
  const q = req.query;
  const container = q.get("container");
  if (!container) throw invalidArgument("container is required");
  const body = (await req.json()) as Record<string, unknown> | undefined;
  const id = await b.commit(container, {
    ...(q.get("repo") ? { repo: q.get("repo")! } : {}),
    ...(q.get("tag") ? { tag: q.get("tag")! } : {}),
    ...(q.get("comment") ? { comment: q.get("comment")! } : {}),
    ...(q.get("author") ? { author: q.get("author")! } : {}),
    pause: q.get("pause") === null ? true : truthy(q.get("pause")),
    changes: q
      .getAll("changes")
      .flatMap((c) => c.split("\n"))
      .filter(Boolean),
    ...(body && typeof body === "object" ? { config: body } : {}),
  });
  res.json(201, { Id: id });
};

const statHeader = (stat: unknown) => Buffer.from(JSON.stringify(stat)).toString("base64");

const archiveHead: Handler = async (ctx, b) => {
  b.get(ctx.params.id!);
  const st = await b.pathStat(ctx.params.id!, pathArg(ctx));
  ctx.res.setHeader("X-Docker-Container-Path-Stat", statHeader(st));
  ctx.res.send(200);
};

const archiveGet: Handler = async (ctx, b) => {
  b.get(ctx.params.id!);
  await b.readArchive(ctx.params.id!, pathArg(ctx), (st) => {
    ctx.res.setHeader("X-Docker-Container-Path-Stat", statHeader(st));
    return ctx.res.stream(200, "application/x-tar");
  });
};

const archivePut: Handler = async (ctx, b) => {
  b.get(ctx.params.id!);
  await b.writeArchive(ctx.params.id!, pathArg(ctx), ctx.req.stream());
  ctx.res.send(200);
};

const changes: Handler = async (ctx, b) => {
  const list = await b.changes(b.get(ctx.params.id!).Id);
  ctx.res.json(200, list.length ? list : null);
};

const exportFs: Handler = async (ctx, b) => {
  const tar = b.exportFs(b.get(ctx.params.id!).Id);
  const out = ctx.res.stream(200, "application/x-tar");
  for await (const chunk of tar) await out.write(chunk);
  out.end();
};

/** Simple verbs: the backend's answer, 204 (or 304 when nothing changed). */
const verbs: Entry[] = [
  ["POST", "/containers/{id}/start", async (ctx, b) => ctx.res.send((await b.start(ctx.params.id!)) ? 204 : 304)],
  ["POST", "/containers/{id}/stop", async (ctx, b) => ctx.res.send((await b.stop(ctx.params.id!, timeoutArg(ctx), ctx.req.query.get("signal") ?? undefined)) ? 204 : 304)],
  [
    "POST",
    "/containers/{id}/restart",
    async (ctx, b) => {
      await b.restart(b.get(ctx.params.id!).Id, timeoutArg(ctx), ctx.req.query.get("signal") ?? undefined);
      ctx.res.send(204);
    },
  ],
  [
    "POST",
    "/containers/{id}/kill",
    async (ctx, b) => {
      await b.kill(ctx.params.id!, ctx.req.query.get("signal") || "SIGKILL");
      ctx.res.send(204);
    },
  ],
  [
    "POST",
    "/containers/{id}/pause",
    (ctx, b) => {
      b.pause(ctx.params.id!, true);
      ctx.res.send(204);
    },
  ],
  [
    "POST",
    "/containers/{id}/unpause",
    (ctx, b) => {
      b.pause(ctx.params.id!, false);
      ctx.res.send(204);
    },
  ],
  ["POST", "/containers/{id}/update", async (ctx, b) => ctx.res.json(200, b.update(b.get(ctx.params.id!).Id, await ctx.req.json(), ctx.apiVersion))],
  [
    "POST",
    "/containers/{id}/rename",
    (ctx, b) => {
      const name = ctx.req.query.get("name");
      if (!name) throw invalidArgument("Neither old nor new names may be empty");
      b.rename(ctx.params.id!, name);
      ctx.res.send(204);
    },
  ],
  [
    "POST",
    "/containers/{id}/resize",
    (ctx, b) => {
      const [h, w] = resizeArgs(ctx);
      b.resize(ctx.params.id!, h, w);
      ctx.res.send(200);
    },
  ],
  ["GET", "/containers/{id}/top", async (ctx, b) => ctx.res.json(200, await b.top(ctx.params.id!, ctx.req.query.get("ps_args") || "-ef"))],
];

/** The container routes, in the router's order. */
const TABLE: Entry[] = [
  ["POST", "/containers/create", create],
  ["GET", "/containers/json", list],
  ["GET", "/containers/{id}/json", inspect],
  ...verbs,
  ["POST", "/containers/{id}/wait", wait],
  ["DELETE", "/containers/{id}", remove],
  ["DELETE", "/containers/{name:.*}", removeLink],
  ["POST", "/containers/prune", prune],
  ["POST", "/commit", commit],
  ["HEAD", "/containers/{id}/archive", archiveHead],
  ["GET", "/containers/{id}/archive", archiveGet],
  ["PUT", "/containers/{id}/archive", archivePut],
  ["GET", "/containers/{id}/changes", changes],
  ["GET", "/containers/{id}/export", exportFs],
];

/** The container routes (and the streaming ones), each calling `backend()`. */
export function containerRoutes(backend: () => Promise<ContainerBackend>): Route[] {
  const routes = [...TABLE, ...streamRoutes];
  return routes.map(([method, path, handler]) => ({ method, path, handler: async (ctx: RouteContext) => handler(ctx, await backend()) }));
}
