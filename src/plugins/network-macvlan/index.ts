/**
 * The `macvlan` network driver (`network.v1` plugin "macvlan"), after libnetwork's: each
 * container gets a macvlan interface in bridge mode on the network's parent link (`-o
 * parent=eth1`; without one, a dummy link `dm-<id>` is made, as Docker does (an empty bridge
 * where the kernel has no dummy driver), so containers of
 * the network reach only each other), created directly in the container's namespace as `eth0`.
 * No NAT and no published ports: containers sit on the parent's segment. The interface goes away
 * with the container's namespace.
 */
import { EngineError, NotSupportedError, SyscallError } from "../../core/errors.ts";
import { definePlugin } from "../../core/plugin/types.ts";
import { Rtnl } from "../../core/network/rtnl.ts";
import type { Endpoint, JoinResult, LeaveOptions, NetworkDriver, NetworkRecord, Sandbox } from "../../core/network/types.ts";
import type { Sys } from "../../core/sys/sys.ts";

const EOPNOTSUPP = 95;

/** The parent link of a network: its `parent` option or the dummy the driver made. */
function parentOf(net: NetworkRecord): { name: string; dummy: boolean } {
  const p = net.Options["parent"];
  return p ? { name: p, dummy: false } : { name: `dm-${net.Id.slice(0, 12)}`, dummy: true };
}

/** The driver. */
export class MacvlanDriver implements NetworkDriver {
  readonly name = "macvlan";

  constructor(private readonly sys: Sys) {}

  private withRtnl<T>(fn: (rt: Rtnl) => T, netnsFd?: number): T {
    const rt = Rtnl.open(this.sys, netnsFd);
    try {
      return fn(rt);
    } finally {
      rt.close();
    }
  }

  async createNetwork(net: NetworkRecord): Promise<void> {
    const parent = parentOf(net);
    this.withRtnl((rt) => {
      if (rt.linkIndex(parent.name) !== undefined) return;
      if (!parent.dummy) throw new EngineError("invalid-argument", `-o parent interface was not found on the host: ${parent.name}`);
      try {
        rt.addSimple(parent.name, "dummy");
      } catch (err) {
        // A kernel without the dummy driver (this project's VM): an empty bridge is just as closed a segment.
        if (!(err instanceof SyscallError && err.errno === EOPNOTSUPP)) throw err;
        rt.addSimple(parent.name, "bridge");
      }
    });
  }

  async deleteNetwork(net: NetworkRecord): Promise<void> {
    const parent = parentOf(net);
    if (parent.dummy) this.withRtnl((rt) => rt.deleteLink(parent.name));
  }

  async join(net: NetworkRecord, ep: Endpoint, sb: Sandbox): Promise<JoinResult> {
    if (ep.ports.length) throw new EngineError("invalid-argument", "the macvlan driver does not publish ports: containers are reachable on the parent's network directly");
    const parent = this.withRtnl((rt) => rt.linkIndex(parentOf(net).name));
    if (parent === undefined) throw new EngineError("failed-precondition", `parent interface ${parentOf(net).name} of network ${net.Name} is gone`);
    this.withRtnl((rt) => rt.addMacvlan({ name: sb.ifname, parent, netnsFd: sb.netnsFd, mac: ep.mac }));
    this.withRtnl((inner) => {
      const idx = inner.linkIndex(sb.ifname)!;
      inner.addAddress(idx, ep.ip, ep.prefix, sb.ifname);
      inner.setUp(idx, sb.ifname);
      if (sb.defaultRoute && !net.Internal && ep.gateway) inner.addDefaultRoute(idx, ep.gateway, sb.ifname);
    }, sb.netnsFd);
    return { ports: [] };
  }

  async leave(_net: NetworkRecord, _ep: Endpoint, _hostIf?: string, opts: LeaveOptions = {}): Promise<void> {
    // The macvlan lives only in the container's namespace: it goes with it at an exit, and is
    // deleted there when a running container is disconnected.
    if (opts.sandbox) this.withRtnl((inner) => inner.deleteLink(opts.sandbox!.ifname), opts.sandbox.netnsFd);
  }
}

/** The macvlan network driver plugin. */
export const macvlanNetworkPlugin = definePlugin({
  type: "network.v1",
  id: "macvlan",
  async init(ctx) {
    if (process.getuid?.() !== 0) throw new NotSupportedError("the macvlan driver needs root (netlink)");
    return new MacvlanDriver(ctx.sys);
  },
});
