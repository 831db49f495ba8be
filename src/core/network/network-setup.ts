/**
 * Networks themselves: the service's start (records loaded, the predefined networks added, each
 * network's host side set up, running containers' endpoints taken back) and `network create`.
 */
import { ignore } from "../log.ts";
import { existsSync, readFileSync } from "node:fs";

import { conflict, EngineError, invalidArgument, messageOf } from "../errors.ts";

import { completePool, completePool6, type IpamPoolConfig, v4PoolOf } from "./ipam.ts";
import { compareApiVersions } from "../version.ts";
import { overlaps, parseCidr } from "./ipv4.ts";
import { isIPv6 } from "./ipv6.ts";

import { GATEWAY_REQUEST } from "./remote-ipam.ts";
import { Rtnl } from "./rtnl.ts";
import type { NetworkRecord } from "./types.ts";
import { routeOf } from "./endpoints.ts";

import { bridgeNameOf, type NetworkCreateRequest, NetworkService } from "./network-service.ts";

/** Load the records, add the predefined networks, set up every network's host side, take back running containers' endpoints. */
export async function init(svc: NetworkService): Promise<void> {
  if (existsSync(svc.file)) for (const n of JSON.parse(readFileSync(svc.file, "utf8")) as NetworkRecord[]) svc.networks.set(n.Id, n);
  // A create cut short before its record: what the driver made for it goes.
  await svc.deps.journal?.recover({
    "network.create": async (i) => {
      if (svc.networks.has(i.target)) return;
      const rec = i.data.network as NetworkRecord;
      const d = await svc.driverFor(rec.Driver).catch(ignore("the network's driver is gone: nothing of it to remove"));
      await d?.deleteNetwork(rec);
    },
  });
  const hasName = (name: string) => [...svc.networks.values()].some((n) => n.Name === name);
  let changed = false;
  if (!hasName("none")) svc.add(svc.record({ Name: "none", Driver: "null" })), (changed = true);
  if (!hasName("host")) svc.add(svc.record({ Name: "host", Driver: "host" })), (changed = true);
  if (!hasName("bridge") && svc.deps.drivers.has("bridge") && svc.deps.defaultBridge !== null) {
    const br = svc.deps.defaultBridge ?? "bunker0";
    const existing = routeOf(br);
    const subnet = existing ?? svc.freeSubnet([br]);
    const rec = svc.record({ Name: "bridge", Driver: "bridge", Options: { "com.docker.network.bridge.name": br, "com.docker.network.bridge.default_bridge": "true" } }, [completePool(svc.bipPool() ?? { Subnet: subnet })]);
    svc.add(rec);
    changed = true;
  }
  // --bip moved: the default bridge takes the new subnet once no running container holds an address there.
  const bip = svc.bipPool();
  const defaultNet = [...svc.networks.values()].find((n) => n.Name === "bridge");
  const current = defaultNet && v4PoolOf(defaultNet.IPAM.Config);
  if (bip && defaultNet && current && (current.Subnet !== bip.Subnet || current.Gateway !== bip.Gateway)) {
    const busy = svc.deps.containers().some((c) => c.State.Running && c.NetworkSettings?.Networks.bridge?.IPAddress);
    if (busy) svc.deps.log.warn("bip differs from the default bridge's subnet, which running containers use: kept", { bip: svc.deps.defaultBridgeCidr, subnet: current.Subnet });
    else {
      const br = bridgeNameOf(defaultNet);
      try {
        const rt = Rtnl.open(svc.deps.sys);
        try {
          if (rt.linkIndex(br) !== undefined) rt.deleteLink(br); // made again below with the new address
        } finally {
          rt.close();
        }
      } catch (err) {
        svc.deps.log.warn("cannot reset the default bridge for the new bip", { error: messageOf(err) });
      }
      defaultNet.IPAM.Config = [bip, ...defaultNet.IPAM.Config.filter((p) => isIPv6(p.Subnet))];
      changed = true;
    }
  }
  const bridgeRec = [...svc.networks.values()].find((n) => n.Name === "bridge");
  if (bridgeRec && svc.reconcileDefaultIPv6(bridgeRec)) changed = true;
  if (changed) svc.save();
  for (const n of svc.networks.values()) {
    const d = svc.deps.drivers.get(n.Driver);
    if (!d) continue;
    try {
      await d.createNetwork(n);
      await svc.startDns(n);
    } catch (err) {
      svc.deps.log.warn("network setup failed", { network: n.Name, error: messageOf(err) });
    }
  }
  // Address usage and endpoints of containers that kept running while the daemon was down.
  for (const c of svc.deps.containers()) {
    for (const [name, s] of Object.entries(c.NetworkSettings?.Networks ?? {})) {
      const n = svc.networks.get(s.NetworkID) ?? svc.find(name);
      if (!n || !s.IPAddress) continue;
      if (!c.State.Running) {
        s.IPAddress = "";
        s.GlobalIPv6Address = "";
        continue;
      }
      svc.poolOf(n).used[s.IPAddress] = s.EndpointID;
      if (s.GlobalIPv6Address) svc.poolOf(n, 6).used[s.GlobalIPv6Address] = s.EndpointID;
      const d = svc.deps.drivers.get(n.Driver);
      await d?.restoreEndpoint?.(n, svc.endpointOf(c, n, s), s.HostIf).catch((err) => svc.deps.log.warn("endpoint restore failed", { container: c.Id, error: messageOf(err) }));
    }
  }
  for (const d of svc.deps.drivers.values()) (d as { restored?: () => void }).restored?.();
}

/** `POST /networks/create`. */
export async function create(svc: NetworkService, req: NetworkCreateRequest): Promise<{ Id: string; Warning: string }> {
  // dockerd takes any name (spaces included) that does not look like a path.
  if (!req.Name || /[/\\]/.test(req.Name) || req.Name.trim() !== req.Name) throw invalidArgument(`invalid network name "${req.Name ?? ""}"`);
  // CheckDuplicate false allowed a second network of the same name until API 1.44 (Docker 25 always checks).
  const checkDuplicate = req.CheckDuplicate !== false || !req.apiVersion || compareApiVersions(req.apiVersion, "1.44") >= 0;
  if (checkDuplicate && [...svc.networks.values()].some((n) => n.Name === req.Name)) throw conflict(`network with name ${req.Name} already exists`);
  const driverName = req.Driver || "bridge";
  if (driverName === "host" || driverName === "null") throw new EngineError("permission-denied", `only one instance of "${driverName}" network is allowed`);
  const driver = await svc.driverFor(driverName);
  const ipamName = req.IPAM?.Driver && req.IPAM.Driver !== "default" ? req.IPAM.Driver : undefined;
  const taken = [...svc.networks.values()].flatMap((n) => n.IPAM.Config.filter((c) => !isIPv6(c.Subnet)).map((c) => ({ net: n, cidr: parseCidr(c.Subnet) })));
  const wanted6 = req.IPAM?.Config?.filter((p) => p.Subnet && isIPv6(p.Subnet)) ?? [];
  if (req.EnableIPv6 && driverName !== "bridge") throw invalidArgument(`IPv6 is supported on bridge networks only, not with the ${driverName} driver`);
  if (req.EnableIPv6 && ipamName) throw invalidArgument(`IPv6 is not supported with the remote IPAM driver ${ipamName}`);
  if (wanted6.length > 1) throw invalidArgument("one IPv6 subnet per network");
  let pools: IpamPoolConfig[];
  let poolId: string | undefined;
  if (ipamName) {
    const ipam = await svc.ipamFor(ipamName);
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
    if (!pools.length) pools = [completePool({ Subnet: svc.freeSubnet([]) })];
  }
  const rec = svc.record({ ...req, Driver: driverName }, pools);
  if (poolId) rec.PoolID = poolId;
  if (req.EnableIPv6) rec.IPAM.Config.push(svc.pool6For(rec, wanted6[0]));
  // An IPv6 subnet without EnableIPv6 is recorded as dockerd 20.10 records it, and not used.
  else if (wanted6[0]) rec.IPAM.Config.push(completePool6(wanted6[0]));
  // Recorded before the driver makes its bridge and rules: a daemon killed before the network
  // record is saved has them removed at its next start (init), instead of a bridge nothing owns.
  const intent = svc.deps.journal?.begin("network.create", rec.Id, { network: rec });
  try {
    await driver.createNetwork(rec);
    svc.add(rec);
    try {
      await svc.startDns(rec);
      svc.save();
    } catch (err) {
      svc.networks.delete(rec.Id);
      svc.dns.get(rec.Id)?.close();
      svc.dns.delete(rec.Id);
      await driver.deleteNetwork(rec).catch(ignore("undo of a network create: the driver's delete failed"));
      throw err;
    }
  } finally {
    if (intent) svc.deps.journal!.end(intent);
  }
  svc.publish(rec, "create");
  return { Id: rec.Id, Warning: "" };
}
