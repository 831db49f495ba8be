/** IPv4 addresses and subnets as unsigned 32-bit numbers. */
import { invalidArgument } from "../errors.ts";

/** A parsed CIDR: network address, prefix length. */
export interface Cidr {
  base: number;
  prefix: number;
}

/** Dotted quad → number; throws invalid-argument on anything else. */
export function parseIPv4(ip: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m || m.slice(1).some((p) => Number(p) > 255)) throw invalidArgument(`invalid IP address: ${ip}`);
  return ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
}

/** Number → dotted quad. */
export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** The netmask of a prefix length. */
export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
}

/** Parse `a.b.c.d/n`; the host bits are cleared (as Docker does: "172.20.1.5/16" is 172.20.0.0/16). */
export function parseCidr(s: string): Cidr {
  const [ip, p] = s.split("/");
  const prefix = Number(p);
  if (!ip || p === undefined || !/^\d+$/.test(p) || prefix > 32) throw invalidArgument(`invalid CIDR address: ${s}`);
  return { base: (parseIPv4(ip) & maskOf(prefix)) >>> 0, prefix };
}

/** `a.b.c.d/n`. */
export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.base)}/${c.prefix}`;
}

/** Whether two subnets share any address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return (a.base & maskOf(p)) >>> 0 === (b.base & maskOf(p)) >>> 0;
}
