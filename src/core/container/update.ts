/**
 * `POST /containers/{id}/update`: new limits and restart policy, checked by the same rules as a
 * create, written to a running container's cgroup at once (the same `resourcesOf` as its start).
 */
import { conflict } from "../errors.ts";
import { foldKeys, parseOrThrow } from "../validate.ts";
import { compareApiVersions } from "../version.ts";
import type { ContainerContext } from "./context.ts";
import { HostConfigSchema } from "./create-config.ts";
import { validateResources } from "./host-config-rules.ts";
import { resourcesOf } from "./resources.ts";

/** The host config fields an update may change besides the restart policy. */
const UPDATABLE = ["Memory", "MemorySwap", "MemoryReservation", "CpuShares", "NanoCpus", "CpuQuota", "CpuPeriod", "CpusetCpus", "CpusetMems", "PidsLimit", "BlkioWeight", "CpuRealtimePeriod", "CpuRealtimeRuntime"] as const;

/** `POST /containers/{id}/update`: new limits (applied at once when running) and restart policy. */
export function updateContainer(ctx: ContainerContext, ref: string, raw: unknown, apiVersion = "1.51"): { Warnings: string[] } {
  const c = ctx.store.get(ref);
  const body = parseOrThrow(HostConfigSchema, foldKeys(raw ?? {}, HostConfigSchema.entries), "update config");
  // Before API 1.40 an update did not touch the pids limit (moby ignores it for old clients).
  if (compareApiVersions(apiVersion, "1.40") < 0) delete body.PidsLimit;
  // 0 or a negative limit unsets it: shown as 0, "max" in the cgroup.
  const unsetPids = body.PidsLimit !== undefined && body.PidsLimit !== null && body.PidsLimit <= 0;
  if (unsetPids) body.PidsLimit = 0;
  const next = { ...c.HostConfig };
  for (const k of UPDATABLE) if (body[k] !== undefined && body[k] !== null) (next as Record<string, unknown>)[k] = body[k];
  if (body.RestartPolicy?.Name !== undefined && body.RestartPolicy.Name !== null) {
    if (c.HostConfig.AutoRemove && body.RestartPolicy.Name && body.RestartPolicy.Name !== "no") throw conflict("Restart policy cannot be updated because AutoRemove is enabled for the container");
    next.RestartPolicy = body.RestartPolicy;
  }
  validateResources(next);
  if (c.State.Running) {
    const resources = resourcesOf(next); // without devices: an update does not change the device rules
    if (unsetPids) resources.pids = { limit: -1 };
    ctx.deps.runtime.update(c.Id, resources);
  }
  c.HostConfig = next;
  ctx.store.save(c);
  ctx.publish(c, "update");
  return { Warnings: [] };
}
