/**
 * Containers on networks (libnetwork's endpoint and sandbox side): the networks a new container
 * asks for, its published ports, addresses allocated and released, its namespace joined to each
 * network by the network's driver and left again, connect and disconnect while it runs.
 */

import { ignore, ignored } from "../log.ts";
import { randomHex } from "../bytes.ts";
import { EngineError, invalidArgument, messageOf, notFound } from "../errors.ts";

import { O_CLOEXEC, O_RDONLY } from "../sys/sys.ts";

import { allocate, allocate6, hostRoutes, release, v4PoolOf, v6PoolOf } from "./ipam.ts";

import { formatIPv4, parseCidr, parseIPv4 } from "./ipv4.ts";
import { parseCidr6, parseIPv6 } from "./ipv6.ts";
import { parsePortKey } from "./port-spec.ts";

import { Rtnl } from "./rtnl.ts";
import type { Endpoint, NetworkDriver, NetworkRecord, PortBinding } from "./types.ts";

import { type ContainerNetworking, emptySettings, type EndpointRequest, type EndpointSettings, type NetContainer, NetworkService, macOf, PREDEFINED } from "./network-service.ts";

/**
 * The initial networking of a container being created: its NetworkMode network (default
 * `bridge`) plus the other networks of `EndpointsConfig`, checked to exist.
 */
export function initialNetworking(svc: NetworkService, mode: string, endpoints: Record<string, EndpointRequest | null | undefined>): ContainerNetworking {
  const nets: Record<string, EndpointSettings> = {};
  if (mode.startsWith("container:")) return { Networks: nets, Ports: {}, SandboxKey: "" };
  // The CLI names the mode's network "default" when the user gave none.
  const wanted = [mode, ...Object.keys(endpoints).filter((k) => k !== mode && k !== "default")];
  for (const ref of wanted) {
    const n = svc.get(ref);
    const cfg = endpoints[ref] ?? endpoints[n.Name] ?? (ref === mode ? endpoints["default"] : undefined) ?? {};
    if (cfg.IPAMConfig?.IPv4Address && (PREDEFINED.has(n.Name) || !n.IPAM.Config.length)) throw invalidArgument("user specified IP address is supported on user defined networks only");
    if (cfg.IPAMConfig?.IPv4Address) parseIPv4(cfg.IPAMConfig.IPv4Address);
    if (cfg.IPAMConfig?.IPv6Address) {
      if (PREDEFINED.has(n.Name) || !v6PoolOf(n.IPAM.Config)) throw invalidArgument("user specified IP address is supported on user defined networks only");
      parseIPv6(cfg.IPAMConfig.IPv6Address);
    }
    if (cfg.Aliases?.length && n.Name === "bridge") throw invalidArgument("network-scoped aliases are only supported for user-defined networks");
    nets[n.Name] = emptySettings(n.Id, cfg);
  }
  if ((mode === "host" || mode === "none") && wanted.length > 1) throw invalidArgument(`container cannot be disconnected from host network or connected to host network`);
  return { Networks: nets, Ports: {}, SandboxKey: "" };
}

/** The ports a container publishes, from PortBindings (and ExposedPorts with -P). */
export function portsOf(svc: NetworkService, c: NetContainer): PortBinding[] {
  const out: PortBinding[] = [];
  const bindings = { ...(c.HostConfig.PortBindings ?? {}) };
  if (c.HostConfig.PublishAllPorts) for (const k of Object.keys(c.Config.ExposedPorts ?? {})) if (!bindings[k]?.length) bindings[k] = [{ HostIp: "", HostPort: "" }];
  for (const [key, list] of Object.entries(bindings)) {
    const [port, proto] = parsePortKey(key);
    for (const b of list ?? []) {
      const hostPort = b.HostPort ? Number(b.HostPort.split("-")[0]) : 0;
      if (!Number.isInteger(hostPort) || hostPort < 0 || hostPort > 65535) throw invalidArgument(`invalid host port: ${b.HostPort}`);
      if (b.HostIp) parseIPv4(b.HostIp);
      out.push({ proto, containerPort: port, hostIp: b.HostIp || "0.0.0.0", hostPort });
    }
  }
  return out;
}

export function endpointOf(svc: NetworkService, c: NetContainer, n: NetworkRecord, s: EndpointSettings, ports: PortBinding[] = svc.recordedPorts(c)): Endpoint {
  const v6 = s.GlobalIPv6Address ? { ip6: s.GlobalIPv6Address, prefix6: s.GlobalIPv6PrefixLen, gateway6: s.IPv6Gateway } : {};
  return { id: s.EndpointID, containerId: c.Id, ip: s.IPAddress, prefix: s.IPPrefixLen, gateway: s.Gateway, mac: s.MacAddress, ports, ...v6 };
}

export function recordedPorts(svc: NetworkService, c: NetContainer): PortBinding[] {
  const out: PortBinding[] = [];
  for (const [key, list] of Object.entries(c.NetworkSettings?.Ports ?? {})) {
    const [port, proto = "tcp"] = key.split("/");
    for (const b of list ?? []) out.push({ proto: proto as "tcp" | "udp", containerPort: Number(port), hostIp: b.HostIp, hostPort: Number(b.HostPort) });
  }
  return out;
}

/** Allocate addresses for each network of a starting container (filled into its settings). */
export async function allocateEndpoints(svc: NetworkService, c: NetContainer): Promise<void> {
  for (const s of Object.values(c.NetworkSettings?.Networks ?? {})) {
    const n = svc.networks.get(s.NetworkID);
    if (!n) throw notFound(`network ${s.NetworkID} not found`);
    const pool = v4PoolOf(n.IPAM.Config);
    if (!pool || n.Driver === "host" || n.Driver === "null") continue;
    s.EndpointID = randomHex(32);
    try {
      if (n.PoolID) s.IPAddress = (await (await svc.ipamFor(n.IPAM.Driver)).requestAddress(n.PoolID, s.IPAMConfig?.IPv4Address ?? "")).split("/")[0]!;
      else if (s.IPAMConfig?.IPv4Address || !s.LastIPAddress) s.IPAddress = allocate(pool, svc.poolOf(n), s.EndpointID, s.IPAMConfig?.IPv4Address);
      else {
        // The last run's address again when it is still free (another container may have it now).
        try {
          s.IPAddress = allocate(pool, svc.poolOf(n), s.EndpointID, s.LastIPAddress);
        } catch (err) {
          ignored("the last address is taken: a new one", err);
          s.IPAddress = allocate(pool, svc.poolOf(n), s.EndpointID);
        }
      }
      const pool6 = n.EnableIPv6 ? v6PoolOf(n.IPAM.Config) : undefined;
      if (pool6) {
        s.GlobalIPv6Address = allocate6(pool6, svc.poolOf(n, 6), s.EndpointID, s.IPAMConfig?.IPv6Address);
        s.GlobalIPv6PrefixLen = parseCidr6(pool6.Subnet).prefix;
        s.IPv6Gateway = pool6.Gateway ?? "";
      }
    } catch (err) {
      s.EndpointID = "";
      await svc.release(c);
      throw err;
    }
    s.IPPrefixLen = parseCidr(pool.Subnet).prefix;
    s.Gateway = pool.Gateway ?? "";
    s.MacAddress = s.RequestedMac ?? macOf(s.IPAddress);
    s.DNSNames = n.Name === "bridge" ? null : [c.Name.replace(/^\//, ""), c.Id.slice(0, 12), ...(s.Aliases ?? [])];
  }
}

/** Give back a container's addresses (each exactly once) and clear its endpoint fields. */
export async function releaseEndpoints(svc: NetworkService, c: NetContainer): Promise<void> {
  for (const s of Object.values(c.NetworkSettings?.Networks ?? {})) {
    const n = svc.networks.get(s.NetworkID);
    if (n?.PoolID && s.IPAddress && s.EndpointID) {
      const ipam = await svc.ipamFor(n.IPAM.Driver).catch(ignore("remote IPAM driver not reachable: the built-in IPAM answers"));
      await ipam?.releaseAddress(n.PoolID, s.IPAddress).catch((err) => svc.deps.log.warn("IPAM release failed", { network: n.Name, error: messageOf(err) }));
    } else if (n && s.IPAddress) release(svc.poolOf(n), s.IPAddress, s.EndpointID);
    if (n && s.GlobalIPv6Address) release(svc.poolOf(n, 6), s.GlobalIPv6Address, s.EndpointID);
    if (s.IPAddress && !n?.PoolID) s.LastIPAddress = s.IPAddress;
    Object.assign(s, { EndpointID: "", IPAddress: "", IPPrefixLen: 0, Gateway: "", MacAddress: s.RequestedMac ?? "", HostIf: undefined, IfName: undefined, DNSNames: null, GlobalIPv6Address: "", GlobalIPv6PrefixLen: 0, IPv6Gateway: "" });
  }
  if (c.NetworkSettings) {
    c.NetworkSettings.SandboxKey = "";
    for (const k of Object.keys(c.NetworkSettings.Ports)) c.NetworkSettings.Ports[k] = null;
  }
}

/**
 * Connect a created container (its init waiting before exec as `pid`): loopback up, then each
 * endpoint joined. On failure every joined endpoint is left again and the error thrown.
 */
export async function attach(svc: NetworkService, c: NetContainer, pid: number): Promise<void> {
  const mode = c.HostConfig.NetworkMode || "bridge";
  if (mode === "host" || mode.startsWith("container:")) return;
  const sys = svc.deps.sys;
  const nsPath = NetworkService.netnsPath(pid);
  const t0 = performance.now();
  const nsfd = sys.openat2(-100, nsPath, O_RDONLY | O_CLOEXEC, 0, 0);
  const joined: [NetworkRecord, EndpointSettings, NetworkDriver][] = [];
  try {
    const inner = Rtnl.open(sys, nsfd);
    try {
      inner.setUp(1, "lo");
    } finally {
      inner.close();
    }
    let ports = c.PublishedPorts ?? svc.portsOf(c); // records from before PublishedPorts: parsed here
    let index = 0;
    c.NetworkSettings!.Ports = exposedView(c);
    for (const [, s] of Object.entries(c.NetworkSettings?.Networks ?? {})) {
      const n = svc.networks.get(s.NetworkID)!;
      if (!s.IPAddress) continue;
      const d = await svc.driverFor(n.Driver);
      const ifname = `eth${index}`;
      const res = await d.join(n, svc.endpointOf(c, n, s, ports), { netnsFd: nsfd, key: nsPath, ifname, defaultRoute: index++ === 0 });
      joined.push([n, s, d]);
      s.IfName = ifname;
      if (res.hostIf) s.HostIf = res.hostIf;
      if (ports.length) {
        c.NetworkSettings!.Ports = portsView(c, res.ports);
        ports = []; // published once, on the first network
      }
    }
    c.NetworkSettings!.SandboxKey = nsPath;
    for (const [n] of joined) svc.publish(n, "connect", { container: c.Id });
    svc.deps.log.debug("network attach", { container: c.Id.slice(0, 12), ms: (performance.now() - t0).toFixed(2) });
  } catch (err) {
    for (const [n, s, d] of joined.reverse()) await d.leave(n, svc.endpointOf(c, n, s), s.HostIf).catch(ignore("undo of a join: leave failed"));
    throw err;
  } finally {
    sys.close(nsfd);
  }
}

/** Disconnect a container that stopped (or failed to start) and release its addresses. */
export async function detach(svc: NetworkService, c: NetContainer): Promise<void> {
  const t0 = performance.now();
  for (const s of Object.values(c.NetworkSettings?.Networks ?? {})) {
    const n = svc.networks.get(s.NetworkID);
    if (!n || !s.EndpointID) continue;
    const d = await svc.driverFor(n.Driver).catch(ignore("network driver gone: nothing to leave"));
    await d?.leave(n, svc.endpointOf(c, n, s), s.HostIf, { sandboxGone: true }).catch((err) => svc.deps.log.warn("endpoint leave failed", { container: c.Id, network: n.Name, error: messageOf(err) }));
    if (s.HostIf !== undefined || c.State.Running) svc.publish(n, "disconnect", { container: c.Id });
  }
  await svc.release(c);
  svc.deps.log.debug("network detach", { container: c.Id.slice(0, 12), ms: (performance.now() - t0).toFixed(2) });
}

/** `POST /networks/{id}/connect`: add a network; a running container joins it at once. */
export async function connect(svc: NetworkService, c: NetContainer, ref: string, cfg: EndpointRequest = {}): Promise<void> {
  const n = svc.get(ref);
  const nets = (c.NetworkSettings ??= { Networks: {}, Ports: {}, SandboxKey: "" }).Networks;
  const mode = c.HostConfig.NetworkMode ?? "";
  if (mode === "host" || mode === "none" || mode.startsWith("container:") || n.Driver === "host" || n.Driver === "null") throw invalidArgument(`container cannot be disconnected from host network or connected to host network`);
  if (nets[n.Name]) throw new EngineError("permission-denied", `endpoint with name ${c.Name.replace(/^\//, "")} already exists in network ${n.Name}`);
  const s = (nets[n.Name] = emptySettings(n.Id, cfg));
  if (!c.State.Running) return;
  const one = { ...c, NetworkSettings: { ...c.NetworkSettings, Networks: { [n.Name]: s } } };
  try {
    await svc.allocate(one);
    const nsfd = svc.deps.sys.openat2(-100, NetworkService.netnsPath(c.State.Pid), O_RDONLY | O_CLOEXEC, 0, 0);
    try {
      const ifname = freeIfName(nets, s);
      const res = await (await svc.driverFor(n.Driver)).join(n, svc.endpointOf(c, n, s, []), { netnsFd: nsfd, key: NetworkService.netnsPath(c.State.Pid), ifname, defaultRoute: false });
      s.IfName = ifname;
      if (res.hostIf) s.HostIf = res.hostIf;
    } finally {
      svc.deps.sys.close(nsfd);
    }
  } catch (err) {
    await svc.release(one);
    delete nets[n.Name];
    throw err;
  }
  svc.publish(n, "connect", { container: c.Id });
}

/** `POST /networks/{id}/disconnect`. */
export async function disconnect(svc: NetworkService, c: NetContainer, ref: string): Promise<void> {
  const n = svc.get(ref);
  const nets = c.NetworkSettings?.Networks ?? {};
  const s = nets[n.Name];
  if (!s) throw new EngineError("permission-denied", `container ${c.Id} is not connected to network ${n.Name}`);
  if (s.EndpointID) {
    const d = await svc.driverFor(n.Driver).catch(ignore("network driver gone: nothing to leave"));
    // A running container's interface on this network is removed from its namespace.
    const nsfd = c.State.Running && s.IfName ? svc.deps.sys.openat2(-100, NetworkService.netnsPath(c.State.Pid), O_RDONLY | O_CLOEXEC, 0, 0) : undefined;
    try {
      await d?.leave(n, svc.endpointOf(c, n, s, []), s.HostIf, nsfd !== undefined ? { sandbox: { netnsFd: nsfd, ifname: s.IfName! } } : {});
    } finally {
      if (nsfd !== undefined) svc.deps.sys.close(nsfd);
    }
    await svc.release({ ...c, NetworkSettings: { Networks: { [n.Name]: s }, Ports: {}, SandboxKey: "" } });
    svc.publish(n, "disconnect", { container: c.Id });
  }
  delete nets[n.Name];
}

/** The first `ethN` no endpoint of the container uses (a disconnect can leave a gap). */
function freeIfName(nets: Record<string, EndpointSettings>, joining: EndpointSettings): string {
  const joined = Object.values(nets).filter((s) => s.EndpointID && s !== joining);
  if (joined.some((s) => !s.IfName)) return `eth${Object.keys(nets).length - 1}`; // a record from before names were kept
  const used = new Set(joined.map((s) => s.IfName));
  for (let i = 0; ; i++) if (!used.has(`eth${i}`)) return `eth${i}`;
}

function portsView(c: NetContainer, bound: PortBinding[]): ContainerNetworking["Ports"] {
  const out: ContainerNetworking["Ports"] = exposedView(c);
  for (const b of bound) (out[`${b.containerPort}/${b.proto}`] ??= []).push({ HostIp: b.hostIp, HostPort: String(b.hostPort) });
  for (const [k, v] of Object.entries(out)) if (Array.isArray(v) && v.length === 0) out[k] = null;
  return out;
}

function exposedView(c: NetContainer): ContainerNetworking["Ports"] {
  const out: ContainerNetworking["Ports"] = {};
  for (const k of Object.keys(c.Config.ExposedPorts ?? {})) out[k.includes("/") ? k : `${k}/tcp`] = null;
  return out;
}

/** The subnet routed on `iface`, if any (an existing default bridge keeps its subnet). */
export function routeOf(iface: string): string | undefined {
  const r = hostRoutes().find((x) => x.iface === iface);
  return r ? `${formatIPv4(r.cidr.base)}/${r.cidr.prefix}` : undefined;
}
