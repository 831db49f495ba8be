/**
 * The bridge driver's nf_tables table, built from its networks and endpoints. The rule count
 * grows linearly with networks and published ports (a host with 100 networks has about 600
 * rules, not one per pair of networks), so every packet meets a bounded list and a change
 * rewrites only the chains it touches.
 *
 * Chains (family ip; the ip6 table has the same ones for IPv6 networks):
 * - `raw` (prerouting, priority -300): a packet for a container address that arrives on any
 *   interface other than its network's bridge is dropped before NAT, so a host on the LAN that
 *   routes a Bunker subnet through this host cannot reach ports that were never published
 *   (Docker 28's raw PREROUTING rule). The gateway, a host address, stays reachable. Published
 *   ports are not affected: their packets carry a host address until DNAT.
 * - `prerouting`/`output` (nat): local destinations jump to `ports`, one DNAT per published port.
 * - `postrouting` (nat): masquerade outbound traffic, loopback-published and hairpin traffic.
 * - `forward` (filter): a packet leaving its bridge for another interface jumps to `isolate`,
 *   which drops it when that interface is another Bunker bridge; `--internal` networks drop
 *   anything that enters or leaves them.
 */
import { action, match, type Rule, type Ruleset } from "../../core/network/nftables.ts";
import { isIPv6 } from "../../core/network/ipv6.ts";
import type { PortBinding } from "../../core/network/types.ts";

/** A network as the rules see it. */
export interface RuleNetwork {
  name: string;
  bridge: string;
  subnet: string;
  gateway?: string;
  subnet6?: string;
  gateway6?: string;
  internal: boolean;
}

/** An endpoint's published ports. */
export interface RuleEndpoint {
  containerId: string;
  ip: string;
  ip6?: string;
  ports: PortBinding[];
}

/** The table `table` of `family` for these networks and endpoints. */
export function bridgeRuleset(table: string, family: "ip" | "ip6", networks: RuleNetwork[], endpoints: RuleEndpoint[]): Ruleset {
  const v6 = family === "ip6";
  const rules: Rule[] = [
    { chain: "prerouting", exprs: [...match.daddrLocal(), action.jump("ports")], key: "local to ports" },
    { chain: "output", exprs: [...match.daddrLocal(), action.jump("ports")], key: "local to ports" },
  ];
  const nets = networks.filter((n) => !v6 || n.subnet6);
  const memo = memos.get(`${table} ${family}`) ?? new Map<string, Rule[]>();
  const cache = new Map<string, Rule[]>();
  for (const n of nets) {
    const k = `${family} ${n.name} ${n.bridge} ${n.subnet} ${n.gateway} ${n.subnet6} ${n.gateway6} ${n.internal}`;
    const r = memo.get(k) ?? networkRules(n, v6);
    cache.set(k, r);
    rules.push(...r);
  }
  for (const e of endpoints) {
    const target = v6 ? e.ip6 : e.ip;
    if (!target) continue;
    for (const p of e.ports) {
      if (isIPv6(p.hostIp) !== v6) continue; // each family's ports in its own table
      const key = `port ${p.hostIp} ${p.proto} ${p.hostPort} ${target} ${p.containerPort} ${e.containerId}`;
      const r = memo.get(key) ?? [portRule(p, target, e.containerId, key)];
      cache.set(key, r);
      rules.push(...r);
    }
  }
  // Only what this table holds now stays remembered (encoding ~600 rules took 9 ms per change).
  memos.set(`${table} ${family}`, cache);
  return {
    table,
    ...(v6 ? { family: "ip6" as const } : {}),
    chains: [
      { name: "raw", hook: "prerouting", type: "filter", priority: -300 },
      { name: "prerouting", hook: "prerouting", type: "nat", priority: -100 },
      { name: "output", hook: "output", type: "nat", priority: -100 },
      { name: "postrouting", hook: "postrouting", type: "nat", priority: 100 },
      { name: "forward", hook: "forward", type: "filter", priority: 0 },
      { name: "ports" },
      { name: "isolate" },
    ],
    rules,
  };
}

/** Per table and family, the rules already built, by their inputs: a change rebuilds only what it touches. */
const memos = new Map<string, Map<string, Rule[]>>();

/** The rules of one network, in the order of its chains. */
function networkRules(n: RuleNetwork, v6: boolean): Rule[] {
  const rules: Rule[] = [];
  const subnet = v6 ? n.subnet6! : n.subnet;
  const gateway = v6 ? n.gateway6 : n.gateway;
  rules.push({
    chain: "raw",
    exprs: [...match.daddrIn(subnet), ...(gateway ? match.daddrNot(gateway) : []), ...match.iifname(n.bridge, false), action.drop()],
    comment: `direct routing to ${n.name}`,
    key: `raw ${n.bridge} ${subnet} ${gateway}`,
  });
  if (!n.internal) rules.push({ chain: "postrouting", exprs: [...match.saddr(subnet), ...match.oifname(n.bridge, false), action.masquerade()], comment: `outbound ${n.name}`, key: `outbound ${n.bridge} ${subnet} ${n.name}` });
  if (!v6) {
    rules.push({ chain: "postrouting", exprs: [...match.oifname(n.bridge), ...match.ctDnat(), ...match.saddr("127.0.0.0/8"), action.masquerade()], comment: `loopback to ${n.name}`, key: `loopback ${n.bridge} ${n.name}` });
    rules.push({ chain: "postrouting", exprs: [...match.oifname(n.bridge), ...match.ctDnat(), ...match.saddr(subnet), action.masquerade()], comment: `hairpin ${n.name}`, key: `hairpin ${n.bridge} ${subnet} ${n.name}` });
  }
  if (n.internal) {
    rules.push({ chain: "forward", exprs: [...match.iifname(n.bridge), ...match.oifname(n.bridge, false), action.drop()], comment: `internal ${n.name}`, key: `internal in ${n.bridge} ${n.name}` });
    rules.push({ chain: "forward", exprs: [...match.oifname(n.bridge), ...match.iifname(n.bridge, false), action.drop()], comment: `internal ${n.name}`, key: `internal out ${n.bridge} ${n.name}` });
  }
  rules.push({ chain: "forward", exprs: [...match.iifname(n.bridge), ...match.oifname(n.bridge, false), action.jump("isolate")], comment: `leaving ${n.name}`, key: `leaving ${n.bridge} ${n.name}` });
  rules.push({ chain: "isolate", exprs: [...match.oifname(n.bridge), action.drop()], comment: `isolate ${n.name}`, key: `isolate ${n.bridge} ${n.name}` });
  return rules;
}

/** The DNAT of one published port. */
function portRule(p: PortBinding, target: string, containerId: string, key: string): Rule {
  const dst = p.hostIp && p.hostIp !== "0.0.0.0" && p.hostIp !== "::" ? match.daddr(p.hostIp) : [];
  return { chain: "ports", exprs: [...dst, ...match.dport(p.proto, p.hostPort), ...action.dnat(target, p.containerPort)], comment: `container ${containerId.slice(0, 12)}`, key };
}
