/**
 * IPv6 addresses and subnets as 128-bit bigints: parsing (full, `::`-compressed and with an
 * embedded dotted quad), the RFC 5952 text form, prefixes, and the 16 bytes netlink wants.
 */
import { invalidArgument } from "../errors.ts";
import { parseIPv4 } from "./ipv4.ts";

/** A parsed IPv6 CIDR: network address, prefix length. */
export interface Cidr6 {
  base: bigint;
  prefix: number;
}

const ALL = (1n << 128n) - 1n;

/** Whether `s` looks like an IPv6 address or subnet (has a colon). */
export function isIPv6(s: string): boolean {
  return s.includes(":");
}

/** Text → 128-bit number; throws invalid-argument on anything else. */
export function parseIPv6(ip: string): bigint {
  const bad = () => invalidArgument(`invalid IP address: ${ip}`);
  if (!/^[0-9a-fA-F:.]+$/.test(ip) || ip.split("::").length > 2) throw bad();
  let text = ip;
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    // An embedded dotted quad (`::ffff:1.2.3.4`) stands for the last two groups.
    const v4 = parseIPv4(text.slice(lastColon + 1));
    text = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const groups = (part: string) => (part === "" ? [] : part.split(":").map((g) => (/^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : Number.NaN)));
  let words: number[];
  if (text.includes("::")) {
    const [head = "", rest = ""] = text.split("::");
    const h = groups(head);
    const r = groups(rest);
    const fill = 8 - h.length - r.length;
    if (fill < 1) throw bad();
    words = [...h, ...new Array<number>(fill).fill(0), ...r];
  } else {
    words = groups(text);
  }
  if (words.length !== 8 || words.some((w) => Number.isNaN(w))) throw bad();
  return words.reduce((n, w) => (n << 16n) | BigInt(w), 0n);
}

/** 128-bit number → RFC 5952 text (lower case, the longest run of two or more zero groups as `::`). */
export function formatIPv6(n: bigint): string {
  const words = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(":");
  if (best < 0) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

/** The mask of a prefix length. */
export function maskOf6(prefix: number): bigint {
  return prefix === 0 ? 0n : (ALL << BigInt(128 - prefix)) & ALL;
}

/** Parse `addr/n`; host bits are cleared. */
export function parseCidr6(s: string): Cidr6 {
  const [ip, p] = s.split("/");
  const prefix = Number(p);
  if (!ip || p === undefined || !/^\d+$/.test(p) || prefix > 128) throw invalidArgument(`invalid CIDR address: ${s}`);
  return { base: parseIPv6(ip) & maskOf6(prefix), prefix };
}

/** `addr/n`. */
export function formatCidr6(c: Cidr6): string {
  return `${formatIPv6(c.base)}/${c.prefix}`;
}

/** Whether two subnets share any address. */
export function overlaps6(a: Cidr6, b: Cidr6): boolean {
  const m = maskOf6(Math.min(a.prefix, b.prefix));
  return (a.base & m) === (b.base & m);
}

/** The 16 bytes of an address, network order. */
export function ipv6Bytes(ip: string): Uint8Array {
  const n = parseIPv6(ip);
  return Uint8Array.from({ length: 16 }, (_, i) => Number((n >> BigInt(120 - 8 * i)) & 0xffn));
}

/** The 16 bytes of a prefix's mask. */
export function maskBytes6(prefix: number): Uint8Array {
  const m = maskOf6(prefix);
  return Uint8Array.from({ length: 16 }, (_, i) => Number((m >> BigInt(120 - 8 * i)) & 0xffn));
}
