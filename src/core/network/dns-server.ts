/**
 * The embedded DNS server of a user-defined network: UDP on the network's gateway address, port
 * 53, the `nameserver` in its containers' /etc/resolv.conf. It answers A queries for the names
 * the network knows (container names, short IDs, network aliases, and the `--link` names of the
 * asking container) and forwards every other query to the upstream servers (the daemon's `dns`
 * setting, else the host's resolv.conf), relaying the first answer. AAAA for a known name gets
 * its IPv6 address on an IPv6 network, else an empty NOERROR answer, so clients fall back to
 * IPv4 at once.
 */
import { readFileSync } from "node:fs";
import type { Logger } from "../log.ts";
import { ipv6Bytes, isIPv6 } from "./ipv6.ts";

/** Looks a name up for the client at `from`: an address of `family`, or undefined when the network has none. */
export type Resolver = (name: string, from: string, family: 4 | 6) => string | undefined;

const TYPE_A = 1;
const TYPE_AAAA = 28;
const FORWARD_TIMEOUT_MS = 4000;

/** The question of a query: name (lower case, no trailing dot), type, and where it ends. */
export function parseQuestion(msg: Uint8Array): { name: string; qtype: number; end: number } | undefined {
  if (msg.length < 12) return undefined;
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  if (v.getUint16(4) !== 1) return undefined; // exactly one question
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    const len = msg[off];
    if (len === undefined || len > 63) return undefined; // no compression in questions
    off++;
    if (len === 0) break;
    if (off + len > msg.length) return undefined;
    labels.push(new TextDecoder().decode(msg.subarray(off, off + len)));
    off += len;
  }
  if (off + 4 > msg.length) return undefined;
  return { name: labels.join(".").toLowerCase(), qtype: v.getUint16(off), end: off + 4 };
}

/** An answer to `query` (its question copied) with `ip` as an A (or, with a colon, AAAA) record, or no records. */
export function answer(query: Uint8Array, end: number, ip: string | undefined, rcode = 0): Uint8Array {
  const rdata = ip ? (isIPv6(ip) ? ipv6Bytes(ip) : Uint8Array.from(ip.split("."), Number)) : new Uint8Array(0);
  const rr = ip ? 12 + rdata.length : 0;
  const out = new Uint8Array(end + rr);
  out.set(query.subarray(0, end));
  const v = new DataView(out.buffer);
  v.setUint16(2, 0x8000 | 0x0400 | ((query[2]! & 0x01) << 8) | 0x0080 | rcode); // QR, AA, RD copied, RA
  v.setUint16(6, ip ? 1 : 0);
  v.setUint16(8, 0);
  v.setUint16(10, 0);
  if (ip) {
    v.setUint16(end, 0xc00c); // pointer to the question's name
    v.setUint16(end + 2, rdata.length === 16 ? TYPE_AAAA : TYPE_A);
    v.setUint16(end + 4, 1); // IN
    v.setUint32(end + 6, 600);
    v.setUint16(end + 10, rdata.length);
    out.set(rdata, end + 12);
  }
  return out;
}

/** Upstream servers from a resolv.conf text. */
export function nameservers(text: string): string[] {
  return text
    .split("\n")
    .map((l) => /^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/.exec(l)?.[1])
    .filter((x): x is string => !!x);
}

/** A running server. */
export interface DnsServer {
  close(): void;
}

/** Serve DNS on `address:port` for one network. */
export async function startDnsServer(opts: { address: string; port?: number; resolve: Resolver; upstream: () => string[]; log: Logger }): Promise<DnsServer> {
  const sock = await Bun.udpSocket({
    hostname: opts.address,
    port: opts.port ?? 53,
    socket: {
      data(s, buf, port, addr) {
        const q = parseQuestion(buf);
        if (!q || (buf[2]! & 0x80) !== 0) return; // not a query
        if (q.qtype === TYPE_A || q.qtype === TYPE_AAAA) {
          const ip = opts.resolve(q.name, addr, 4);
          if (ip) {
            s.send(answer(buf, q.end, q.qtype === TYPE_A ? ip : opts.resolve(q.name, addr, 6)), port, addr);
            return;
          }
        }
        void forward(buf, opts.upstream(), opts.log).then((reply) => s.send(reply ?? answer(buf, q.end, undefined, 2 /* SERVFAIL */), port, addr));
      },
    },
  });
  return { close: () => sock.close() };
}

/** Send `query` to the upstream servers at once; the first reply wins. */
async function forward(query: Uint8Array, servers: string[], log: Logger): Promise<Uint8Array | undefined> {
  if (!servers.length) return undefined;
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: Uint8Array | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.then((s) => s.close());
      resolve(r);
    };
    const timer = setTimeout(() => finish(undefined), FORWARD_TIMEOUT_MS);
    const sock = Bun.udpSocket({
      socket: {
        data(_s, buf) {
          if (buf[0] === query[0] && buf[1] === query[1]) finish(new Uint8Array(buf));
        },
      },
    });
    sock.then(
      (s) => {
        for (const server of servers) s.send(query, 53, server);
      },
      (err) => {
        log.warn("dns forward failed", { error: String(err) });
        finish(undefined);
      },
    );
  });
}

/** The host's name servers (for forwarding from the daemon, loopback ones included). */
export function hostUpstream(): string[] {
  try {
    return nameservers(readFileSync("/etc/resolv.conf", "utf8"));
  } catch {
    return [];
  }
}
