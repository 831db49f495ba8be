/**
 * A network driver behind Docker's remote NetworkDriver protocol (docker-api.md §5.3), so an
 * existing Docker network plugin works unchanged: networks and endpoints are created through
 * the plugin, `Join` names a host interface that the engine then moves into the container's
 * namespace (renamed `<DstPrefix><n>`) and configures with the endpoint's address and the
 * plugin's gateway. Methods the plugin does not implement (HTTP 404) are skipped, as libnetwork does.
 */
import { ignore } from "../log.ts";
import * as v from "valibot";
import { EngineError, messageOf } from "../errors.ts";
import type { Logger } from "../log.ts";
import { type DockerPluginClient, dockerPluginFinder } from "../plugin/docker-plugin.ts";
import { O_CLOEXEC, O_RDONLY, type Sys } from "../sys/sys.ts";
import { Rtnl } from "./rtnl.ts";
import type { Endpoint, JoinResult, LeaveOptions, NetworkDriver, NetworkRecord, Sandbox } from "./types.ts";

const Empty = v.looseObject({});
const CreateEndpointReply = v.looseObject({ Interface: v.nullish(v.looseObject({ MacAddress: v.nullish(v.string()) })) });
const JoinReply = v.looseObject({
  InterfaceName: v.looseObject({ SrcName: v.string(), DstPrefix: v.string() }),
  Gateway: v.nullish(v.string()),
  DisableGatewayService: v.nullish(v.boolean()),
});

/** The NetworkDriver proxy for one activated plugin. */
export class RemoteNetworkDriver implements NetworkDriver {
  constructor(
    readonly name: string,
    private readonly client: DockerPluginClient,
    private readonly sys: Sys,
    private readonly log: Logger,
  ) {}

  /** A call whose 404 means "not implemented" (skipped) rather than failure. */
  private async optional(method: string, body: unknown): Promise<void> {
    const res = await this.client.request(method, body);
    if (res.status === 404) return;
    const text = await res.text();
    const err = text ? (JSON.parse(text) as { Err?: string }).Err : undefined;
    if (err || !res.ok) throw new EngineError("internal", `plugin ${this.name}: ${method}: ${err || `HTTP ${res.status}`}`);
  }

  async createNetwork(net: NetworkRecord): Promise<void> {
    const ipv4 = net.IPAM.Config.map((p) => ({
      AddressSpace: "LocalDefault",
      Pool: p.Subnet,
      Gateway: p.Gateway ? `${p.Gateway}/${p.Subnet.split("/")[1]}` : "",
      AuxAddresses: Object.fromEntries(Object.entries(p.AuxiliaryAddresses ?? {}).map(([k, ip]) => [k, `${ip}/${p.Subnet.split("/")[1]}`])),
    }));
    await this.client.call("NetworkDriver.CreateNetwork", { NetworkID: net.Id, Options: { "com.docker.network.generic": net.Options, "com.docker.network.enable_ipv6": false }, IPv4Data: ipv4, IPv6Data: [] }, Empty);
  }

  async deleteNetwork(net: NetworkRecord): Promise<void> {
    await this.client.call("NetworkDriver.DeleteNetwork", { NetworkID: net.Id }, Empty);
  }

  async join(net: NetworkRecord, ep: Endpoint, sb: Sandbox): Promise<JoinResult> {
    const ids = { NetworkID: net.Id, EndpointID: ep.id };
    await this.client.call("NetworkDriver.CreateEndpoint", { ...ids, Options: {}, Interface: { Address: `${ep.ip}/${ep.prefix}`, AddressIPv6: "", MacAddress: ep.mac } }, CreateEndpointReply);
    try {
      const j = await this.client.call("NetworkDriver.Join", { ...ids, SandboxKey: sb.key, Options: {} }, JoinReply);
      const host = Rtnl.open(this.sys);
      try {
        host.moveLink(j.InterfaceName.SrcName, sb.netnsFd, sb.ifname);
      } finally {
        host.close();
      }
      const inner = Rtnl.open(this.sys, sb.netnsFd);
      try {
        const idx = inner.linkIndex(sb.ifname)!;
        inner.addAddress(idx, ep.ip, ep.prefix, sb.ifname);
        inner.setUp(idx, sb.ifname);
        const gw = j.Gateway || ep.gateway;
        if (sb.defaultRoute && gw) inner.addDefaultRoute(idx, gw, sb.ifname);
      } finally {
        inner.close();
      }
      await this.optional("NetworkDriver.ProgramExternalConnectivity", { ...ids, Options: {} });
      return { hostIf: j.InterfaceName.SrcName, ports: [] };
    } catch (err) {
      await this.leave(net, ep).catch(ignore("undo of a remote join: leave failed"));
      throw err;
    }
  }

  async leave(net: NetworkRecord, ep: Endpoint, hostIf?: string, opts: LeaveOptions = {}): Promise<void> {
    const ids = { NetworkID: net.Id, EndpointID: ep.id };
    // A running container being disconnected: its interface goes back to the host under the name
    // the plugin gave it, so that the plugin's DeleteEndpoint can remove it (libnetwork's order).
    if (opts.sandbox && hostIf) {
      const hostNs = this.sys.openat2(-100, "/proc/self/ns/net", O_RDONLY | O_CLOEXEC, 0, 0);
      const inner = Rtnl.open(this.sys, opts.sandbox.netnsFd);
      try {
        inner.moveLink(opts.sandbox.ifname, hostNs, hostIf);
      } catch (err) {
        this.log.warn("cannot move a plugin's interface back to the host", { plugin: this.name, interface: opts.sandbox.ifname, error: messageOf(err) });
      } finally {
        inner.close();
        this.sys.close(hostNs);
      }
    }
    for (const m of ["NetworkDriver.RevokeExternalConnectivity", "NetworkDriver.Leave", "NetworkDriver.DeleteEndpoint"]) {
      await this.optional(m, ids).catch((err) => this.log.warn("network plugin call failed", { plugin: this.name, method: m, error: messageOf(err) }));
    }
  }
}

/** Docker network plugins by name (moby's discovery), activated once each; undefined when absent. */
export function remoteNetworkDrivers(sys: Sys, log: Logger, opts: { dirs?: string[]; retryFor?: number } = {}): (name: string) => Promise<NetworkDriver | undefined> {
  return dockerPluginFinder("NetworkDriver", (name, client) => new RemoteNetworkDriver(name, client, sys, log), opts);
}
