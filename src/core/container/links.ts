/**
 * A container's place on networks: connect and disconnect (a running one's /etc/hosts follows),
 * and the removal of a legacy link (`docker rm --link`).
 */
import { conflict, notFound } from "../errors.ts";
import { splitLink } from "../network/network-service.ts";
import type { ContainerRecord } from "./container-store.ts";
import type { ContainerContext } from "./context.ts";
import { writeEtcFiles } from "./etc-files.ts";

/** The endpoint settings of `POST /networks/{id}/connect`. */
export interface ConnectConfig {
  IPAMConfig?: { IPv4Address?: string | null | undefined; IPv6Address?: string | null | undefined; LinkLocalIPs?: string[] | null | undefined } | null;
  Aliases?: string[] | null;
  Links?: string[] | null;
  MacAddress?: string | null;
  DriverOpts?: Record<string, string> | null;
}

/** Connect a container to a network (a running one joins at once; its /etc/hosts gains the address). */
export async function connectNetwork(ctx: ContainerContext, ref: string, network: string, cfg: ConnectConfig): Promise<void> {
  const c = ctx.store.get(ref);
  const ipv4 = cfg.IPAMConfig?.IPv4Address;
  const ipv6 = cfg.IPAMConfig?.IPv6Address;
  const ll = cfg.IPAMConfig?.LinkLocalIPs;
  const ipam = { ...(ipv4 ? { IPv4Address: ipv4 } : {}), ...(ipv6 ? { IPv6Address: ipv6 } : {}), ...(ll?.length ? { LinkLocalIPs: ll } : {}) };
  await ctx.deps.networks.connect(c, network, { ...(Object.keys(ipam).length ? { IPAMConfig: ipam } : {}), Aliases: cfg.Aliases ?? null, Links: cfg.Links ?? null, MacAddress: cfg.MacAddress ?? null, DriverOpts: cfg.DriverOpts ?? null });
  if (c.State.Running) writeEtcFiles(ctx, c);
  ctx.store.save(c);
}

/** Disconnect a container from a network. */
export async function disconnectNetwork(ctx: ContainerContext, ref: string, network: string): Promise<void> {
  const c = ctx.store.get(ref);
  await ctx.deps.networks.disconnect(c, network);
  ctx.store.save(c);
}

/**
 * `DELETE /containers/<parent>/<alias>?link=1`: drop the legacy link `alias` from `parent`
 * (moby's rmLink). The linked container itself stays.
 */
export function removeLink(ctx: ContainerContext, linkName: string): void {
  const name = linkName.replace(/^\/+/, "/").startsWith("/") ? linkName.replace(/^\/+/, "/") : `/${linkName}`;
  const i = name.lastIndexOf("/");
  const parentName = name.slice(0, i);
  const alias = name.slice(i + 1);
  if (!parentName) throw conflict("Conflict, cannot remove the default link name of the container");
  let parent: ContainerRecord;
  try {
    parent = ctx.store.get(parentName.slice(1));
  } catch {
    throw notFound(`Cannot get parent ${parentName} for link name ${name}`);
  }
  const links = (parent.HostConfig.Links ?? []) as string[];
  const kept = links.filter((l) => splitLink(l)[1] !== alias);
  if (kept.length === links.length) throw notFound(`No such container: ${name}`);
  parent.HostConfig.Links = kept.length ? kept : null;
  ctx.store.save(parent);
  if (parent.State.Running) writeEtcFiles(ctx, parent);
}
