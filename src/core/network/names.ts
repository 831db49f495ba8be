/**
 * Names on networks: the embedded DNS server of user networks, the names it answers (container
 * names, aliases, links), /etc/hosts entries, legacy link environment variables, host-gateway.
 */

import { invalidArgument, messageOf } from "../errors.ts";

import { hostUpstream, startDnsServer } from "./dns-server.ts";
import { v4PoolOf } from "./ipam.ts";

import { parsePortKey } from "./port-spec.ts";

import type { NetworkRecord } from "./types.ts";

import { type NetContainer, NetworkService, PREDEFINED, splitLink } from "./network-service.ts";

/** The embedded DNS server of a user-defined network whose gateway is on this host. */
export async function startDns(svc: NetworkService, n: NetworkRecord): Promise<void> {
  const gw = v4PoolOf(n.IPAM.Config)?.Gateway;
  if (PREDEFINED.has(n.Name) || !gw || !svc.deps.drivers.get(n.Driver)?.gatewayOnHost || svc.dns.has(n.Id)) return;
  try {
    const server = await startDnsServer({
      address: gw,
      ...(svc.deps.dnsPort ? { port: svc.deps.dnsPort } : {}),
      resolve: (name, from, family) => svc.resolveName(n, name, from, family),
      upstream: () => svc.deps.dnsUpstream ?? hostUpstream(),
      log: svc.deps.log,
    });
    svc.dns.set(n.Id, server);
  } catch (err) {
    // Port 53 on the gateway taken (a host resolver bound to every address): the network works
    // without names; its containers get the daemon's or the host's name servers instead.
    svc.deps.log.warn("embedded DNS server not started", { network: n.Name, address: `${gw}:53`, error: messageOf(err) });
  }
}

/**
 * A name as seen from the container at `from` on `n` (Docker's embedded DNS answers per
 * container): its links' aliases first, then container names, short and full IDs and network
 * aliases of running containers on any user-defined network the asker is on (also with the
 * network's name as a domain, `web.mynet`). `family` 6 asks for the IPv6 address.
 */
export function resolveName(svc: NetworkService, n: NetworkRecord, name: string, from: string, family: 4 | 6 = 4): string | undefined {
  const running = svc.deps.containers().filter((c) => c.State.Running);
  const v4On = (c: NetContainer, net: string) => c.NetworkSettings?.Networks[net]?.IPAddress || undefined;
  const ipOn = (c: NetContainer, net: string) => (family === 4 ? v4On(c, net) : c.NetworkSettings?.Networks[net]?.GlobalIPv6Address || undefined);
  const asker = running.find((c) => v4On(c, n.Name) === from);
  const nets = asker ? Object.keys(asker.NetworkSettings?.Networks ?? {}).filter((k) => !PREDEFINED.has(k)) : [n.Name];
  // The asker's own hostname (and hostname.domainname) is its own address, as libnetwork answers.
  const own = asker?.Config.Hostname?.toLowerCase();
  if (asker && own && (name === own || (asker.Config.Domainname && name === `${own}.${asker.Config.Domainname.toLowerCase()}`))) {
    const ip = ipOn(asker, n.Name);
    if (ip) return ip;
  }
  for (const link of [...(asker?.HostConfig.Links ?? []), ...nets.flatMap((k) => asker?.NetworkSettings?.Networks[k]?.Links ?? [])]) {
    const [target, alias] = splitLink(link);
    if (alias.toLowerCase() !== name) continue;
    const t = running.find((c) => c.Name.replace(/^\//, "") === target || c.Id.startsWith(target));
    const ip = t && nets.map((k) => ipOn(t, k)).find(Boolean);
    if (ip) return ip;
  }
  for (const net of nets) {
    const bare = name.endsWith(`.${net.toLowerCase()}`) ? name.slice(0, -(net.length + 1)) : name;
    for (const c of running) {
      const s = c.NetworkSettings?.Networks[net];
      if (!s?.IPAddress) continue;
      const names = [c.Name.replace(/^\//, ""), c.Id.slice(0, 12), c.Id, ...(s.Aliases ?? [])].map((x) => x.toLowerCase());
      if (names.includes(bare)) return (family === 4 ? s.IPAddress : s.GlobalIPv6Address) || undefined;
    }
  }
  return undefined;
}

/**
 * Lines for the container's /etc/hosts: its own address(es) with its hostname, and the
 * `--link` targets it shares a network with (`<ip>\t<alias> <name>`, as Docker writes them).
 */
export function hostsEntries(svc: NetworkService, c: NetContainer): string[] {
  const short = c.Config.Hostname || c.Id.slice(0, 12);
  // With --domainname the full name comes first, then the short one (as Docker writes them).
  const host = c.Config.Domainname ? `${short}.${c.Config.Domainname} ${short}` : short;
  const own = Object.values(c.NetworkSettings?.Networks ?? {}).flatMap((s) => [s.IPAddress, s.GlobalIPv6Address].filter(Boolean).map((ip) => `${ip}\t${host}`));
  const links: string[] = [];
  for (const link of c.HostConfig.Links ?? []) {
    const [target, alias] = splitLink(link);
    const t = svc.deps.containers().find((x) => x.State.Running && (x.Name.replace(/^\//, "") === target || x.Id.startsWith(target)));
    const shared = t && Object.keys(c.NetworkSettings?.Networks ?? {}).find((k) => t.NetworkSettings?.Networks[k]?.IPAddress);
    if (!t || !shared) throw invalidArgument(`could not get container for ${target}`);
    const tname = t.Name.replace(/^\//, "");
    links.push(`${t.NetworkSettings!.Networks[shared]!.IPAddress}\t${alias === tname ? tname : `${alias} ${tname}`} ${t.Id.slice(0, 12)}`);
  }
  return [...own, ...links];
}

/**
 * The environment of Docker's legacy links (on the default bridge only): for each `--link
 * target:alias`, `ALIAS_NAME=/<name>/<alias>`, `ALIAS_PORT=` the lowest exposed port, one
 * `ALIAS_PORT_<port>_<PROTO>` group per exposed port, and `ALIAS_ENV_<k>` for the target's
 * environment (HOME and PATH left out, as moby does).
 */
export function linkEnv(svc: NetworkService, c: NetContainer): string[] {
  const mode = c.HostConfig.NetworkMode ?? "";
  if (mode !== "" && mode !== "default" && mode !== "bridge") return [];
  const out: string[] = [];
  for (const link of c.HostConfig.Links ?? []) {
    const [target, alias] = splitLink(link);
    const t = svc.deps.containers().find((x) => x.State.Running && (x.Name.replace(/^\//, "") === target || x.Id.startsWith(target)));
    const ip = t?.NetworkSettings?.Networks.bridge?.IPAddress;
    if (!t || !ip) continue;
    const A = alias.toUpperCase().replace(/[^A-Z0-9_]/g, "_");
    out.push(`${A}_NAME=${c.Name.startsWith("/") ? c.Name : `/${c.Name}`}/${alias}`);
    const ports = Object.keys(t.Config.ExposedPorts ?? {})
      .map((k) => parsePortKey(k))
      .sort((a, b) => a[0] - b[0] || a[1].localeCompare(b[1]));
    if (ports[0]) out.push(`${A}_PORT=${ports[0][1]}://${ip}:${ports[0][0]}`);
    for (const [port, proto] of ports) {
      const P = `${A}_PORT_${port}_${proto.toUpperCase()}`;
      out.push(`${P}=${proto}://${ip}:${port}`, `${P}_ADDR=${ip}`, `${P}_PORT=${port}`, `${P}_PROTO=${proto}`);
    }
    for (const e of t.Config.Env ?? []) {
      const i = e.indexOf("=");
      if (i <= 0) continue;
      const k = e.slice(0, i);
      if (k === "HOME" || k === "PATH") continue;
      out.push(`${A}_ENV_${k}=${e.slice(i + 1)}`);
    }
  }
  return out;
}

/** The address `host-gateway` stands for in `--add-host`: the default bridge's gateway. */
export function hostGatewayIp(svc: NetworkService): string {
  const gw = v4PoolOf(svc.find("bridge")?.IPAM.Config ?? [])?.Gateway;
  if (!gw) throw invalidArgument("unable to derive the IP value for host-gateway: the default bridge network has no gateway");
  return gw;
}

/** The embedded DNS address for a container: the gateway of its first user-defined network. */
export function dnsServerFor(svc: NetworkService, c: NetContainer): string | undefined {
  for (const s of Object.values(c.NetworkSettings?.Networks ?? {})) {
    const n = svc.networks.get(s.NetworkID);
    if (n && svc.dns.has(n.Id) && s.Gateway) return s.Gateway;
  }
  return undefined;
}
