/**
 * `GET /containers/json` and `POST /containers/prune` in the domain: which containers a query's
 * filters select, newest first, and the legacy link names others know a container by.
 */
import { invalidArgument } from "../errors.ts";
import type { Filters } from "../filters.ts";
import { splitLink } from "../network/network-service.ts";
import type { ContainerRecord } from "./container-store.ts";
import type { ContainerContext } from "./context.ts";

/** Filter keys `GET /containers/json` accepts. */
export const CONTAINER_FILTER_KEYS = ["ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task", "label", "name", "network", "publish", "since", "status", "volume"] as const;

/** `80`, `80/udp`, `8000-8002/tcp` as port keys (`80/tcp` …), as moby's expose/publish filters read them. */
function portKeys(v: string): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/.exec(v);
  if (!m) throw invalidArgument(`invalid filter value for publish/expose: ${v}`);
  const lo = Number(m[1]);
  const hi = m[2] ? Number(m[2]) : lo;
  if (hi < lo || hi - lo > 65535) throw invalidArgument(`invalid port range: ${v}`);
  return Array.from({ length: hi - lo + 1 }, (_, i) => `${lo + i}/${m[3] ?? "tcp"}`);
}

const STATUSES = ["created", "restarting", "running", "removing", "paused", "exited", "dead"];

/** Whether `c` passes every filter (`all`: the other containers, for before/since). */
export function matches(c: ContainerRecord, f: Filters, all: ContainerRecord[]): boolean {
  const ok = (key: string, test: (v: string) => boolean) => !f.has(key) || f.get(key).some(test);
  const created = (ref: string) => {
    const o = all.find((x) => x.Id === ref || x.Id.startsWith(ref) || x.Name === `/${ref}`);
    if (!o) throw invalidArgument(`No such container: ${ref}`);
    return Date.parse(o.Created);
  };
  const bindings = c.HostConfig.PortBindings ?? {};
  return (
    ok("id", (v) => c.Id.startsWith(v)) &&
    ok("name", (v) => new RegExp(v).test(c.Name.slice(1))) &&
    ok("status", (v) => {
      if (!STATUSES.includes(v)) throw invalidArgument(`invalid filter 'status=${v}'`);
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
    ok("expose", (v) => portKeys(v).some((k) => k in (c.Config.ExposedPorts ?? {}) || k in bindings)) &&
    ok("publish", (v) => portKeys(v).some((k) => k in bindings))
  );
}

/** What `GET /containers/json` asks for. */
export interface ListQuery {
  all: boolean;
  filters: Filters;
  /** At most this many (newest first); 0 or less: all. */
  limit: number;
}

/** The containers a list query selects, newest first. Without `all`: running and restarting ones (dockerd counts those as running). */
export function listContainers(ctx: ContainerContext, q: ListQuery): ContainerRecord[] {
  const all = ctx.store.all();
  const f = q.filters;
  let list = all.filter((c) => (q.all || c.State.Running || c.State.Restarting || f.has("status") || f.has("exited")) && matches(c, f, all));
  list.sort((a, b) => Date.parse(b.Created) - Date.parse(a.Created));
  if (q.limit > 0) list = list.slice(0, q.limit);
  return list;
}

/** A container's extra names: the legacy link names others know it by ("/web/db"), by container ID. */
export function linkNames(ctx: ContainerContext): Map<string, string[]> {
  const all = ctx.store.all();
  const names = new Map<string, string[]>();
  for (const p of all) {
    for (const l of (p.HostConfig.Links ?? []) as string[]) {
      const [target, alias] = splitLink(l);
      const t = all.find((x) => x.Name === `/${target}` || x.Id === target);
      if (t) names.set(t.Id, [...(names.get(t.Id) ?? []), `${p.Name}/${alias}`]);
    }
  }
  return names;
}
