/**
 * Image routes: list, inspect, history, tag, remove, load, save (Engine API 1.51, §1.3).
 */
import { truthy } from "../http/request.ts";
import * as v from "valibot";
import { EngineError, invalidArgument, messageOf } from "../../errors.ts";
import { decodeRegistryAuth } from "../../registry/auth.ts";
import { parseOrThrow } from "../../validate.ts";
import type { ImageService, Progress } from "../../image/image-service.ts";
import { parseWithDefaultTag } from "../../image/reference.ts";
import { Filters } from "../../filters.ts";
import type { Route } from "../router.ts";

const AuthBody = v.looseObject({ username: v.optional(v.string()), password: v.optional(v.string()), serveraddress: v.optional(v.string()), email: v.optional(v.string()) });

/**
 * Run `work` with a progress callback writing Docker's NDJSON lines; an error after the stream
 * started becomes an `errorDetail` line (the status is already 200), as dockerd does.
 */
async function streamProgress(res: Parameters<Route["handler"]>[0]["res"], work: (progress: Progress) => Promise<unknown>): Promise<void> {
  // The response starts with the first progress line: a failure before it (an unknown
  // registry, a refused connection) is an HTTP error, as dockerd answers; after it, a line.
  let out: ReturnType<typeof res.stream> | undefined;
  let chain: Promise<void> = Promise.resolve();
  const progress: Progress = (m) => {
    const line = JSON.stringify(m) + "\n";
    const o = (out ??= res.stream(200, "application/json"));
    chain = chain.then(() => o.write(line));
  };
  try {
    await work(progress);
  } catch (err) {
    if (!out) throw err instanceof EngineError ? err : new EngineError("internal", messageOf(err));
    const message = messageOf(err);
    progress({ errorDetail: { message }, error: message } as Parameters<Progress>[0]);
  }
  await chain;
  (out ?? res.stream(200, "application/json")).end();
}

/** Filter keys `GET /images/json` accepts. */
const IMAGE_FILTER_KEYS = ["before", "dangling", "label", "reference", "since", "until"] as const;

/**
 * The image routes. The service is obtained per request (`images()`), so the daemon can load the
 * image subsystem on first use and keep an idle daemon small.
 */
export function imageRoutes(images: () => Promise<ImageService>, diskUsage: () => Promise<{ Containers: unknown[]; Volumes: unknown[] }> = async () => ({ Containers: [], Volumes: [] })): Route[] {
  return [...distributionRoutes(images), ...localRoutes(images, diskUsage)];
}

/** The service, with the built-in hello-world image provided if a name asks for it. */
function withBuiltin(images: () => Promise<ImageService>): (...names: string[]) => Promise<ImageService> {
  return async (...names) => {
    const svc = await images();
    for (const n of names) await svc.provideBuiltin(n);
    return svc;
  };
}

/** List, pull (create), push and login. */
function distributionRoutes(images: () => Promise<ImageService>): Route[] {
  return [
    {
      method: "GET",
      path: "/images/json",
      handler: async ({ req, res }) => res.json(200, (await images()).list(Filters.parse(req.query.get("filters"), IMAGE_FILTER_KEYS), truthy(req.query.get("all")))),
    },
    {
      method: "GET",
      path: "/distribution/{name:.*}/json",
      handler: async ({ req, res, params }) => {
        const auth = decodeRegistryAuth(req.headers.get("x-registry-auth"));
        res.json(200, await (await images()).distributionInspect(params.name!, auth));
      },
    },
    {
      method: "POST",
      path: "/images/create",
      handler: async ({ req, res }) => {
        const src = req.query.get("fromSrc");
        const from = req.query.get("fromImage");
        if (src === null && from !== null) {
          const tag = req.query.get("tag");
          const name = tag ? `${from}${tag.includes(":") ? "@" : ":"}${tag}` : from;
          const ref = parseWithDefaultTag(name); // parsed once, here; the service, the puller and the store take it typed
          const svc = await images();
          if (!svc.isBuiltin(ref)) {
            const auth = decodeRegistryAuth(req.headers.get("x-registry-auth"));
            const platform = req.query.get("platform");
            await streamProgress(res, (progress) => svc.pull(ref, { ...(auth ? { auth } : {}), ...(platform ? { platform } : {}), progress }));
            return;
          }
          const created = await svc.provideBuiltin(name);
          const id = svc.inspect("hello-world:latest").Id as string;
          const out = res.stream(200, "application/json");
          await out.write(JSON.stringify({ status: "Pulling from library/hello-world", id: "latest" }) + "\n");
          await out.write(JSON.stringify({ status: `Digest: ${id}` }) + "\n");
          await out.write(JSON.stringify({ status: created ? "Status: Downloaded newer image for hello-world:latest" : "Status: Image is up to date for hello-world:latest" }) + "\n");
          out.end();
          return;
        }
        if (src === null) throw invalidArgument("fromImage or fromSrc is required");
        if (src !== "-") throw invalidArgument("only fromSrc=- (the request body) is supported for import");
        const id = await (await images()).importRootfs(req.stream(), {
          ...(req.query.get("repo") ? { repo: req.query.get("repo")! } : {}),
          ...(req.query.get("tag") ? { tag: req.query.get("tag")! } : {}),
          ...(req.query.get("message") ? { message: req.query.get("message")! } : {}),
          ...(req.query.get("platform") ? { platform: req.query.get("platform")! } : {}),
          changes: req.query.getAll("changes"),
        });
        const out = res.stream(200, "application/json");
        await out.write(JSON.stringify({ status: id }) + "\n");
        out.end();
      },
    },
    {
      method: "POST",
      path: "/images/{name:.*}/push",
      handler: async ({ req, res, params }) => {
        const tag = req.query.get("tag");
        const name = tag ? `${params.name!}:${tag}` : params.name!;
        const svc = await images();
        const auth = decodeRegistryAuth(req.headers.get("x-registry-auth"));
        svc.inspect(name); // a missing image is a 404 before any output
        // Layers stored uncompressed go up gzip-compressed, or zstd with compression=zstd (Bunker's extension).
        const compression = req.query.get("compression") || "gzip";
        if (compression !== "gzip" && compression !== "zstd") throw invalidArgument(`invalid compression ${compression}: gzip or zstd`);
        await streamProgress(res, (progress) => svc.push(name, { ...(auth ? { auth } : {}), progress, compression }));
      },
    },
    {
      method: "POST",
      path: "/auth",
      handler: async ({ req, res }) => {
        const body = parseOrThrow(AuthBody, (await req.json()) ?? {}, "auth config");
        await (await images()).login({ username: body.username ?? "", password: body.password ?? "", serveraddress: body.serveraddress ?? "" });
        res.json(200, { Status: "Login Succeeded", IdentityToken: "" });
      },
    },
  ];
}

/** Search, prune, disk usage, save, load, inspect, history, tag, remove. */
function localRoutes(images: () => Promise<ImageService>, diskUsage: () => Promise<{ Containers: unknown[]; Volumes: unknown[] }>): Route[] {
  const builtin = withBuiltin(images);
  const save = async (names: string[], res: Parameters<Route["handler"]>[0]["res"]) => {
    if (!names.length) throw invalidArgument("no image names given");
    const tar = (await builtin(...names)).save(names); // resolves every name before the response starts
    const out = res.stream(200, "application/x-tar");
    for await (const chunk of tar) await out.write(chunk);
    out.end();
  };
  return [
    {
      method: "GET",
      path: "/images/search",
      handler: async ({ req, res }) => {
        const term = req.query.get("term");
        if (!term) throw invalidArgument("term is required");
        res.json(200, await (await images()).search(term, Number(req.query.get("limit") ?? 25) || 25));
      },
    },
    {
      method: "POST",
      path: "/images/prune",
      handler: async ({ req, res }) => res.json(200, await (await images()).prune(Filters.parse(req.query.get("filters"), ["dangling", "label", "until"]))),
    },
    {
      method: "GET",
      path: "/system/df",
      handler: async ({ res }) => {
        const svc = await images();
        const usage = await diskUsage();
        // How many containers use each image: `system df` counts those images as active.
        const byImage = new Map<string, number>();
        for (const c of usage.Containers as { ImageID?: string }[]) if (c.ImageID) byImage.set(c.ImageID, (byImage.get(c.ImageID) ?? 0) + 1);
        res.json(200, { ...svc.diskUsage(byImage), ...usage, BuildCache: [...svc.buildCacheUsage(), ...((usage as { BuildCache?: unknown[] }).BuildCache ?? [])] });
      },
    },
    { method: "GET", path: "/images/get", handler: ({ req, res }) => save(req.query.getAll("names"), res) },
    {
      method: "POST",
      path: "/images/load",
      handler: async ({ req, res }) => {
        const messages: string[] = [];
        let failure: string | undefined;
        // The whole body is consumed before any output (moby does the same); what cannot be
        // loaded (not a tar, a broken archive) is reported in the stream, as dockerd does.
        try {
          for await (const m of (await images()).load(req.stream())) messages.push(m);
        } catch (err) {
          failure = messageOf(err);
        }
        const out = res.stream(200, "application/json");
        for (const m of messages) await out.write(JSON.stringify({ stream: m + "\n" }) + "\n");
        if (failure !== undefined) await out.write(JSON.stringify({ errorDetail: { message: failure }, error: failure }) + "\n");
        out.end();
      },
    },
    { method: "GET", path: "/images/{name:.*}/json", handler: async ({ res, params }) => res.json(200, (await builtin(params.name!)).inspect(params.name!)) },
    { method: "GET", path: "/images/{name:.*}/history", handler: async ({ res, params }) => res.json(200, (await builtin(params.name!)).history(params.name!)) },
    { method: "GET", path: "/images/{name:.*}/get", handler: ({ res, params }) => save([params.name!], res) },
    {
      method: "POST",
      path: "/images/{name:.*}/tag",
      handler: async ({ req, res, params }) => {
        const repo = req.query.get("repo");
        if (!repo) throw invalidArgument("repository name (repo) is required");
        (await builtin(params.name!)).tag(params.name!, repo, req.query.get("tag") || undefined);
        res.send(201, "");
      },
    },
    {
      method: "DELETE",
      path: "/images/{name:.*}",
      handler: async ({ req, res, params }) => res.json(200, await (await images()).remove(params.name!, truthy(req.query.get("force")))),
    },
  ];
}
