/**
 * Networks and container endpoints: the predefined `bridge`, `host` and `none` networks,
 * user-defined ones (`network create/rm/ls/inspect/prune`), IP allocation through the built-in
 * IPAM, and a container's network life: `allocate` (addresses, before the container's /etc
 * files are written), `attach` (loopback up, each endpoint joined through its driver, once the
 * container's namespace exists and before its process runs), `detach` (at exit). Network
 * records persist in `<data-root>/network/networks.json`; address usage is derived from the
 * container records at start, so it cannot drift from what containers hold.
 */
import { ignore } from "../log.ts";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../atomic-file.ts";
import { randomHex } from "../bytes.ts";
import { EngineError, invalidArgument, messageOf, notFound } from "../errors.ts";
import type { EventBus } from "../events/bus.ts";
import type { Logger } from "../log.ts";
import type { Journal } from "../journal/journal.ts";
import { type Sys } from "../sys/sys.ts";
import { type DnsServer } from "./dns-server.ts";
import { type AddressPoolSpec, chooseSubnet, configuredPools, chooseSubnet6, completePool, completePool6, hostRoutes, hostRoutes6, type IpamPoolConfig, type PoolState, v4PoolOf, v6PoolOf } from "./ipam.ts";

import { formatIPv4, parseCidr, parseIPv4 } from "./ipv4.ts";
import { formatIPv6, isIPv6, overlaps6, parseCidr6 } from "./ipv6.ts";

import { type RemoteIpam } from "./remote-ipam.ts";

import type { Endpoint, NetworkDriver, NetworkRecord, PortBinding } from "./types.ts";
import type { ContainerNetworking, EndpointRequest, EndpointSettings } from "./endpoint-settings.ts";
import { allocateEndpoints, attach, connect, detach, disconnect, endpointOf, initialNetworking, portsOf, recordedPorts, releaseEndpoints } from "./endpoints.ts";
import { create, init } from "./network-setup.ts";
import { dnsServerFor, hostGatewayIp, hostsEntries, linkEnv, resolveName, startDns } from "./names.ts";

export type { ContainerNetworking, EndpointRequest, EndpointSettings } from "./endpoint-settings.ts";

/** What the service needs to know about a container. */
export interface NetContainer {
  Id: string;
  Name: string;
  Config: { Hostname?: string | null; Domainname?: string | null; ExposedPorts?: Record<string, unknown> | null; Env?: string[] | null };
  HostConfig: { NetworkMode?: string | null; PortBindings?: Record<string, { HostIp?: string | null; HostPort?: string | null }[] | null | undefined> | null; PublishAllPorts?: boolean | null; Links?: string[] | null };
  State: { Running: boolean; Pid: number };
  NetworkSettings?: ContainerNetworking;
  /** The published ports, parsed once from PortBindings when the container was created. */
  PublishedPorts?: PortBinding[];
}

/** Services the network service relies on. */
export interface NetworkDeps {
  sys: Sys;
  log: Logger;
  events: EventBus;
  /** The data root's intent journal: a create records its network before the driver makes anything. */
  journal?: Journal;
  /** Built-in drivers by name (network.v1 plugins). */
  drivers: Map<string, NetworkDriver>;
  /** A remote (Docker plugin protocol) driver by name, or undefined. */
  remoteDriver?: (name: string) => Promise<NetworkDriver | undefined>;
  /** Every container record. */
  containers: () => NetContainer[];
  /** Name of the default bridge's interface (default bunker0); null: no default bridge network. */
  defaultBridge?: string | null;
  /** IPv6 on the default bridge: its subnet, or "" for a unique-local /64; absent: IPv4 only. */
  defaultBridgeIPv6?: string;
  /** A remote (Docker plugin protocol) IPAM driver by name, or undefined. */
  remoteIpam?: (name: string) => Promise<RemoteIpam | undefined>;
  /** Where the embedded DNS servers forward what they do not know (default: the host's resolv.conf). */
  dnsUpstream?: string[];
  /** dockerd's `bip`: the default bridge's gateway address and prefix (e.g. 172.26.0.1/16). */
  defaultBridgeCidr?: string;
  /** dockerd's `default-address-pools`: where subnets come from instead of Docker's defaults. */
  addressPools?: AddressPoolSpec[];
  /** Port of the embedded DNS servers (53; tests may move it). */
  dnsPort?: number;
}

export const PREDEFINED = new Set(["bridge", "host", "none"]);

/** The Linux bridge a bridge-driver network lives on (Docker's option, else br-<id>). */
export const bridgeNameOf = (n: NetworkRecord) => n.Options["com.docker.network.bridge.name"] || `br-${n.Id.slice(0, 12)}`;

/** The network request body of `POST /networks/create`, validated by the route. */
export interface NetworkCreateRequest {
  Name: string;
  Driver?: string;
  Internal?: boolean;
  Attachable?: boolean;
  EnableIPv6?: boolean;
  IPAM?: { Driver?: string; Config?: IpamPoolConfig[]; Options?: Record<string, string> };
  Options?: Record<string, string>;
  Labels?: Record<string, string>;
  CheckDuplicate?: boolean;
  /** The API version of the request (CheckDuplicate's meaning depends on it). */
  apiVersion?: string;
}

/** The networks. */
export class NetworkService {
  /** @internal */
  readonly networks = new Map<string, NetworkRecord>();
  /** Address usage per network and family (`<id>/4`, `<id>/6`). */
  private readonly pools = new Map<string, PoolState>();
  /** @internal */
  readonly dns = new Map<string, DnsServer>();
  /** @internal */
  readonly file: string;

  constructor(
    root: string,
    /** @internal */
    readonly deps: NetworkDeps,
  ) {
    mkdirSync(root, { recursive: true, mode: 0o700 });
    this.file = join(root, "networks.json");
  }

  /** Load the records, add the predefined networks, set up every network's host side, take back running containers' endpoints. */
  async init(): Promise<void> {
    return init(this);
  }

  /**
   * The default bridge follows the daemon's `ipv6` and `fixed-cidr-v6` settings at every start
   * (as dockerd's does): IPv6 turned on, off, or moved to another subnet. True when it changed.
   */
  /** @internal */
  reconcileDefaultIPv6(rec: NetworkRecord): boolean {
    const want = this.deps.defaultBridgeIPv6;
    const current = v6PoolOf(rec.IPAM.Config);
    const v4 = rec.IPAM.Config.filter((p) => !isIPv6(p.Subnet));
    if (want === undefined) {
      if (!rec.EnableIPv6 && !current) return false;
      rec.EnableIPv6 = false;
      rec.IPAM.Config = v4;
      return true;
    }
    if (current && rec.EnableIPv6 && (want === "" || parseCidr6(want).base === parseCidr6(current.Subnet).base)) return false;
    try {
      const pool = this.pool6For(rec, want ? { Subnet: want } : undefined);
      rec.EnableIPv6 = true;
      rec.IPAM.Config = [...v4, pool];
      return true;
    } catch (err) {
      this.deps.log.warn("IPv6 on the default bridge not set up", { error: messageOf(err) });
      return false;
    }
  }

  /** The daemon's `dns` setting: containers without `--dns` use it. */
  get daemonDns(): string[] | undefined {
    return this.deps.dnsUpstream;
  }

  /** Stop the DNS servers (daemon shutdown). */
  close(): void {
    for (const d of this.dns.values()) d.close();
    this.dns.clear();
  }

  /** The embedded DNS server of a user-defined network whose gateway is on this host. */
  async startDns(n: NetworkRecord): Promise<void> {
    return startDns(this, n);
  }

  /**
   * A name as seen from the container at `from` on `n` (Docker's embedded DNS answers per
   * container): its links' aliases first, then container names, short and full IDs and network
   * aliases of running containers on any user-defined network the asker is on (also with the
   * network's name as a domain, `web.mynet`). `family` 6 asks for the IPv6 address.
   */
  resolveName(n: NetworkRecord, name: string, from: string, family: 4 | 6 = 4): string | undefined {
    return resolveName(this, n, name, from, family);
  }

  /** @internal */
  record(req: Partial<NetworkCreateRequest> & { Name: string }, pools: IpamPoolConfig[] = []): NetworkRecord {
    return {
      Name: req.Name,
      Id: randomHex(32),
      Created: new Date().toISOString(),
      Scope: "local",
      Driver: req.Driver || "bridge",
      EnableIPv4: true,
      EnableIPv6: !!req.EnableIPv6,
      IPAM: { Driver: req.IPAM?.Driver || "default", Options: req.IPAM?.Options ?? null, Config: pools },
      Internal: !!req.Internal,
      Attachable: !!req.Attachable,
      Ingress: false,
      ConfigFrom: { Network: "" },
      ConfigOnly: false,
      Options: req.Options ?? {},
      Labels: req.Labels ?? {},
    };
  }

  /** @internal */
  add(n: NetworkRecord): void {
    this.networks.set(n.Id, n);
  }

  /** @internal */
  save(): void {
    writeFileAtomic(this.file, JSON.stringify([...this.networks.values()], null, 1), 0o600);
  }

  /** @internal */
  poolOf(n: NetworkRecord, family: 4 | 6 = 4): PoolState {
    const key = `${n.Id}/${family}`;
    let p = this.pools.get(key);
    if (!p) this.pools.set(key, (p = { used: {} }));
    return p;
  }

  /** A subnet from the default pools that no network and no host route (except on `ours`) uses. */
  /** @internal */
  freeSubnet(ours: string[]): string {
    const taken = [...this.networks.values()].flatMap((n) => n.IPAM.Config.filter((c) => !isIPv6(c.Subnet)).map((c) => parseCidr(c.Subnet)));
    const routes = hostRoutes().filter((r) => !ours.includes(r.iface) && !this.isOurBridge(r.iface));
    const c = chooseSubnet([...taken, ...routes.map((r) => r.cidr)], this.deps.addressPools?.length ? configuredPools(this.deps.addressPools) : undefined);
    return `${formatIPv4(c.base)}/${c.prefix}`;
  }

  /** The default bridge's pool from `bip` (address and prefix → subnet and gateway). */
  /** @internal */
  bipPool(): IpamPoolConfig | undefined {
    const bip = this.deps.defaultBridgeCidr;
    if (!bip) return undefined;
    const [ip, prefix] = bip.split("/");
    const c = parseCidr(bip);
    return completePool({ Subnet: `${formatIPv4(c.base)}/${prefix}`, Gateway: ip! });
  }

  private isOurBridge(iface: string): boolean {
    return [...this.networks.values()].some((n) => bridgeNameOf(n) === iface);
  }

  /** A network by full ID, name, or unique ID prefix (Docker's order). */
  find(ref: string): NetworkRecord | undefined {
    const all = [...this.networks.values()];
    const byId = this.networks.get(ref) ?? all.find((n) => n.Name === ref);
    if (byId) return byId;
    const prefixed = all.filter((n) => n.Id.startsWith(ref));
    if (prefixed.length > 1) throw new EngineError("invalid-argument", `network ${ref} is ambiguous (${prefixed.length} matches found based on ID prefix)`);
    return prefixed[0];
  }

  /** Like `find`, or Docker's not-found error. */
  get(ref: string): NetworkRecord {
    const n = this.find(ref);
    if (!n) throw notFound(`network ${ref} not found`);
    return n;
  }

  /** Every network. */
  list(): NetworkRecord[] {
    return [...this.networks.values()];
  }

  /** The containers on `n`, as `network inspect` shows them. */
  containersOn(n: NetworkRecord): Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }> {
    const out: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }> = {};
    for (const c of this.deps.containers()) {
      if (!c.State.Running) continue;
      for (const s of Object.values(c.NetworkSettings?.Networks ?? {})) {
        if (s.NetworkID === n.Id && s.EndpointID)
          out[c.Id] = {
            Name: c.Name.replace(/^\//, ""),
            EndpointID: s.EndpointID,
            MacAddress: s.MacAddress,
            IPv4Address: s.IPAddress ? `${s.IPAddress}/${s.IPPrefixLen}` : "",
            IPv6Address: s.GlobalIPv6Address ? `${s.GlobalIPv6Address}/${s.GlobalIPv6PrefixLen}` : "",
          };
      }
    }
    return out;
  }

  /** @internal */
  async ipamFor(name: string): Promise<RemoteIpam> {
    const d = await this.deps.remoteIpam?.(name);
    if (!d) throw notFound(`plugin "${name}" not found`);
    return d;
  }

  /** @internal */
  async driverFor(name: string): Promise<NetworkDriver> {
    const d = this.deps.drivers.get(name) ?? (await this.deps.remoteDriver?.(name));
    if (!d) throw notFound(`plugin "${name}" not found`);
    return d;
  }

  /** `POST /networks/create`. */
  async create(req: NetworkCreateRequest): Promise<{ Id: string; Warning: string }> {
    return create(this, req);
  }

  /** The IPv6 pool of `rec`: the one asked for (checked against other networks), or a free ULA /64. */
  /** @internal */
  pool6For(rec: NetworkRecord, wanted?: IpamPoolConfig): IpamPoolConfig {
    const taken = [...this.networks.values()].filter((n) => n !== rec).flatMap((n) => n.IPAM.Config.filter((c) => isIPv6(c.Subnet)).map((c) => parseCidr6(c.Subnet)));
    if (wanted) {
      const pool = completePool6(wanted);
      if (taken.some((t) => overlaps6(t, parseCidr6(pool.Subnet)))) throw new EngineError("permission-denied", `invalid pool request: Pool overlaps with other one on this address space`);
      return pool;
    }
    const c = chooseSubnet6(rec.Id, [...taken, ...hostRoutes6().map((r) => r.cidr)]);
    return completePool6({ Subnet: `${formatIPv6(c.base)}/${c.prefix}` });
  }

  /** `DELETE /networks/{id}`. */
  async remove(ref: string): Promise<void> {
    const n = this.get(ref);
    if (PREDEFINED.has(n.Name)) throw new EngineError("permission-denied", `${n.Name} is a pre-defined network and cannot be removed`);
    if (Object.keys(this.containersOn(n)).length) throw new EngineError("permission-denied", `error while removing network: network ${n.Name} id ${n.Id} has active endpoints`);
    const d = await this.driverFor(n.Driver).catch(ignore("network driver gone: nothing to restore"));
    this.dns.get(n.Id)?.close();
    this.dns.delete(n.Id);
    await d?.deleteNetwork(n);
    if (n.PoolID) {
      const ipam = await this.ipamFor(n.IPAM.Driver);
      const gw = v4PoolOf(n.IPAM.Config)?.Gateway;
      if (gw) await ipam.releaseAddress(n.PoolID, gw).catch((err) => this.deps.log.warn("IPAM release failed", { network: n.Name, error: messageOf(err) }));
      await ipam.releasePool(n.PoolID).catch((err) => this.deps.log.warn("IPAM release failed", { network: n.Name, error: messageOf(err) }));
    }
    this.networks.delete(n.Id);
    this.pools.delete(`${n.Id}/4`);
    this.pools.delete(`${n.Id}/6`);
    this.save();
    this.publish(n, "destroy");
  }

  /** `POST /networks/prune`: user networks with no containers attached (running or not). */
  async prune(keep: (n: NetworkRecord) => boolean = () => false): Promise<string[]> {
    const removed: string[] = [];
    const users = new Set(this.deps.containers().flatMap((c) => Object.values(c.NetworkSettings?.Networks ?? {}).map((s) => s.NetworkID)));
    for (const n of [...this.networks.values()]) {
      if (PREDEFINED.has(n.Name) || users.has(n.Id) || keep(n)) continue;
      await this.remove(n.Id);
      removed.push(n.Name);
    }
    return removed;
  }

  /** @internal */
  publish(n: NetworkRecord, action: string, extra: Record<string, string> = {}): void {
    this.deps.events.publish({ Type: "network", Action: action, Actor: { ID: n.Id, Attributes: { name: n.Name, type: n.Driver, ...extra } } });
  }

  // ---- containers ------------------------------------------------------------------------------

  /**
   * The initial networking of a container being created: its NetworkMode network (default
   * `bridge`) plus the other networks of `EndpointsConfig`, checked to exist.
   */
  initialNetworking(mode: string, endpoints: Record<string, EndpointRequest | null | undefined>): ContainerNetworking {
    return initialNetworking(this, mode, endpoints);
  }

  /** The ports a container publishes, from PortBindings (and ExposedPorts with -P). */
  portsOf(c: NetContainer): PortBinding[] {
    return portsOf(this, c);
  }

  endpointOf(c: NetContainer, n: NetworkRecord, s: EndpointSettings, ports: PortBinding[] = this.recordedPorts(c)): Endpoint {
    return endpointOf(this, c, n, s, ports);
  }

  recordedPorts(c: NetContainer): PortBinding[] {
    return recordedPorts(this, c);
  }

  /** Allocate addresses for each network of a starting container (filled into its settings). */
  async allocate(c: NetContainer): Promise<void> {
    return allocateEndpoints(this, c);
  }

  /** Give back a container's addresses (each exactly once) and clear its endpoint fields. */
  async release(c: NetContainer): Promise<void> {
    return releaseEndpoints(this, c);
  }

  /** `/proc/<pid>/ns/net` of a container whose init runs as `pid`. */
  static netnsPath(pid: number): string {
    return `/proc/${pid}/ns/net`;
  }

  /**
   * Connect a created container (its init waiting before exec as `pid`): loopback up, then each
   * endpoint joined. On failure every joined endpoint is left again and the error thrown.
   */
  async attach(c: NetContainer, pid: number): Promise<void> {
    return attach(this, c, pid);
  }

  /** Disconnect a container that stopped (or failed to start) and release its addresses. */
  async detach(c: NetContainer): Promise<void> {
    return detach(this, c);
  }

  /** `POST /networks/{id}/connect`: add a network; a running container joins it at once. */
  async connect(c: NetContainer, ref: string, cfg: EndpointRequest = {}): Promise<void> {
    return connect(this, c, ref, cfg);
  }

  /** `POST /networks/{id}/disconnect`. */
  async disconnect(c: NetContainer, ref: string): Promise<void> {
    return disconnect(this, c, ref);
  }

  /**
   * Lines for the container's /etc/hosts: its own address(es) with its hostname, and the
   * `--link` targets it shares a network with (`<ip>\t<alias> <name>`, as Docker writes them).
   */
  hostsEntries(c: NetContainer): string[] {
    return hostsEntries(this, c);
  }

  /**
   * The environment of Docker's legacy links (on the default bridge only): for each `--link
   * target:alias`, `ALIAS_NAME=/<name>/<alias>`, `ALIAS_PORT=` the lowest exposed port, one
   * `ALIAS_PORT_<port>_<PROTO>` group per exposed port, and `ALIAS_ENV_<k>` for the target's
   * environment (HOME and PATH left out, as moby does).
   */
  linkEnv(c: NetContainer): string[] {
    return linkEnv(this, c);
  }

  /** The address `host-gateway` stands for in `--add-host`: the default bridge's gateway. */
  hostGatewayIp(): string {
    return hostGatewayIp(this);
  }

  /** The embedded DNS address for a container: the gateway of its first user-defined network. */
  dnsServerFor(c: NetContainer): string | undefined {
    return dnsServerFor(this, c);
  }
}

/** `name:alias` (also Docker's stored form `/name:/self/alias`) → [name, alias]. */
export function splitLink(link: string): [string, string] {
  const [a = "", b] = link.split(":");
  const target = a.replace(/^\//, "");
  const alias = b ? b.slice(b.lastIndexOf("/") + 1) : target;
  return [target, alias];
}

/** Fresh per-network settings for a container. */
export function emptySettings(networkId: string, cfg: EndpointRequest = {}): EndpointSettings {
  const ipam = {
    ...(cfg.IPAMConfig?.IPv4Address ? { IPv4Address: cfg.IPAMConfig.IPv4Address } : {}),
    ...(cfg.IPAMConfig?.IPv6Address ? { IPv6Address: cfg.IPAMConfig.IPv6Address } : {}),
    ...(cfg.IPAMConfig?.LinkLocalIPs?.length ? { LinkLocalIPs: cfg.IPAMConfig.LinkLocalIPs } : {}),
  };
  if (cfg.MacAddress && !/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(cfg.MacAddress)) throw invalidArgument(`invalid MAC address: ${cfg.MacAddress}`);
  return {
    IPAMConfig: Object.keys(ipam).length ? ipam : null,
    Links: cfg.Links?.length ? cfg.Links : null,
    Aliases: cfg.Aliases?.length ? cfg.Aliases : null,
    MacAddress: cfg.MacAddress ?? "",
    ...(cfg.MacAddress ? { RequestedMac: cfg.MacAddress.toLowerCase() } : {}),
    DriverOpts: cfg.DriverOpts && Object.keys(cfg.DriverOpts).length ? cfg.DriverOpts : null,
    GwPriority: 0,
    NetworkID: networkId,
    EndpointID: "",
    Gateway: "",
    IPAddress: "",
    IPPrefixLen: 0,
    IPv6Gateway: "",
    GlobalIPv6Address: "",
    GlobalIPv6PrefixLen: 0,
    DNSNames: null,
  };
}

/** A locally administered MAC derived from the IPv4 address (Docker's 02:42 scheme). */
export function macOf(ip: string): string {
  const n = parseIPv4(ip);
  return ["02", "42", ...[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, "0"))].join(":");
}
