/**
 * The built-in IPAM ("default" driver): subnet choice from Docker's default pools, avoiding any
 * subnet already used by a network or routed on the host, and address allocation within a
 * subnet (gateway, `--ip-range`, `--aux-address` reserved; each address handed out once until
 * released). Pure functions over plain records; the network service persists the records.
 */
import { readFileSync } from "node:fs";
import { conflict, invalidArgument, resourceExhausted } from "../errors.ts";
import { type Cidr, contains, formatCidr, formatIPv4, overlaps, parseCidr, parseIPv4, sizeOf } from "./ipv4.ts";
import { type Cidr6, contains6, formatCidr6, formatIPv6, isIPv6, overlaps6, parseCidr6, parseIPv6 } from "./ipv6.ts";

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
export function chooseSubnet(taken: Cidr[], pools = defaultPools()): Cidr {
  const free = pools.find((p) => !taken.some((t) => overlaps(p, t)));
  if (!free) throw resourceExhausted("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network");
  return free;
}

/**
 * Validate and complete a pool request: subnet parsed, gateway defaulted to the first address,
 * range and aux addresses inside the subnet. Throws Docker's messages.
 */
export function completePool(p: IpamPoolConfig): IpamPoolConfig {
  const subnet = parseCidr(p.Subnet);
  if (subnet.prefix > 30) throw invalidArgument(`invalid subnet ${p.Subnet}: too small`);
  const gw = p.Gateway ? parseIPv4(p.Gateway) : subnet.base + 1;
  if (!contains(subnet, gw)) throw invalidArgument(`no matching subnet for gateway ${p.Gateway}`);
  if (p.IPRange) {
    const r = parseCidr(p.IPRange);
    if (!contains(subnet, r.base) || r.prefix < subnet.prefix) throw invalidArgument(`no matching subnet for range ${p.IPRange}`);
  }
  for (const [name, ip] of Object.entries(p.AuxiliaryAddresses ?? {})) {
    if (!contains(subnet, parseIPv4(ip))) throw invalidArgument(`no matching subnet for aux-address ${name}: ${ip}`);
  }
  return { Subnet: formatCidr(subnet), Gateway: formatIPv4(gw), ...(p.IPRange ? { IPRange: p.IPRange } : {}), ...(p.AuxiliaryAddresses ? { AuxiliaryAddresses: p.AuxiliaryAddresses } : {}) };
}

/**
 * Allocate an address for `owner`: `wanted` exactly (conflict if taken or reserved), else the
 * next free one after the last handed out, inside the range if there is one (Docker's order).
 */
export function allocate(pool: IpamPoolConfig, state: PoolState, owner: string, wanted?: string): string {
  const subnet = parseCidr(pool.Subnet);
  const reserved = new Set([pool.Gateway, ...Object.values(pool.AuxiliaryAddresses ?? {})]);
  if (wanted) {
    const n = parseIPv4(wanted);
    if (!contains(subnet, n)) throw invalidArgument(`no available IPv4 address on this network's address pools: ${wanted} is outside ${pool.Subnet}`);
    if (state.used[wanted] || reserved.has(wanted) || n === subnet.base || n === subnet.base + sizeOf(subnet) - 1) throw conflict(`Address already in use`);
    state.used[wanted] = owner;
    return wanted;
  }
  const range = pool.IPRange ? parseCidr(pool.IPRange) : subnet;
  const first = range.base;
  const size = sizeOf(range);
  const start = state.last && contains(range, parseIPv4(state.last)) ? parseIPv4(state.last) - first + 1 : 0;
  for (let i = 0; i < size; i++) {
    const n = first + ((start + i) % size);
    if (n === subnet.base || n === subnet.base + sizeOf(subnet) - 1) continue;
    const ip = formatIPv4(n);
    if (state.used[ip] || reserved.has(ip)) continue;
    state.used[ip] = owner;
    state.last = ip;
    return ip;
  }
  throw resourceExhausted(`no available IPv4 address on this network's address pools: ${pool.Subnet}`);
}

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
    if (prefix === 0 || prefix === 128 || (base >> 118n) === 0x3fan /* fe80::/10 */ || (base >> 120n) === 0xffn /* multicast */) continue;
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

/** Validate and complete an IPv6 pool request: gateway defaulted to `<subnet>::1`, range and aux addresses inside. */
export function completePool6(p: IpamPoolConfig): IpamPoolConfig {
  const subnet = parseCidr6(p.Subnet);
  if (subnet.prefix > 126) throw invalidArgument(`invalid subnet ${p.Subnet}: too small`);
  const gw = p.Gateway ? parseIPv6(p.Gateway) : subnet.base + 1n;
  if (!contains6(subnet, gw)) throw invalidArgument(`no matching subnet for gateway ${p.Gateway}`);
  if (p.IPRange) {
    const r = parseCidr6(p.IPRange);
    if (!contains6(subnet, r.base) || r.prefix < subnet.prefix) throw invalidArgument(`no matching subnet for range ${p.IPRange}`);
  }
  for (const [name, ip] of Object.entries(p.AuxiliaryAddresses ?? {})) {
    if (!contains6(subnet, parseIPv6(ip))) throw invalidArgument(`no matching subnet for aux-address ${name}: ${ip}`);
  }
  return { Subnet: formatCidr6(subnet), Gateway: formatIPv6(gw), ...(p.IPRange ? { IPRange: p.IPRange } : {}), ...(p.AuxiliaryAddresses ? { AuxiliaryAddresses: p.AuxiliaryAddresses } : {}) };
}

/**
 * Allocate an IPv6 address for `owner`: `wanted` exactly, else the next free one after the last
 * handed out (the subnet's first address, the Subnet-Router anycast, is never handed out).
 * Addresses are kept in their RFC 5952 form, so one address is one key whatever its spelling.
 */
export function allocate6(pool: IpamPoolConfig, state: PoolState, owner: string, wanted?: string): string {
  const subnet = parseCidr6(pool.Subnet);
  const norm = (ip: string) => formatIPv6(parseIPv6(ip));
  const reserved = new Set([pool.Gateway && norm(pool.Gateway), ...Object.values(pool.AuxiliaryAddresses ?? {}).map(norm)]);
  if (wanted) {
    const n = parseIPv6(wanted);
    const ip = formatIPv6(n);
    if (!contains6(subnet, n)) throw invalidArgument(`no available IPv6 address on this network's address pools: ${wanted} is outside ${pool.Subnet}`);
    if (state.used[ip] || reserved.has(ip) || n === subnet.base) throw conflict(`Address already in use`);
    state.used[ip] = owner;
    return ip;
  }
  const range: Cidr6 = pool.IPRange ? parseCidr6(pool.IPRange) : subnet;
  const size = 1n << BigInt(128 - range.prefix);
  const start = state.last && contains6(range, parseIPv6(state.last)) ? parseIPv6(state.last) - range.base + 1n : 0n;
  // Bounded: a /64 is never walked through; after this many taken addresses in a row it is full enough.
  const tries = size < 65536n ? size : 65536n;
  for (let i = 0n; i < tries; i++) {
    const n = range.base + ((start + i) % size);
    if (n === subnet.base) continue;
    const ip = formatIPv6(n);
    if (state.used[ip] || reserved.has(ip)) continue;
    state.used[ip] = owner;
    state.last = ip;
    return ip;
  }
  throw resourceExhausted(`no available IPv6 address on this network's address pools: ${pool.Subnet}`);
}
