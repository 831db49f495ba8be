/**
 * Network routes (Engine API 1.51): list with filters, inspect (with the attached containers),
 * create, remove, connect, disconnect, prune. Bodies are validated with valibot.
 */
import * as v from "valibot";
import type { ContainerService } from "../../container/container-service.ts";
import type { NetworkService } from "../../network/network-service.ts";
import type { NetworkRecord } from "../../network/types.ts";
import { parseOrThrow } from "../../validate.ts";
import { truthy } from "../http/request.ts";
import { Filters } from "../../filters.ts";
import type { Route } from "../router.ts";

const NETWORK_FILTER_KEYS = ["dangling", "driver", "id", "label", "name", "scope", "type"] as const;
const str = v.nullish(v.string());
const strMap = v.nullish(v.record(v.string(), v.string()));
const Pool = v.looseObject({ Subnet: v.string(), Gateway: str, IPRange: str, AuxiliaryAddresses: strMap });
const CreateBody = v.looseObject({
  Name: v.string(),
  Driver: str,
  Internal: v.nullish(v.boolean()),
  Attachable: v.nullish(v.boolean()),
  EnableIPv6: v.nullish(v.boolean()),
  CheckDuplicate: v.nullish(v.boolean()),
  IPAM: v.nullish(v.looseObject({ Driver: str, Config: v.nullish(v.array(Pool)), Options: strMap })),
  Options: strMap,
  Labels: strMap,
});
const EndpointConfig = v.nullish(
  v.looseObject({
    IPAMConfig: v.nullish(v.looseObject({ IPv4Address: str, IPv6Address: str, LinkLocalIPs: v.nullish(v.array(v.string())) })),
    Aliases: v.nullish(v.array(v.string())),
    Links: v.nullish(v.array(v.string())),
    MacAddress: str,
    DriverOpts: v.nullish(v.record(v.string(), v.string())),
  }),
);
const ConnectBody = v.looseObject({ Container: v.string(), EndpointConfig });
const DisconnectBody = v.looseObject({ Container: v.string(), Force: v.nullish(v.boolean()) });

const clean = <T extends Record<string, unknown>>(o: T) => Object.fromEntries(Object.entries(o).filter(([, x]) => x !== null && x !== undefined));

/** The network routes; the container manager (which owns the network service) loads on first use. */
export function networkRoutes(containers: () => Promise<ContainerService>): Route[] {
  const networks = async (): Promise<NetworkService> => (await containers()).networks;
  const view = (svc: NetworkService, { PoolID: _p, ...n }: NetworkRecord, withContainers: boolean) => ({ ...n, Containers: withContainers ? svc.containersOn({ ...n }) : {} });
  return [
    {
      method: "GET",
      path: "/networks",
      handler: async ({ req, res }) => {
        const svc = await networks();
        const f = Filters.parse(req.query.get("filters"), NETWORK_FILTER_KEYS);
        const builtin = (n: NetworkRecord) => ["bridge", "host", "none"].includes(n.Name);
        const list = svc.list().filter((n) => {
          return (
            (!f.has("name") || f.get("name").some((x) => n.Name.includes(x))) &&
            (!f.has("id") || f.get("id").some((x) => n.Id.startsWith(x))) &&
            (!f.has("driver") || f.get("driver").includes(n.Driver)) &&
            (!f.has("scope") || f.get("scope").includes(n.Scope)) &&
            (!f.has("type") || f.get("type").some((t) => (t === "builtin") === builtin(n))) &&
            f.matchKV("label", n.Labels) &&
            (!f.has("dangling") || f.get("dangling").some((d) => truthy(d) === (!builtin(n) && Object.keys(svc.containersOn(n)).length === 0)))
          );
        });
        res.json(
          200,
          list.map((n) => view(svc, n, false)),
        );
      },
    },
    {
      method: "POST",
      path: "/networks/create",
      handler: async ({ req, res, apiVersion }) => {
        const body = parseOrThrow(CreateBody, (await req.json()) ?? {}, "network config");
        const pools = body.IPAM?.Config?.map((p) => clean({ Subnet: p.Subnet, Gateway: p.Gateway, IPRange: p.IPRange, AuxiliaryAddresses: p.AuxiliaryAddresses ?? undefined })) as { Subnet: string }[] | undefined;
        const created = await (await networks()).create({
          Name: body.Name,
          ...(body.Driver ? { Driver: body.Driver } : {}),
          Internal: !!body.Internal,
          Attachable: !!body.Attachable,
          EnableIPv6: !!body.EnableIPv6,
          IPAM: { ...(body.IPAM?.Driver ? { Driver: body.IPAM.Driver } : {}), ...(pools ? { Config: pools } : {}), ...(body.IPAM?.Options ? { Options: body.IPAM.Options } : {}) },
          Options: body.Options ?? {},
          Labels: body.Labels ?? {},
          ...(body.CheckDuplicate !== undefined && body.CheckDuplicate !== null ? { CheckDuplicate: body.CheckDuplicate } : {}),
          apiVersion,
        });
        res.json(201, created);
      },
    },
    {
      method: "POST",
      path: "/networks/prune",
      handler: async ({ req, res }) => {
        const f = Filters.parse(req.query.get("filters"), ["label", "until"] as const);
        const keep = (n: NetworkRecord) => f.has("label") && !f.matchKV("label", n.Labels);
        res.json(200, { NetworksDeleted: await (await networks()).prune(keep) });
      },
    },
    {
      method: "GET",
      path: "/networks/{id}",
      handler: async ({ params, res }) => {
        const svc = await networks();
        res.json(200, view(svc, svc.get(params.id!), true));
      },
    },
    {
      method: "DELETE",
      path: "/networks/{id}",
      handler: async ({ params, res }) => {
        await (await networks()).remove(params.id!);
        res.send(204);
      },
    },
    {
      method: "POST",
      path: "/networks/{id}/connect",
      handler: async ({ req, params, res }) => {
        const body = parseOrThrow(ConnectBody, (await req.json()) ?? {}, "network connect");
        await (await containers()).connectNetwork(body.Container, params.id!, body.EndpointConfig ?? {});
        res.send(200);
      },
    },
    {
      method: "POST",
      path: "/networks/{id}/disconnect",
      handler: async ({ req, params, res }) => {
        const body = parseOrThrow(DisconnectBody, (await req.json()) ?? {}, "network disconnect");
        await (await containers()).disconnectNetwork(body.Container, params.id!);
        res.send(200);
      },
    },
  ];
}
