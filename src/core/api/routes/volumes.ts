/**
 * Volume routes (Engine API 1.51): list (with filters), create, inspect, remove, prune.
 */
import { truthy } from "../http/request.ts";
import type { Volume, VolumeService } from "../../volume/volume-service.ts";
import { compareApiVersions } from "../../version.ts";
import { Filters } from "../../filters.ts";
import type { Route } from "../router.ts";

const VOLUME_FILTER_KEYS = ["dangling", "driver", "label", "name", "all"] as const;

/** A volume as the API shows it (without the engine's own fields). */
export function volumeView(v: Volume): Record<string, unknown> {
  const { Anonymous: _a, ...rest } = v;
  return rest;
}

/** The volume routes; the service is created on first use. */
export function volumeRoutes(volumes: () => Promise<VolumeService>): Route[] {
  return [
    {
      method: "GET",
      path: "/volumes",
      handler: async ({ req, res }) => {
        const svc = await volumes();
        const f = Filters.parse(req.query.get("filters"), VOLUME_FILTER_KEYS);
        const list = (await svc.listAll()).filter((v) => {
          return (
            (!f.has("name") || f.get("name").some((n) => v.Name.includes(n))) &&
            (!f.has("driver") || f.get("driver").includes(v.Driver)) &&
            f.matchKV("label", v.Labels) &&
            (!f.has("dangling") || f.get("dangling").some((d) => truthy(d) === (svc.inUse(v.Name).length === 0)))
          );
        });
        res.json(200, { Volumes: list.map(volumeView), Warnings: [] });
      },
    },
    {
      method: "POST",
      path: "/volumes/create",
      handler: async ({ req, res }) => {
        const body = ((await req.json()) ?? {}) as { Name?: string };
        // A volume created without a name is anonymous (dockerd labels it so): a prune removes it.
        res.json(201, volumeView(await (await volumes()).create(body, { anonymous: !body.Name })));
      },
    },
    {
      method: "POST",
      path: "/volumes/prune",
      handler: async ({ req, res, apiVersion }) => {
        const f = Filters.parse(req.query.get("filters"), VOLUME_FILTER_KEYS);
        // Before API 1.42 a prune removed every unused local volume; since then anonymous ones unless all=true.
        res.json(200, await (await volumes()).prune(f.get("all").some(truthy) || compareApiVersions(apiVersion, "1.42") < 0));
      },
    },
    {
      method: "GET",
      path: "/volumes/{name}",
      handler: async ({ params, res }) => res.json(200, volumeView(await (await volumes()).inspect(params.name!))),
    },
    {
      method: "DELETE",
      path: "/volumes/{name}",
      handler: async ({ req, params, res }) => {
        await (await volumes()).remove(params.name!, truthy(req.query.get("force")));
        res.send(204);
      },
    },
  ];
}
