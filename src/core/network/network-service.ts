/**
 * Networks and container endpoints: the predefined `bridge`, `host` and `none` networks,
 * user-defined ones (`network create/rm/ls/inspect/prune`), IP allocation through the built-in
 * IPAM, and a container's network life: `allocate` (addresses, before the container's /etc
 * files are written), `attach` (loopback up, each endpoint joined through its driver, once the
 * container's namespace exists and before its process runs), `detach` (at exit). Network
 * records persist in `<data-root>/network/networks.json`; address usage is derived from the
 * container records at start, so it cannot drift from what containers hold.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../atomic-file.ts";
import { randomHex } from "../bytes.ts";
import { conflict, EngineError, invalidArgument, messageOf, notFound } from "../errors.ts";
import type { EventBus } from "../events/bus.ts";
import type { Logger } from "../log.ts";
import { O_CLOEXEC, O_RDONLY, type Sys } from "../sys/sys.ts";
import { type DnsServer, hostUpstream, startDnsServer } from "./dns-server.ts";
import { type AddressPoolSpec, allocate, allocate6, chooseSubnet, configuredPools, chooseSubnet6, completePool, completePool6, hostRoutes, hostRoutes6, type IpamPoolConfig, type PoolState, release, v4PoolOf, v6PoolOf } from "./ipam.ts";
import { compareApiVersions } from "../version.ts";
import { formatIPv4, overlaps, parseCidr, parseIPv4 } from "./ipv4.ts";
import { formatIPv6, isIPv6, overlaps6, parseCidr6, parseIPv6 } from "./ipv6.ts";
import { parsePortKey } from "./port-spec.ts";
import { GATEWAY_REQUEST, type RemoteIpam } from "./remote-ipam.ts";
import { Rtnl } from "./rtnl.ts";
import type { Endpoint, NetworkDriver, NetworkRecord, PortBinding } from "./types.ts";

/** A container's settings on one network, as `docker inspect` shows them. */
export interface EndpointSettings {
  IPAMConfig: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] } | null;
  Links: string[] | null;
  Aliases: string[] | null;
  MacAddress: string;
  /** The MAC address the request asked for (not shown by Docker; MacAddress shows it while connected). */
  RequestedMac?: string;
  DriverOpts: Record<string, string> | null;
  GwPriority: number;
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  IPv6Gateway: string;
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
  DNSNames: string[] | null;
  /** Host-side interface (not shown by Docker; kept so `leave` works after a restart). */
  HostIf?: string;
  /** The endpoint's interface in the container (not shown by Docker; for a disconnect). */
  IfName?: string;
}

/** What a request asks of a container's endpoint on a network (`EndpointsConfig`, connect). */
export interface EndpointRequest {
  IPAMConfig?: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] } | null;
  Aliases?: string[] | null;
  Links?: string[] | null;
  /** A MAC address for the endpoint's interface (default: one derived from its IPv4 address). */
  MacAddress?: string | null;
  /** Options for the network driver, kept and shown by inspect. */
  DriverOpts?: Record<string, string> | null;
}

/** The network part of a container record. */
export interface ContainerNetworking {
  Networks: Record<string, EndpointSettings>;
  /** "80/tcp" → bindings (null: exposed, not published), as Docker shows them. */
  Ports: Record<string, { HostIp: string; HostPort: string }[] | null>;
  SandboxKey: string;
}

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

const PREDEFINED = new Set(["bridge", "host", "none"]);

/** The Linux bridge a bridge-driver network lives on (Docker's option, else br-<id>). */
const bridgeNameOf = (n: NetworkRecord) => n.Options["com.docker.network.bridge.name"] || `br-${n.Id.slice(0, 12)}`;

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
  private readonly networks = new Map<string, NetworkRecord>();
  /** Address usage per network and family (`<id>/4`, `<id>/6`). */
  private readonly pools = new Map<string, PoolState>();
  private readonly dns = new Map<string, DnsServer>();
  private readonly file: string;

  constructor(
    root: string,
    private readonly deps: NetworkDeps,
  ) {
    mkdirSync(root, { recursive: true, mode: 0o700 });
    this.file = join(root, "networks.json");
  }

  /** Load the records, add the predefined networks, set up every network's host side, take back running containers' endpoints. */
  async init(): Promise<void> {
    if (existsSync(this.file)) for (const n of JSON.parse(readFileSync(this.file, "utf8")) as NetworkRecord[]) this.networks.set(n.Id, n);
    const hasName = (name: string) => [...this.networks.values()].some((n) => n.Name === name);
    let changed = false;
    if (!hasName("none")) (this.add(this.record({ Name: "none", Driver: "null" })), (changed = true));
    if (!hasName("host")) (this.add(this.record({ Name: "host", Driver: "host" })), (changed = true));
    if (!hasName("bridge") && this.deps.drivers.has("bridge") && this.deps.defaultBridge !== null) {
      const br = this.deps.defaultBridge ?? "bunker0";
      const existing = routeOf(br);
      const subnet = existing ?? this.freeSubnet([br]);
      const rec = this.record({ Name: "bridge", Driver: "bridge", Options: { "com.docker.network.bridge.name": br, "com.docker.network.bridge.default_bridge": "true" } }, [completePool(this.bipPool() ?? { Subnet: subnet })]);
      this.add(rec);
      changed = true;
    }
    // --bip moved: the default bridge takes the new subnet once no running container holds an address there.
    const bip = this.bipPool();
    const defaultNet = [...this.networks.values()].find((n) => n.Name === "bridge");
    const current = defaultNet && v4PoolOf(defaultNet.IPAM.Config);
    if (bip && defaultNet && current && (current.Subnet !== bip.Subnet || current.Gateway !== bip.Gateway)) {
      const busy = this.deps.containers().some((c) => c.State.Running && c.NetworkSettings?.Networks.bridge?.IPAddress);
      if (busy) this.deps.log.warn("bip differs from the default bridge's subnet, which running containers use: kept", { bip: this.deps.defaultBridgeCidr, subnet: current.Subnet });
      else {
        const br = bridgeNameOf(defaultNet);
        try {
          const rt = Rtnl.open(this.deps.sys);
          try {
            if (rt.linkIndex(br) !== undefined) rt.deleteLink(br); // made again below with the new address
          } finally {
            rt.close();
          }
        } catch (err) {
          this.deps.log.warn("cannot reset the default bridge for the new bip", { error: messageOf(err) });
        }
        defaultNet.IPAM.Config = [bip, ...defaultNet.IPAM.Config.filter((p) => isIPv6(p.Subnet))];
        changed = true;
      }
    }
    const bridgeRec = [...this.networks.values()].find((n) => n.Name === "bridge");
    if (bridgeRec && this.reconcileDefaultIPv6(bridgeRec)) changed = true;
    if (changed) this.save();
    for (const n of this.networks.values()) {
      const d = this.deps.drivers.get(n.Driver);
      if (!d) continue;
      try {
        await d.createNetwork(n);
        await this.startDns(n);
      } catch (err) {
        this.deps.log.warn("network setup failed", { network: n.Name, error: messageOf(err) });
      }
    }
    // Address usage and endpoints of containers that kept running while the daemon was down.
    for (const c of this.deps.containers()) {
      for (const [name, s] of Object.entries(c.NetworkSettings?.Networks ?? {})) {
        const n = this.networks.get(s.NetworkID) ?? this.find(name);
        if (!n || !s.IPAddress) continue;
        if (!c.State.Running) {
          s.IPAddress = "";
          s.GlobalIPv6Address = "";
          continue;
        }
        this.poolOf(n).used[s.IPAddress] = s.EndpointID;
        if (s.GlobalIPv6Address) this.poolOf(n, 6).used[s.GlobalIPv6Address] = s.EndpointID;
        const d = this.deps.drivers.get(n.Driver);
        await d?.restoreEndpoint?.(n, this.endpointOf(c, n, s), s.HostIf).catch((err) => this.deps.log.warn("endpoint restore failed", { container: c.Id, error: messageOf(err) }));
      }
    }
    for (const d of this.deps.drivers.values()) (d as { restored?: () => void }).restored?.();
  }

  /**
   * The default bridge follows the daemon's `ipv6` and `fixed-cidr-v6` settings at every start
   * (as dockerd's does): IPv6 turned on, off, or moved to another subnet. True when it changed.
   */
  private reconcileDefaultIPv6(rec: NetworkRecord): boolean {
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
  private async startDns(n: NetworkRecord): Promise<void> {
    const gw = v4PoolOf(n.IPAM.Config)?.Gateway;
    if (PREDEFINED.has(n.Name) || !gw || !this.deps.drivers.get(n.Driver)?.gatewayOnHost || this.dns.has(n.Id)) return;
    try {
      const server = await startDnsServer({
        address: gw,
        ...(this.deps.dnsPort ? { port: this.deps.dnsPort } : {}),
        resolve: (name, from, family) => this.resolveName(n, name, from, family),
        upstream: () => this.deps.dnsUpstream ?? hostUpstream(),
        log: this.deps.log,
      });
      this.dns.set(n.Id, server);
    } catch (err) {
      // Port 53 on the gateway taken (a host resolver bound to every address): the network works
      // without names; its containers get the daemon's or the host's name servers instead.
      this.deps.log.warn("embedded DNS server not started", { network: n.Name, address: `${gw}:53`, error: messageOf(err) });
    }
  }

  /**
   * A name as seen from the container at `from` on `n` (Docker's embedded DNS answers per
   * container): its links' aliases first, then container names, short and full IDs and network
   * aliases of running containers on any user-defined network the asker is on (also with the
   * network's name as a domain, `web.mynet`). `family` 6 asks for the IPv6 address.
   */
  resolveName(n: NetworkRecord, name: string, from: string, family: 4 | 6 = 4): string | undefined {
    const running = this.deps.containers().filter((c) => c.State.Running);
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

  private record(req: Partial<NetworkCreateRequest> & { Name: string }, pools: IpamPoolConfig[] = []): NetworkRecord {
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

  private add(n: NetworkRecord): void {
    this.networks.set(n.Id, n);
  }

  private save(): void {
    writeFileAtomic(this.file, JSON.stringify([...this.networks.values()], null, 1), 0o600);
  }

  private poolOf(n: NetworkRecord, family: 4 | 6 = 4): PoolState {
    const key = `${n.Id}/${family}`;
    let p = this.pools.get(key);
    if (!p) this.pools.set(key, (p = { used: {} }));
    return p;
  }

  /** A subnet from the default pools that no network and no host route (except on `ours`) uses. */
  private freeSubnet(ours: string[]): string {
    const taken = [...this.networks.values()].flatMap((n) => n.IPAM.Config.filter((c) => !isIPv6(c.Subnet)).map((c) => parseCidr(c.Subnet)));
    const routes = hostRoutes().filter((r) => !ours.includes(r.iface) && !this.isOurBridge(r.iface));
    const c = chooseSubnet([...taken, ...routes.map((r) => r.cidr)], this.deps.addressPools?.length ? configuredPools(this.deps.addressPools) : undefined);
    return `${formatIPv4(c.base)}/${c.prefix}`;
  }

  /** The default bridge's pool from `bip` (address and prefix → subnet and gateway). */
  private bipPool(): IpamPoolConfig | undefined {
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
        if (s.NetworkID === n.Id && s.EndpointID) out[c.Id] = { Name: c.Name.replace(/^\//, ""), EndpointID: s.EndpointID, MacAddress: s.MacAddress, IPv4Address: s.IPAddress ? `${s.IPAddress}/${s.IPPrefixLen}` : "", IPv6Address: s.GlobalIPv6Address ? `${s.GlobalIPv6Address}/${s.GlobalIPv6PrefixLen}` : "" };
      }
    }
    return out;
  }

  private async ipamFor(name: string): Promise<RemoteIpam> {
    const d = await this.deps.remoteIpam?.(name);
    if (!d) throw notFound(`plugin "${name}" not found`);
    return d;
  }

  private async driverFor(name: string): Promise<NetworkDriver> {
    const d = this.deps.drivers.get(name) ?? (await this.deps.remoteDriver?.(name));
    if (!d) throw notFound(`plugin "${name}" not found`);
    return d;
  }

  /** `POST /networks/create`. */
  async create(req: NetworkCreateRequest): Promise<{ Id: string; Warning: string }> {
    // dockerd takes any name (spaces included) that does not look like a path.
    if (!req.Name || /[/\\]/.test(req.Name) || req.Name.trim() !== req.Name) throw invalidArgument(`invalid network name "${req.Name ?? ""}"`);
    // CheckDuplicate false allowed a second network of the same name until API 1.44 (Docker 25 always checks).
    const checkDuplicate = req.CheckDuplicate !== false || !req.apiVersion || compareApiVersions(req.apiVersion, "1.44") >= 0;
    if (checkDuplicate && [...this.networks.values()].some((n) => n.Name === req.Name)) throw conflict(`network with name ${req.Name} already exists`);
    const driverName = req.Driver || "bridge";
    if (driverName === "host" || driverName === "null") throw new EngineError("permission-denied", `only one instance of "${driverName}" network is allowed`);
    const driver = await this.driverFor(driverName);
    const ipamName = req.IPAM?.Driver && req.IPAM.Driver !== "default" ? req.IPAM.Driver : undefined;
    const taken = [...this.networks.values()].flatMap((n) => n.IPAM.Config.filter((c) => !isIPv6(c.Subnet)).map((c) => ({ net: n, cidr: parseCidr(c.Subnet) })));
    const wanted6 = req.IPAM?.Config?.filter((p) => p.Subnet && isIPv6(p.Subnet)) ?? [];
    if (req.EnableIPv6 && driverName !== "bridge") throw invalidArgument(`IPv6 is supported on bridge networks only, not with the ${driverName} driver`);
    if (req.EnableIPv6 && ipamName) throw invalidArgument(`IPv6 is not supported with the remote IPAM driver ${ipamName}`);
    if (wanted6.length > 1) throw invalidArgument("one IPv6 subnet per network");
    let pools: IpamPoolConfig[];
    let poolId: string | undefined;
    if (ipamName) {
      const ipam = await this.ipamFor(ipamName);
      const want = req.IPAM?.Config?.[0];
      const got = await ipam.requestPool(want?.Subnet ?? "", want?.IPRange ?? "", req.IPAM?.Options ?? {});
      poolId = got.PoolID;
      const gw = want?.Gateway ? await ipam.requestAddress(got.PoolID, want.Gateway, GATEWAY_REQUEST) : (got.Data?.["com.docker.network.gateway"] ?? (await ipam.requestAddress(got.PoolID, "", GATEWAY_REQUEST)));
      pools = [{ Subnet: got.Pool, Gateway: gw.split("/")[0]!, ...(want?.IPRange ? { IPRange: want.IPRange } : {}) }];
    } else {
      // IPv4 always (a subnet from the defaults when none is asked for); IPv6 below.
      pools = (req.IPAM?.Config ?? []).filter((p) => p.Subnet && !isIPv6(p.Subnet)).map(completePool);
      for (const p of pools) {
        const c = parseCidr(p.Subnet);
        if (taken.some((t) => overlaps(t.cidr, c))) throw new EngineError("permission-denied", `invalid pool request: Pool overlaps with other one on this address space`);
      }
      if (!pools.length) pools = [completePool({ Subnet: this.freeSubnet([]) })];
    }
    const rec = this.record({ ...req, Driver: driverName }, pools);
    if (poolId) rec.PoolID = poolId;
    if (req.EnableIPv6) rec.IPAM.Config.push(this.pool6For(rec, wanted6[0]));
    // An IPv6 subnet without EnableIPv6 is recorded as dockerd 20.10 records it, and not used.
    else if (wanted6[0]) rec.IPAM.Config.push(completePool6(wanted6[0]));
    await driver.createNetwork(rec);
    this.add(rec);
    try {
      await this.startDns(rec);
      this.save();
    } catch (err) {
      this.networks.delete(rec.Id);
      this.dns.get(rec.Id)?.close();
      this.dns.delete(rec.Id);
      await driver.deleteNetwork(rec).catch(() => {});
      throw err;
    }
    this.publish(rec, "create");
    return { Id: rec.Id, Warning: "" };
  }

  /** The IPv6 pool of `rec`: the one asked for (checked against other networks), or a free ULA /64. */
  private pool6For(rec: NetworkRecord, wanted?: IpamPoolConfig): IpamPoolConfig {
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
    const d = await this.driverFor(n.Driver).catch(() => undefined);
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

  private publish(n: NetworkRecord, action: string, extra: Record<string, string> = {}): void {
    this.deps.events.publish({ Type: "network", Action: action, Actor: { ID: n.Id, Attributes: { name: n.Name, type: n.Driver, ...extra } } });
  }

  // ---- containers ------------------------------------------------------------------------------

  /**
   * The initial networking of a container being created: its NetworkMode network (default
   * `bridge`) plus the other networks of `EndpointsConfig`, checked to exist.
   */
  initialNetworking(mode: string, endpoints: Record<string, EndpointRequest | null | undefined>): ContainerNetworking {
    const nets: Record<string, EndpointSettings> = {};
    if (mode.startsWith("container:")) return { Networks: nets, Ports: {}, SandboxKey: "" };
    // The CLI names the mode's network "default" when the user gave none.
    const wanted = [mode, ...Object.keys(endpoints).filter((k) => k !== mode && k !== "default")];
    for (const ref of wanted) {
      const n = this.get(ref);
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
  portsOf(c: NetContainer): PortBinding[] {
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

  private endpointOf(c: NetContainer, n: NetworkRecord, s: EndpointSettings, ports: PortBinding[] = this.recordedPorts(c)): Endpoint {
    const v6 = s.GlobalIPv6Address ? { ip6: s.GlobalIPv6Address, prefix6: s.GlobalIPv6PrefixLen, gateway6: s.IPv6Gateway } : {};
    return { id: s.EndpointID, containerId: c.Id, ip: s.IPAddress, prefix: s.IPPrefixLen, gateway: s.Gateway, mac: s.MacAddress, ports, ...v6 };
  }

  private recordedPorts(c: NetContainer): PortBinding[] {
    const out: PortBinding[] = [];
    for (const [key, list] of Object.entries(c.NetworkSettings?.Ports ?? {})) {
      const [port, proto = "tcp"] = key.split("/");
      for (const b of list ?? []) out.push({ proto: proto as "tcp" | "udp", containerPort: Number(port), hostIp: b.HostIp, hostPort: Number(b.HostPort) });
    }
    return out;
  }

  /** Allocate addresses for each network of a starting container (filled into its settings). */
  async allocate(c: NetContainer): Promise<void> {
    for (const s of Object.values(c.NetworkSettings?.Networks ?? {})) {
      const n = this.networks.get(s.NetworkID);
      if (!n) throw notFound(`network ${s.NetworkID} not found`);
      const pool = v4PoolOf(n.IPAM.Config);
      if (!pool || n.Driver === "host" || n.Driver === "null") continue;
      s.EndpointID = randomHex(32);
      try {
        if (n.PoolID) s.IPAddress = (await (await this.ipamFor(n.IPAM.Driver)).requestAddress(n.PoolID, s.IPAMConfig?.IPv4Address ?? "")).split("/")[0]!;
        else s.IPAddress = allocate(pool, this.poolOf(n), s.EndpointID, s.IPAMConfig?.IPv4Address);
        const pool6 = n.EnableIPv6 ? v6PoolOf(n.IPAM.Config) : undefined;
        if (pool6) {
          s.GlobalIPv6Address = allocate6(pool6, this.poolOf(n, 6), s.EndpointID, s.IPAMConfig?.IPv6Address);
          s.GlobalIPv6PrefixLen = parseCidr6(pool6.Subnet).prefix;
          s.IPv6Gateway = pool6.Gateway ?? "";
        }
      } catch (err) {
        s.EndpointID = "";
        await this.release(c);
        throw err;
      }
      s.IPPrefixLen = parseCidr(pool.Subnet).prefix;
      s.Gateway = pool.Gateway ?? "";
      s.MacAddress = s.RequestedMac ?? macOf(s.IPAddress);
      s.DNSNames = n.Name === "bridge" ? null : [c.Name.replace(/^\//, ""), c.Id.slice(0, 12), ...(s.Aliases ?? [])];
    }
  }

  /** Give back a container's addresses (each exactly once) and clear its endpoint fields. */
  async release(c: NetContainer): Promise<void> {
    for (const s of Object.values(c.NetworkSettings?.Networks ?? {})) {
      const n = this.networks.get(s.NetworkID);
      if (n?.PoolID && s.IPAddress && s.EndpointID) {
        const ipam = await this.ipamFor(n.IPAM.Driver).catch(() => undefined);
        await ipam?.releaseAddress(n.PoolID, s.IPAddress).catch((err) => this.deps.log.warn("IPAM release failed", { network: n.Name, error: messageOf(err) }));
      } else if (n && s.IPAddress) release(this.poolOf(n), s.IPAddress, s.EndpointID);
      if (n && s.GlobalIPv6Address) release(this.poolOf(n, 6), s.GlobalIPv6Address, s.EndpointID);
      Object.assign(s, { EndpointID: "", IPAddress: "", IPPrefixLen: 0, Gateway: "", MacAddress: s.RequestedMac ?? "", HostIf: undefined, IfName: undefined, DNSNames: null, GlobalIPv6Address: "", GlobalIPv6PrefixLen: 0, IPv6Gateway: "" });
    }
    if (c.NetworkSettings) {
      c.NetworkSettings.SandboxKey = "";
      for (const k of Object.keys(c.NetworkSettings.Ports)) c.NetworkSettings.Ports[k] = null;
    }
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
    const mode = c.HostConfig.NetworkMode || "bridge";
    if (mode === "host" || mode.startsWith("container:")) return;
    const sys = this.deps.sys;
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
      let ports = c.PublishedPorts ?? this.portsOf(c); // records from before PublishedPorts: parsed here
      let index = 0;
      c.NetworkSettings!.Ports = exposedView(c);
      for (const [, s] of Object.entries(c.NetworkSettings?.Networks ?? {})) {
        const n = this.networks.get(s.NetworkID)!;
        if (!s.IPAddress) continue;
        const d = await this.driverFor(n.Driver);
        const ifname = `eth${index}`;
        const res = await d.join(n, this.endpointOf(c, n, s, ports), { netnsFd: nsfd, key: nsPath, ifname, defaultRoute: index++ === 0 });
        joined.push([n, s, d]);
        s.IfName = ifname;
        if (res.hostIf) s.HostIf = res.hostIf;
        if (ports.length) {
          c.NetworkSettings!.Ports = portsView(c, res.ports);
          ports = []; // published once, on the first network
        }
      }
      c.NetworkSettings!.SandboxKey = nsPath;
      for (const [n] of joined) this.publish(n, "connect", { container: c.Id });
      this.deps.log.debug("network attach", { container: c.Id.slice(0, 12), ms: (performance.now() - t0).toFixed(2) });
    } catch (err) {
      for (const [n, s, d] of joined.reverse()) await d.leave(n, this.endpointOf(c, n, s), s.HostIf).catch(() => {});
      throw err;
    } finally {
      sys.close(nsfd);
    }
  }

  /** Disconnect a container that stopped (or failed to start) and release its addresses. */
  async detach(c: NetContainer): Promise<void> {
    const t0 = performance.now();
    for (const s of Object.values(c.NetworkSettings?.Networks ?? {})) {
      const n = this.networks.get(s.NetworkID);
      if (!n || !s.EndpointID) continue;
      const d = await this.driverFor(n.Driver).catch(() => undefined);
      await d?.leave(n, this.endpointOf(c, n, s), s.HostIf, { sandboxGone: true }).catch((err) => this.deps.log.warn("endpoint leave failed", { container: c.Id, network: n.Name, error: messageOf(err) }));
      if (s.HostIf !== undefined || c.State.Running) this.publish(n, "disconnect", { container: c.Id });
    }
    await this.release(c);
    this.deps.log.debug("network detach", { container: c.Id.slice(0, 12), ms: (performance.now() - t0).toFixed(2) });
  }

  /** `POST /networks/{id}/connect`: add a network; a running container joins it at once. */
  async connect(c: NetContainer, ref: string, cfg: EndpointRequest = {}): Promise<void> {
    const n = this.get(ref);
    const nets = (c.NetworkSettings ??= { Networks: {}, Ports: {}, SandboxKey: "" }).Networks;
    const mode = c.HostConfig.NetworkMode ?? "";
    if (mode === "host" || mode === "none" || mode.startsWith("container:") || n.Driver === "host" || n.Driver === "null") throw invalidArgument(`container cannot be disconnected from host network or connected to host network`);
    if (nets[n.Name]) throw new EngineError("permission-denied", `endpoint with name ${c.Name.replace(/^\//, "")} already exists in network ${n.Name}`);
    const s = (nets[n.Name] = emptySettings(n.Id, cfg));
    if (!c.State.Running) return;
    const one = { ...c, NetworkSettings: { ...c.NetworkSettings, Networks: { [n.Name]: s } } };
    try {
      await this.allocate(one);
      const nsfd = this.deps.sys.openat2(-100, NetworkService.netnsPath(c.State.Pid), O_RDONLY | O_CLOEXEC, 0, 0);
      try {
        const ifname = freeIfName(nets, s);
        const res = await (await this.driverFor(n.Driver)).join(n, this.endpointOf(c, n, s, []), { netnsFd: nsfd, key: NetworkService.netnsPath(c.State.Pid), ifname, defaultRoute: false });
        s.IfName = ifname;
        if (res.hostIf) s.HostIf = res.hostIf;
      } finally {
        this.deps.sys.close(nsfd);
      }
    } catch (err) {
      await this.release(one);
      delete nets[n.Name];
      throw err;
    }
    this.publish(n, "connect", { container: c.Id });
  }

  /** `POST /networks/{id}/disconnect`. */
  async disconnect(c: NetContainer, ref: string): Promise<void> {
    const n = this.get(ref);
    const nets = c.NetworkSettings?.Networks ?? {};
    const s = nets[n.Name];
    if (!s) throw new EngineError("permission-denied", `container ${c.Id} is not connected to network ${n.Name}`);
    if (s.EndpointID) {
      const d = await this.driverFor(n.Driver).catch(() => undefined);
      // A running container's interface on this network is removed from its namespace.
      const nsfd = c.State.Running && s.IfName ? this.deps.sys.openat2(-100, NetworkService.netnsPath(c.State.Pid), O_RDONLY | O_CLOEXEC, 0, 0) : undefined;
      try {
        await d?.leave(n, this.endpointOf(c, n, s, []), s.HostIf, nsfd !== undefined ? { sandbox: { netnsFd: nsfd, ifname: s.IfName! } } : {});
      } finally {
        if (nsfd !== undefined) this.deps.sys.close(nsfd);
      }
      await this.release({ ...c, NetworkSettings: { Networks: { [n.Name]: s }, Ports: {}, SandboxKey: "" } });
      this.publish(n, "disconnect", { container: c.Id });
    }
    delete nets[n.Name];
  }

  /**
   * Lines for the container's /etc/hosts: its own address(es) with its hostname, and the
   * `--link` targets it shares a network with (`<ip>\t<alias> <name>`, as Docker writes them).
   */
  hostsEntries(c: NetContainer): string[] {
    const short = c.Config.Hostname || c.Id.slice(0, 12);
    // With --domainname the full name comes first, then the short one (as Docker writes them).
    const host = c.Config.Domainname ? `${short}.${c.Config.Domainname} ${short}` : short;
    const own = Object.values(c.NetworkSettings?.Networks ?? {}).flatMap((s) => [s.IPAddress, s.GlobalIPv6Address].filter(Boolean).map((ip) => `${ip}\t${host}`));
    const links: string[] = [];
    for (const link of c.HostConfig.Links ?? []) {
      const [target, alias] = splitLink(link);
      const t = this.deps.containers().find((x) => x.State.Running && (x.Name.replace(/^\//, "") === target || x.Id.startsWith(target)));
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
  linkEnv(c: NetContainer): string[] {
    const mode = c.HostConfig.NetworkMode ?? "";
    if (mode !== "" && mode !== "default" && mode !== "bridge") return [];
    const out: string[] = [];
    for (const link of c.HostConfig.Links ?? []) {
      const [target, alias] = splitLink(link);
      const t = this.deps.containers().find((x) => x.State.Running && (x.Name.replace(/^\//, "") === target || x.Id.startsWith(target)));
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
  hostGatewayIp(): string {
    const gw = v4PoolOf(this.find("bridge")?.IPAM.Config ?? [])?.Gateway;
    if (!gw) throw invalidArgument("unable to derive the IP value for host-gateway: the default bridge network has no gateway");
    return gw;
  }

  /** The embedded DNS address for a container: the gateway of its first user-defined network. */
  dnsServerFor(c: NetContainer): string | undefined {
    for (const s of Object.values(c.NetworkSettings?.Networks ?? {})) {
      const n = this.networks.get(s.NetworkID);
      if (n && this.dns.has(n.Id) && s.Gateway) return s.Gateway;
    }
    return undefined;
  }
}

/** The first `ethN` no endpoint of the container uses (a disconnect can leave a gap). */
function freeIfName(nets: Record<string, EndpointSettings>, joining: EndpointSettings): string {
  const joined = Object.values(nets).filter((s) => s.EndpointID && s !== joining);
  if (joined.some((s) => !s.IfName)) return `eth${Object.keys(nets).length - 1}`; // a record from before names were kept
  const used = new Set(joined.map((s) => s.IfName));
  for (let i = 0; ; i++) if (!used.has(`eth${i}`)) return `eth${i}`;
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
function routeOf(iface: string): string | undefined {
  const r = hostRoutes().find((x) => x.iface === iface);
  return r ? `${formatIPv4(r.cidr.base)}/${r.cidr.prefix}` : undefined;
}
