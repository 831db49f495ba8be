/**
 * The bridge network driver: a Linux bridge per network holding the gateway address, a veth
 * pair per endpoint whose container end is created directly in the container's namespace as
 * `eth0` (no move, no rename), and one nf_tables table for the whole driver (masquerade for
 * outbound traffic, DNAT for published ports, hairpin and loopback masquerade, isolation between
 * networks, no way out of `--internal` ones), regenerated and installed atomically on every
 * change. Each join runs as named steps; a failing step undoes the ones before it.
 *
 * IPv6 (`--ipv6`): the bridge also holds the IPv6 gateway, each container end gets its IPv6
 * address (no duplicate address detection) and default route, and a second table of the same
 * name in family ip6 masquerades outbound IPv6 and isolates networks as the ip table does.
 * Ports published on every address are also held on `[::]` and DNATed to the IPv6 address.
 */
import { writeFileSync } from "node:fs";
import { EngineError, messageOf, SyscallError } from "../../core/errors.ts";
import { runSteps } from "../../core/steps.ts";
import type { Logger } from "../../core/log.ts";
import { v4PoolOf, v6PoolOf } from "../../core/network/ipam.ts";
import { parseCidr } from "../../core/network/ipv4.ts";
import { formatIPv6, parseCidr6, parseIPv6 } from "../../core/network/ipv6.ts";
import { applyRuleset, type Installed, removeTable, type Ruleset } from "../../core/network/nftables.ts";
import { acceptBridgesInForeignForward } from "./foreign-forward.ts";
import { bridgeRuleset, type RuleEndpoint, type RuleNetwork } from "./ruleset.ts";
import { Rtnl } from "../../core/network/rtnl.ts";
import type { Endpoint, JoinResult, NetworkDriver, NetworkRecord, PortBinding, Sandbox } from "../../core/network/types.ts";
import { randomHex } from "../../core/bytes.ts";
import type { Sys } from "../../core/sys/sys.ts";
import { reservePort } from "./port-reservations.ts";

const EEXIST = 17;
/** Docker's option naming a network's bridge interface. */
export const BRIDGE_NAME_OPTION = "com.docker.network.bridge.name";

/** A network the driver set up: what its rules need, and the record. */
interface NetState extends RuleNetwork {
  net: NetworkRecord;
}

interface EndpointState {
  netId: string;
  ep: Endpoint;
  hostIf?: string;
  /** Sockets holding the published host ports. */
  portFds: number[];
}

/** The driver's options. */
export interface BridgeOptions {
  /** nf_tables table name (family ip, and ip6 for IPv6 networks). */
  table: string;
  /** False: no nf_tables rules at all (dockerd's --iptables=false). */
  iptables?: boolean;
  /** False: IPv4 forwarding is left as it is (dockerd's --ip-forward=false). */
  ipForward?: boolean;
  log: Logger;
}

/** The bridge driver. */
export class BridgeDriver implements NetworkDriver {
  readonly name = "bridge";
  readonly gatewayOnHost = true;
  private readonly networks = new Map<string, NetState>();
  private readonly endpoints = new Map<string, EndpointState>();
  /** Set while the engine restores state after a start: rules are installed once at the end. */
  private restoring = true;

  constructor(
    private readonly sys: Sys,
    private readonly opts: BridgeOptions,
  ) {}

  /** The bridge interface of `net`. */
  static bridgeOf(net: NetworkRecord): string {
    return net.Options[BRIDGE_NAME_OPTION] || `br-${net.Id.slice(0, 12)}`;
  }

  async createNetwork(net: NetworkRecord): Promise<void> {
    const pool = v4PoolOf(net.IPAM.Config);
    if (!pool?.Subnet || !pool.Gateway) throw new EngineError("invalid-argument", `network ${net.Name}: the bridge driver needs an IPv4 subnet`);
    const pool6 = net.EnableIPv6 ? v6PoolOf(net.IPAM.Config) : undefined;
    const bridge = BridgeDriver.bridgeOf(net);
    const prefix = parseCidr(pool.Subnet).prefix;
    const rt = Rtnl.open(this.sys);
    try {
      runSteps(
        `network ${net.Name}`,
        [
          {
            name: `create bridge ${bridge}`,
            run: () => {
              if (rt.linkIndex(bridge) !== undefined) return;
              rt.addBridge(bridge);
              return () => rt.deleteLink(bridge);
            },
          },
          {
            name: `address ${pool.Gateway}/${prefix} on ${bridge}`,
            run: () => {
              const idx = rt.linkIndex(bridge)!;
              try {
                rt.addAddress(idx, pool.Gateway!, prefix, bridge);
              } catch (err) {
                if (!(err instanceof SyscallError && err.errno === EEXIST)) throw err;
              }
              rt.setUp(idx, bridge);
            },
          },
          {
            name: `IPv6 address ${pool6?.Gateway}/${pool6 ? parseCidr6(pool6.Subnet).prefix : 0} on ${bridge}`,
            run: () => {
              const idx = rt.linkIndex(bridge)!;
              // A bridge kept from an earlier start may hold a gateway the network no longer has
              // (IPv6 turned off, or fixed-cidr-v6 moved): only the current one stays.
              const keep = pool6?.Gateway ? formatIPv6(parseIPv6(pool6.Gateway)) : undefined;
              for (const a of rt.addresses6(idx, bridge)) if (a.ip !== keep) rt.deleteAddress(idx, a.ip, a.prefix, bridge);
              if (!pool6?.Gateway) return;
              try {
                rt.addAddress(idx, pool6.Gateway, parseCidr6(pool6.Subnet).prefix, bridge);
              } catch (err) {
                if (!(err instanceof SyscallError && err.errno === EEXIST)) throw err;
              }
            },
          },
          {
            name: "forwarding and loopback routing",
            run: () => {
              if (this.opts.ipForward !== false) writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
              if (pool6) writeFileSync("/proc/sys/net/ipv6/conf/all/forwarding", "1");
              // Published ports bound to 127.0.0.1 are DNATed out of the bridge: let such packets be routed.
              writeFileSync(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, "1");
            },
          },
          {
            name: "rules",
            run: () => {
              this.networks.set(net.Id, {
                net,
                name: net.Name,
                bridge,
                subnet: pool.Subnet,
                gateway: pool.Gateway!,
                ...(pool6 ? { subnet6: pool6.Subnet, ...(pool6.Gateway ? { gateway6: pool6.Gateway } : {}) } : {}),
                internal: net.Internal,
              });
              this.sync();
              return () => this.networks.delete(net.Id);
            },
          },
        ],
        { log: this.opts.log },
      );
    } finally {
      rt.close();
    }
  }

  async deleteNetwork(net: NetworkRecord): Promise<void> {
    const rt = Rtnl.open(this.sys);
    try {
      rt.deleteLink(BridgeDriver.bridgeOf(net));
    } finally {
      rt.close();
    }
    this.networks.delete(net.Id);
    this.sync();
  }

  async join(net: NetworkRecord, ep: Endpoint, sb: Sandbox): Promise<JoinResult> {
    const state = this.networks.get(net.Id);
    if (!state) throw new EngineError("not-found", `network ${net.Name} is not set up by the bridge driver`);
    const hostIf = `veth${randomHex(4).slice(0, 7)}`;
    const portFds: number[] = [];
    const ports: PortBinding[] = [];
    const rt = Rtnl.open(this.sys);
    let inner: Rtnl | undefined;
    try {
      runSteps(
        `endpoint ${ep.id.slice(0, 12)} on ${net.Name}`,
        [
          {
            name: "reserve host ports",
            run: () => {
              try {
                for (const p of ep.ports) {
                  const r = reservePort(this.sys, p);
                  portFds.push(r.fd);
                  ports.push(r.binding);
                  // On an IPv6 network a port published on every address is also published on
                  // every IPv6 one, with the same number (as Docker shows: 0.0.0.0 and [::]).
                  if (ep.ip6 && r.binding.hostIp === "0.0.0.0") {
                    const r6 = reservePort(this.sys, { ...r.binding, hostIp: "::" });
                    portFds.push(r6.fd);
                    ports.push(r6.binding);
                  }
                }
              } catch (err) {
                for (const fd of portFds) this.sys.close(fd);
                throw err;
              }
              return () => portFds.forEach((fd) => this.sys.close(fd));
            },
          },
          {
            name: `create veth ${hostIf}`,
            run: () => {
              rt.addVeth({ hostName: hostIf, master: rt.linkIndex(state.bridge)!, peerName: sb.ifname, peerNetnsFd: sb.netnsFd, peerMac: ep.mac });
              return () => rt.deleteLink(hostIf);
            },
          },
          {
            name: `configure ${sb.ifname} in the container`,
            run: () => {
              inner = Rtnl.open(this.sys, sb.netnsFd);
              const idx = inner.linkIndex(sb.ifname)!;
              inner.addAddress(idx, ep.ip, ep.prefix, sb.ifname);
              inner.setUp(idx, sb.ifname);
              if (!state.internal && sb.defaultRoute) inner.addDefaultRoute(idx, ep.gateway, sb.ifname);
              if (ep.ip6 && ep.prefix6) {
                inner.addAddress(idx, ep.ip6, ep.prefix6, sb.ifname);
                if (!state.internal && sb.defaultRoute && ep.gateway6) inner.addDefaultRoute(idx, ep.gateway6, sb.ifname);
              }
            },
          },
          {
            name: "rules",
            run: () => {
              this.endpoints.set(ep.id, { netId: net.Id, ep: { ...ep, ports }, hostIf, portFds });
              this.sync();
            },
          },
        ],
        { log: this.opts.log },
      );
    } finally {
      inner?.close();
      rt.close();
    }
    return { hostIf, ports };
  }

  async leave(_net: NetworkRecord, ep: Endpoint, hostIf?: string, opts: { sandboxGone?: boolean } = {}): Promise<void> {
    const st = this.endpoints.get(ep.id);
    this.endpoints.delete(ep.id);
    for (const fd of st?.portFds ?? []) this.sys.close(fd);
    if (st) this.sync();
    const name = st?.hostIf ?? hostIf;
    if (!name) return;
    const remove = () => {
      const rt = Rtnl.open(this.sys);
      try {
        rt.deleteLink(name);
      } finally {
        rt.close();
      }
    };
    // A pair dies with the namespace of its container end: after an exit the kernel removes it
    // (deleting it here waits for an RCU grace period, 5-10 ms); a check later catches a
    // namespace that something else still holds.
    if (opts.sandboxGone) setTimeout(() => this.tryRemove(remove, name), 2000).unref();
    else remove();
  }

  private tryRemove(remove: () => void, name: string): void {
    try {
      remove();
    } catch (err) {
      this.opts.log.warn("cannot remove a veth", { interface: name, error: messageOf(err) });
    }
  }

  async restoreEndpoint(net: NetworkRecord, ep: Endpoint, hostIf?: string): Promise<void> {
    const portFds: number[] = [];
    for (const p of ep.ports) {
      try {
        portFds.push(reservePort(this.sys, p).fd);
      } catch (err) {
        this.opts.log.warn("cannot hold a published port again", { endpoint: ep.id, port: `${p.hostIp}:${p.hostPort}`, error: messageOf(err) });
      }
    }
    this.endpoints.set(ep.id, { netId: net.Id, ep, ...(hostIf ? { hostIf } : {}), portFds });
  }

  /** End of the engine's restore: install the rules once for everything restored. */
  restored(): void {
    this.restoring = false;
    this.sync();
    // A firewall started after Bunker (dockerd setting FORWARD to DROP) is caught within seconds
    // even while no network or container changes.
    if (this.opts.iptables !== false) setInterval(() => this.coexist(), 5000).unref();
  }

  /** Accept this driver's bridges in other programs' dropping forward chains (see foreign-forward.ts). */
  private coexist(): void {
    acceptBridgesInForeignForward(
      this.sys,
      this.opts.table,
      [...this.networks.values()].map((n) => n.bridge),
      this.opts.log,
    );
  }

  /** The driver's table (family ip) from its current state. */
  ruleset(): Ruleset {
    return this.rulesetFor("ip");
  }

  /** The driver's ip6 table: the same rules for the IPv6 networks and ports (no loopback or hairpin masquerade). */
  ruleset6(): Ruleset {
    return this.rulesetFor("ip6");
  }

  private rulesetFor(family: "ip" | "ip6"): Ruleset {
    const nets: RuleNetwork[] = [...this.networks.values()];
    const eps: RuleEndpoint[] = [...this.endpoints.values()].map((e) => ({ containerId: e.ep.containerId, ip: e.ep.ip, ...(e.ep.ip6 ? { ip6: e.ep.ip6 } : {}), ports: e.ep.ports }));
    return bridgeRuleset(this.opts.table, family, nets, eps);
  }

  /** What was installed last (the first install after a start replaces the whole table). */
  private installed: Installed | undefined;
  private installed6: Installed | undefined;
  private dropped6 = false;

  private sync(): void {
    if (this.restoring || this.opts.iptables === false) return;
    this.coexist();
    this.installed = applyRuleset(this.sys, this.ruleset(), this.installed);
    // The ip6 table exists once an IPv6 network has; until then nothing is installed (a copy a
    // previous run left behind is dropped at the first sync).
    if (!this.installed6 && ![...this.networks.values()].some((n) => n.subnet6)) {
      if (!this.dropped6) removeTable(this.sys, this.opts.table, "ip6");
      this.dropped6 = true;
      return;
    }
    this.installed6 = applyRuleset(this.sys, this.ruleset6(), this.installed6);
  }
}
