/**
 * The built-in IPAM ("default" driver): subnet choice from Docker's default pools, avoiding any
 * subnet already used by a network or routed on the host, and address allocation within a
 * subnet (gateway, `--ip-range`, `--aux-address` reserved; each address handed out once until
 * released). Pure functions over plain records; the network service persists the records.
 */
import { readFileSync } from "node:fs";
import { conflict, invalidArgument, resourceExhausted } from "../errors.ts";
import { type Cidr, formatIPv4, overlaps, parseCidr, parseIPv4 } from "./ipv4.ts";
import { type Cidr6, formatIPv6, isIPv6, overlaps6, parseCidr6, parseIPv6 } from "./ipv6.ts";

/** One pool of a network, as Docker shows it in `IPAM.Config`. */
export interface IpamPoolConfig {
  Subnet: string;
  Gateway?: string;
  IPRange?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

/** Allocation state of one pool: addresses in use, and the last one handed out. */
export interface PoolState {
  used: Record<string, string>;
  last?: string;
}

/** Docker's default address pools: 172.17.0.0/16 .. 172.31.0.0/16, then 192.168.0.0/16 cut into /20s. */
export function defaultPools(): Cidr[] {
  const out: Cidr[] = [];
  for (let i = 17; i <= 31; i++) out.push(parseCidr(`172.${i}.0.0/16`));
  for (let i = 0; i < 256; i += 16) out.push(parseCidr(`192.168.${i}.0/20`));
  return out;
}

/** A `default-address-pools` entry: subnets of prefix `size` cut from `base`. */
export interface AddressPoolSpec {
  base: string;
  size: number;
}

/** The subnets of `specs`, in order (dockerd's `default-address-pools`), generated lazily. */
export function* configuredPools(specs: AddressPoolSpec[]): Generator<Cidr> {
  for (const s of specs) {
    const base = parseCidr(s.base);
    if (s.size < base.prefix || s.size > 30) throw invalidArgument(`invalid default address pool ${s.base} size ${s.size}: the size must be between ${base.prefix} and 30`);
    const step = 2 ** (32 - s.size);
    const end = base.base + 2 ** (32 - base.prefix);
    for (let n = base.base; n < end; n += step) yield { base: n, prefix: s.size };
  }
}

/** A host route: its interface and destination subnet. */
export interface HostRoute {
  iface: string;
  cidr: Cidr;
}

/** IPv4 destinations in the host's routing table (`/proc/net/route`), default route excluded. */
export function hostRoutes(text = safeRead("/proc/net/route")): HostRoute[] {
  const out: HostRoute[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const dest = swap(parseInt(f[1]!, 16));
    const mask = swap(parseInt(f[7]!, 16));
    if (mask === 0) continue;
    out.push({ iface: f[0]!, cidr: { base: dest, prefix: 32 - Math.log2(2 ** 32 - mask) } });
  }
  return out;
}

function swap(n: number): number {
  return (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) | (n >>> 24)) >>> 0;
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** The first default pool that overlaps no subnet in `taken` (other networks, host routes). */
export function chooseSubnet(taken: Cidr[], pools: Iterable<Cidr> = defaultPools()): Cidr {
  let free: Cidr | undefined;
  for (const p of pools) {
    if (taken.some((t) => overlaps(p, t))) continue;
    free = p;
    break;
  }
  if (!free) throw resourceExhausted("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network");
  return free;
}

/** What the pool functions need of an address family; addresses are bigints for both. */
interface Family {
  name: "IPv4" | "IPv6";
  bits: number;
  parse(ip: string): bigint;
  format(n: bigint): string;
  /** Whether the subnet's last address is its broadcast address (never handed out). */
  broadcast: boolean;
}

const V4: Family = { name: "IPv4", bits: 32, parse: (ip) => BigInt(parseIPv4(ip)), format: (n) => formatIPv4(Number(n)), broadcast: true };
const V6: Family = { name: "IPv6", bits: 128, parse: parseIPv6, format: formatIPv6, broadcast: false };

function cidrIn(f: Family, s: string): { base: bigint; prefix: number } {
  if (f === V6) return parseCidr6(s);
  const c = parseCidr(s);
  return { base: BigInt(c.base), prefix: c.prefix };
}
const inside = (f: Family, c: { base: bigint; prefix: number }, n: bigint) => n >> BigInt(f.bits - c.prefix) === c.base >> BigInt(f.bits - c.prefix);

/**
 * Validate and complete a pool request of family `f`: subnet parsed, gateway defaulted to the
 * first address, range and aux addresses inside the subnet. Throws Docker's messages.
 */
function completeIn(f: Family, p: IpamPoolConfig): IpamPoolConfig {
  const subnet = cidrIn(f, p.Subnet);
  if (subnet.prefix > f.bits - 2) throw invalidArgument(`invalid subnet ${p.Subnet}: too small`);
  const gw = p.Gateway ? f.parse(p.Gateway) : subnet.base + 1n;
  if (!inside(f, subnet, gw)) throw invalidArgument(`no matching subnet for gateway ${p.Gateway}`);
  if (p.IPRange) {
    const r = cidrIn(f, p.IPRange);
    if (!inside(f, subnet, r.base) || r.prefix < subnet.prefix) throw invalidArgument(`no matching subnet for range ${p.IPRange}`);
  }
  for (const [name, ip] of Object.entries(p.AuxiliaryAddresses ?? {})) {
    if (!inside(f, subnet, f.parse(ip))) throw invalidArgument(`no matching subnet for aux-address ${name}: ${ip}`);
  }
  return { Subnet: `${f.format(subnet.base)}/${subnet.prefix}`, Gateway: f.format(gw), ...(p.IPRange ? { IPRange: p.IPRange } : {}), ...(p.AuxiliaryAddresses ? { AuxiliaryAddresses: p.AuxiliaryAddresses } : {}) };
}

/**
 * Allocate an address of family `f` for `owner`: `wanted` exactly (conflict if taken or
 * reserved), else the next free one after the last handed out, inside the range if there is
 * one (Docker's order). The subnet's first address (and an IPv4 broadcast) is never handed out.
 * Addresses are kept in their canonical text, so one address is one key whatever its spelling.
 * The search is bounded: an IPv6 /64 is never walked through.
 */
function allocateIn(f: Family, pool: IpamPoolConfig, state: PoolState, owner: string, wanted?: string): string {
  const subnet = cidrIn(f, pool.Subnet);
  const last = subnet.base + (1n << BigInt(f.bits - subnet.prefix)) - 1n;
  const excluded = (n: bigint) => n === subnet.base || (f.broadcast && n === last);
  const reserved = new Set([pool.Gateway, ...Object.values(pool.AuxiliaryAddresses ?? {})].filter((x): x is string => !!x).map((ip) => f.format(f.parse(ip))));
  if (wanted) {
    const n = f.parse(wanted);
    const ip = f.format(n);
    if (!inside(f, subnet, n)) throw invalidArgument(`no available ${f.name} address on this network's address pools: ${wanted} is outside ${pool.Subnet}`);
    if (state.used[ip] || reserved.has(ip) || excluded(n)) throw conflict(`Address already in use`);
    state.used[ip] = owner;
    return ip;
  }
  const range = pool.IPRange ? cidrIn(f, pool.IPRange) : subnet;
  const size = 1n << BigInt(f.bits - range.prefix);
  const start = state.last && inside(f, range, f.parse(state.last)) ? f.parse(state.last) - range.base + 1n : 0n;
  const tries = size < 1n << 20n ? size : 1n << 20n;
  for (let i = 0n; i < tries; i++) {
    const n = range.base + ((start + i) % size);
    if (excluded(n)) continue;
    const ip = f.format(n);
    if (state.used[ip] || reserved.has(ip)) continue;
    state.used[ip] = owner;
    state.last = ip;
    return ip;
  }
  throw resourceExhausted(`no available ${f.name} address on this network's address pools: ${pool.Subnet}`);
}

/** Validate and complete an IPv4 pool request (gateway defaulted to the first address). */
export const completePool = (p: IpamPoolConfig): IpamPoolConfig => completeIn(V4, p);
/** Validate and complete an IPv6 pool request (gateway defaulted to `<subnet>::1`). */
export const completePool6 = (p: IpamPoolConfig): IpamPoolConfig => completeIn(V6, p);
/** Allocate an IPv4 address (see `allocateIn`). */
export const allocate = (pool: IpamPoolConfig, state: PoolState, owner: string, wanted?: string): string => allocateIn(V4, pool, state, owner, wanted);
/** Allocate an IPv6 address (see `allocateIn`). */
export const allocate6 = (pool: IpamPoolConfig, state: PoolState, owner: string, wanted?: string): string => allocateIn(V6, pool, state, owner, wanted);

/** Release `ip` if `owner` holds it (releasing twice, or someone else's address, does nothing). */
export function release(state: PoolState, ip: string, owner: string): boolean {
  if (state.used[ip] !== owner) return false;
  delete state.used[ip];
  return true;
}

// ---- IPv6 ------------------------------------------------------------------------------------

/** The IPv4 pool of a network's IPAM config (the first one without a colon). */
export function v4PoolOf(config: IpamPoolConfig[]): IpamPoolConfig | undefined {
  return config.find((p) => p.Subnet && !isIPv6(p.Subnet));
}

/** The IPv6 pool of a network's IPAM config, if it has one. */
export function v6PoolOf(config: IpamPoolConfig[]): IpamPoolConfig | undefined {
  return config.find((p) => p.Subnet && isIPv6(p.Subnet));
}

/** IPv6 destinations in the host's routing table (`/proc/net/ipv6_route`), default and link-local left out. */
export function hostRoutes6(text = safeRead("/proc/net/ipv6_route")): { iface: string; cidr: Cidr6 }[] {
  const out: { iface: string; cidr: Cidr6 }[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !/^[0-9a-f]{32}$/.test(f[0]!)) continue;
    const prefix = parseInt(f[1]!, 16);
    const base = BigInt(`0x${f[0]}`);
    if (prefix === 0 || prefix === 128 || base >> 118n === 0x3fan /* fe80::/10 */ || base >> 120n === 0xffn /* multicast */) continue;
    out.push({ iface: f[9]!, cidr: { base, prefix } });
  }
  return out;
}

/**
 * A /64 for a network given `--ipv6` without a subnet: from the unique-local range, its 40-bit
 * global ID and subnet ID taken from `seed` (the network's ID), as Docker's default IPv6 pool is
 * a ULA prefix; moved on while it overlaps `taken`.
 */
export function chooseSubnet6(seed: string, taken: Cidr6[]): Cidr6 {
  for (let i = 0; i < 64; i++) {
    const hex = new Bun.CryptoHasher("sha256").update(`${seed}/${i}`).digest("hex");
    const c: Cidr6 = { base: (0xfdn << 120n) | (BigInt(`0x${hex.slice(0, 14)}`) << 64n), prefix: 64 };
    if (!taken.some((t) => overlaps6(t, c))) return c;
  }
  throw resourceExhausted("could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network");
}
