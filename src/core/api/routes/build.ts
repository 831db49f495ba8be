/**
 * `POST /build` (the classic builder) and `POST /build/prune`: the query parsed here, the
 * context unpacked and built by the build service, its messages streamed as JSON lines.
 */
import * as v from "valibot";
import type { BuildService } from "../../build/build-service.ts";
import { invalidArgument } from "../../errors.ts";
import { type Query, truthy } from "../http/request.ts";
import type { Route, RouteContext } from "../router.ts";

const StringMap = v.record(v.string(), v.nullable(v.string()));

/** A query argument holding a JSON object of strings (`buildargs`, `labels`). */
function jsonArg(q: Query, name: string): Record<string, string | null> {
  const raw = q.get(name);
  if (!raw) return {};
  try {
    return v.parse(StringMap, JSON.parse(raw));
  } catch {
    throw invalidArgument(`invalid ${name}: want a JSON object of strings`);
  }
}

/** A repeated or comma-separated or JSON-array query argument (`cachefrom`, `extrahosts`). */
const listArg = (q: Query, name: string) =>
  q
    .getAll(name)
    .flatMap((x) => (x.startsWith("[") ? (JSON.parse(x) as string[]) : x.split(",")))
    .filter(Boolean);

async function build({ req, res }: RouteContext, svc: BuildService): Promise<void> {
  const q = req.query;
  if (q.get("remote")) throw invalidArgument("building from a remote context (remote=) is not supported; send the context as the request body");
  const buildArgs = jsonArg(q, "buildargs");
  const labels = Object.fromEntries(Object.entries(jsonArg(q, "labels")).map(([k, val]) => [k, val ?? ""]));
  const dockerfile = q.get("dockerfile") || "Dockerfile";
  // The whole context first: nothing is written before the request body is read.
  const context = await svc.unpack(req.stream(), dockerfile);
  try {
    let cacheFrom: string[];
    try {
      cacheFrom = listArg(q, "cachefrom");
    } catch {
      throw invalidArgument("invalid cachefrom: want a JSON array of image names");
    }
    const network = q.get("networkmode");
    const out = res.stream(200, "application/json");
    let chain: Promise<void> = Promise.resolve();
    const send = (obj: unknown) => {
      const line = JSON.stringify(obj) + "\n";
      chain = chain.then(() => out.write(line));
    };
    await svc.build(
      context,
      {
        dockerfile,
        tags: q.getAll("t"),
        buildArgs,
        labels,
        cacheFrom,
        extraHosts: listArg(q, "extrahosts"),
        ...(q.get("target") ? { target: q.get("target")! } : {}),
        noCache: truthy(q.get("nocache")),
        pull: truthy(q.get("pull")),
        ...(network && network !== "default" ? { network } : {}),
        quiet: truthy(q.get("q")),
      },
      send,
    );
    await chain;
    out.end();
  } finally {
    context.dispose();
  }
}

/** The build routes. */
export function buildRoutes(service: () => Promise<BuildService>): Route[] {
  return [
    { method: "POST", path: "/build", handler: async (ctx) => build(ctx, await service()) },
    { method: "POST", path: "/build/prune", handler: async ({ res }) => res.json(200, await (await service()).prune()) },
  ];
}
