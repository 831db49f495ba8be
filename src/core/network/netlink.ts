/**
 * Netlink messages and a request/acknowledge socket over the `Sys` seam: the encoder for
 * `nlmsghdr` plus nested attributes (rtnetlink and nf_tables both use it), the decoder for
 * replies, and `NetlinkSocket.request`, which sends one message (or an nf_tables batch) and
 * turns the kernel's `NLMSG_ERROR` into a SyscallError naming the operation.
 */
import { SyscallError } from "../errors.ts";
import { AF_NETLINK, SOCK_CLOEXEC, SOCK_RAW, type Sys } from "../sys/sys.ts";

/** nlmsghdr flags. */
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_ECHO = 0x8;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
/** nlmsghdr types every family shares. */
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
/** Attribute type bit for nested attributes. */
export const NLA_F_NESTED = 0x8000;
/** Netlink protocols. */
export const NETLINK_ROUTE = 0;
export const NETLINK_NETFILTER = 12;

/** One attribute: a type and its payload (bytes, or nested attributes). */
export type Attr = { type: number; data: Uint8Array | Attr[] };

const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_SNDBUFFORCE = 32;

const align4 = (n: number) => (n + 3) & ~3;

/** Attribute constructors. */
export const nla = {
  bytes: (type: number, data: Uint8Array): Attr => ({ type, data }),
  str: (type: number, s: string): Attr => ({ type, data: new TextEncoder().encode(s + "\0") }),
  u8: (type: number, n: number): Attr => ({ type, data: Uint8Array.of(n) }),
  u16: (type: number, n: number): Attr => ({ type, data: le(2, n) }),
  u32: (type: number, n: number): Attr => ({ type, data: le(4, n) }),
  /** Network byte order (nf_tables' numbers are big-endian). */
  be32: (type: number, n: number): Attr => ({ type, data: be(4, n) }),
  be16: (type: number, n: number): Attr => ({ type, data: be(2, n) }),
  nest: (type: number, ...attrs: Attr[]): Attr => ({ type: type | NLA_F_NESTED, data: attrs }),
};

/** `n` as a `size`-byte little-endian (host order on x86-64 and arm64) array. */
export function le(size: 1 | 2 | 4, n: number): Uint8Array {
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  if (size === 1) v.setUint8(0, n);
  else if (size === 2) v.setUint16(0, n, true);
  else v.setUint32(0, n >>> 0, true);
  return b;
}

/** `n` as a `size`-byte big-endian array. */
export function be(size: 2 | 4, n: number): Uint8Array {
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  if (size === 2) v.setUint16(0, n);
  else v.setUint32(0, n >>> 0);
  return b;
}

function attrSize(a: Attr): number {
  return 4 + (a.data instanceof Uint8Array ? a.data.length : a.data.reduce((s, x) => s + align4(attrSize(x)), 0));
}

function writeAttr(out: Uint8Array, off: number, a: Attr): number {
  const size = attrSize(a);
  const v = new DataView(out.buffer, out.byteOffset);
  v.setUint16(off, size, true);
  v.setUint16(off + 2, a.type, true);
  if (a.data instanceof Uint8Array) out.set(a.data, off + 4);
  else {
    let o = off + 4;
    for (const x of a.data) o = writeAttr(out, o, x);
  }
  return off + align4(size);
}

/** Encode one message: header, fixed family header, attributes. */
export function encodeMessage(type: number, flags: number, seq: number, header: Uint8Array, attrs: Attr[]): Uint8Array {
  const len = 16 + align4(header.length) + attrs.reduce((s, a) => s + align4(attrSize(a)), 0);
  const out = new Uint8Array(len);
  const v = new DataView(out.buffer);
  v.setUint32(0, len, true);
  v.setUint16(4, type, true);
  v.setUint16(6, flags, true);
  v.setUint32(8, seq, true);
  out.set(header, 16);
  let off = 16 + align4(header.length);
  for (const a of attrs) off = writeAttr(out, off, a);
  return out;
}

/** A decoded reply message. */
export interface Message {
  type: number;
  flags: number;
  seq: number;
  /** Bytes after the 16-byte header. */
  payload: Uint8Array;
}

/** Split a receive buffer into messages. */
export function decodeMessages(buf: Uint8Array): Message[] {
  const out: Message[] = [];
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off + 16 <= buf.length) {
    const len = v.getUint32(off, true);
    if (len < 16 || off + len > buf.length) break;
    out.push({ type: v.getUint16(off + 4, true), flags: v.getUint16(off + 6, true), seq: v.getUint32(off + 8, true), payload: buf.subarray(off + 16, off + len) });
    off += align4(len);
  }
  return out;
}

/** Attributes in `buf` (after a family header), by type (nested flag cleared). */
export function decodeAttrs(buf: Uint8Array): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = v.getUint16(off, true);
    if (len < 4 || off + len > buf.length) break;
    out.set(v.getUint16(off + 2, true) & ~NLA_F_NESTED, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return out;
}

/** A netlink socket; requests are synchronous (the kernel answers before send returns). */
export class NetlinkSocket {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly buf = new Uint8Array(65536);

  private constructor(
    private readonly sys: Sys,
    readonly fd: number,
  ) {}

  /** Open a socket for `protocol`, in the daemon's namespace or the one behind `netnsFd`. */
  static open(sys: Sys, protocol: number, netnsFd?: number): NetlinkSocket {
    const type = SOCK_RAW | SOCK_CLOEXEC;
    const fd = netnsFd === undefined ? sys.socket(AF_NETLINK, type, protocol) : sys.socketInNetns(netnsFd, AF_NETLINK, type, protocol);
    return new NetlinkSocket(sys, fd);
  }

  /**
   * Make room for a message of `bytes` in one send: netlink refuses a message larger than the
   * socket's send buffer (EMSGSIZE), and an nf_tables batch must go in one message to stay
   * atomic. SO_SNDBUFFORCE (root with CAP_NET_ADMIN) passes wmem_max; SO_SNDBUF is the fallback.
   */
  fitSendBuffer(bytes: number): void {
    if (bytes < 128 * 1024) return; // the default (wmem_default, 208 KiB) holds it
    const size = le(4, Math.min(bytes * 2 + 65536, 0x7fffffff));
    try {
      this.sys.setsockopt(this.fd, SOL_SOCKET, SO_SNDBUFFORCE, size);
    } catch {
      this.sys.setsockopt(this.fd, SOL_SOCKET, SO_SNDBUF, size);
    }
  }

  /** The next sequence number. */
  nextSeq(): number {
    this.seq = (this.seq + 1) & 0x7fffffff;
    return this.seq;
  }

  /**
   * Send `data` (one or more encoded messages whose last sequence number is `seq`) and read
   * until that message is acknowledged; an error reply throws, naming `what`. Dump replies are
   * collected and returned.
   */
  request(data: Uint8Array, seq: number, what: string, op = "netlink"): Message[] {
    this.sys.send(this.fd, data, what);
    const replies: Message[] = [];
    for (;;) {
      const n = this.sys.recv(this.fd, this.buf, 0, what);
      for (const m of decodeMessages(this.buf.subarray(0, n))) {
        if (m.type === NLMSG_ERROR) {
          const code = new DataView(m.payload.buffer, m.payload.byteOffset).getInt32(0, true);
          if (code !== 0) throw new SyscallError(op, -code, what);
          if (m.seq === seq) return replies;
          continue;
        }
        if (m.type === NLMSG_DONE) {
          if (m.seq === seq) return replies;
          continue;
        }
        replies.push({ ...m, payload: m.payload.slice() }); // the receive buffer is reused
      }
    }
  }

  close(): void {
    this.sys.close(this.fd);
  }
}
