/**
 * rtnetlink operations the network drivers need, as netlink messages (no `ip` process):
 * bridges, veth pairs created with their peer already in the container's namespace under its
 * final name, addresses, routes, link state and deletion.
 */
import { ENOENT } from "../sys/sys.ts";
import type { Sys } from "../sys/sys.ts";
import { SyscallError } from "../errors.ts";
import { type Attr, decodeAttrs, encodeMessage, NETLINK_ROUTE, NetlinkSocket, nla, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST } from "./netlink.ts";
import { parseIPv4 } from "./ipv4.ts";
import { formatIPv6, ipv6Bytes, isIPv6 } from "./ipv6.ts";

const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const RTM_NEWADDR = 20;
const RTM_DELADDR = 21;
const RTM_GETADDR = 22;
const NLM_F_DUMP = 0x300;
const RTM_NEWROUTE = 24;
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINK = 5;
const IFLA_MASTER = 10;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_NET_NS_FD = 28;
const VETH_INFO_PEER = 1;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_BROADCAST = 4;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const IFF_UP = 1;
const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_INET6 = 10;
const IFA_F_NODAD = 0x02;
const ENODEV = 19;

/** struct ifinfomsg. */
function ifinfomsg(index = 0, up = false): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint8(0, AF_UNSPEC);
  v.setInt32(4, index, true);
  v.setUint32(8, up ? IFF_UP : 0, true);
  v.setUint32(12, up ? IFF_UP : 0, true);
  return b;
}

/** A MAC address string as bytes. */
export function macBytes(mac: string): Uint8Array {
  return Uint8Array.from(mac.split(":").map((h) => parseInt(h, 16)));
}

/** Link, address and route operations on one namespace (the daemon's, or a container's). */
export class Rtnl {
  private constructor(private readonly sock: NetlinkSocket) {}

  /** A handle on the daemon's namespace, or on the one behind `netnsFd`. */
  static open(sys: Sys, netnsFd?: number): Rtnl {
    return new Rtnl(NetlinkSocket.open(sys, NETLINK_ROUTE, netnsFd));
  }

  close(): void {
    this.sock.close();
  }

  private req(type: number, flags: number, header: Uint8Array, attrs: Attr[], what: string, op: string) {
    const seq = this.sock.nextSeq();
    return this.sock.request(encodeMessage(type, NLM_F_REQUEST | NLM_F_ACK | flags, seq, header, attrs), seq, what, op);
  }

  /** The interface index of `name`, or undefined when there is none. */
  linkIndex(name: string): number | undefined {
    try {
      const [m] = this.req(RTM_GETLINK, 0, ifinfomsg(), [nla.str(IFLA_IFNAME, name)], name, "RTM_GETLINK");
      return m ? new DataView(m.payload.buffer, m.payload.byteOffset).getInt32(4, true) : undefined;
    } catch (err) {
      if (err instanceof SyscallError && (err.errno === ENODEV || err.errno === ENOENT)) return undefined;
      throw err;
    }
  }

  /** The MAC address of `name`. */
  linkMac(name: string): string | undefined {
    try {
      const [m] = this.req(RTM_GETLINK, 0, ifinfomsg(), [nla.str(IFLA_IFNAME, name)], name, "RTM_GETLINK");
      const mac = m && decodeAttrs(m.payload.subarray(16)).get(IFLA_ADDRESS);
      return mac ? [...mac].map((b) => b.toString(16).padStart(2, "0")).join(":") : undefined;
    } catch (err) {
      if (err instanceof SyscallError && err.errno === ENODEV) return undefined;
      throw err;
    }
  }

  /** Create a bridge, up (EEXIST when it exists). */
  addBridge(name: string, mtu?: number): void {
    const attrs = [nla.str(IFLA_IFNAME, name), nla.nest(IFLA_LINKINFO, nla.str(IFLA_INFO_KIND, "bridge"))];
    if (mtu) attrs.push(nla.u32(IFLA_MTU, mtu));
    this.req(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfomsg(0, true), attrs, name, "RTM_NEWLINK");
  }

  /**
   * A veth pair: `hostName` here, enslaved to `master` and up; its peer created directly in the
   * namespace behind `peerNetnsFd` as `peerName` with `peerMac` (no move or rename afterwards).
   */
  addVeth(o: { hostName: string; master: number; peerName: string; peerNetnsFd: number; peerMac: string; mtu?: number }): void {
    const peer = new Uint8Array(16 + 0);
    const peerAttrs: Attr[] = [nla.str(IFLA_IFNAME, o.peerName), nla.u32(IFLA_NET_NS_FD, o.peerNetnsFd), nla.bytes(IFLA_ADDRESS, macBytes(o.peerMac))];
    if (o.mtu) peerAttrs.push(nla.u32(IFLA_MTU, o.mtu));
    const attrs: Attr[] = [nla.str(IFLA_IFNAME, o.hostName), nla.u32(IFLA_MASTER, o.master), nla.nest(IFLA_LINKINFO, nla.str(IFLA_INFO_KIND, "veth"), nla.nest(IFLA_INFO_DATA, { type: VETH_INFO_PEER, data: concatPeer(peer, peerAttrs) }))];
    if (o.mtu) attrs.push(nla.u32(IFLA_MTU, o.mtu));
    this.req(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfomsg(0, true), attrs, o.hostName, "RTM_NEWLINK");
  }

  /** Move link `name` into the namespace behind `netnsFd`, renamed `newName` there (one message). */
  moveLink(name: string, netnsFd: number, newName: string): void {
    const index = this.linkIndex(name);
    if (index === undefined) throw new SyscallError("RTM_NEWLINK", ENODEV, name, "no such interface");
    this.req(RTM_NEWLINK, 0, ifinfomsg(index), [nla.u32(IFLA_NET_NS_FD, netnsFd), nla.str(IFLA_IFNAME, newName)], name, "RTM_NEWLINK");
  }

  /** A link of `kind` with no options (dummy, bridge without extras), up. */
  addSimple(name: string, kind: string): void {
    this.req(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfomsg(0, true), [nla.str(IFLA_IFNAME, name), nla.nest(IFLA_LINKINFO, nla.str(IFLA_INFO_KIND, kind))], name, "RTM_NEWLINK");
  }

  /**
   * A macvlan (bridge mode) on `parent`, created directly in the namespace behind `netnsFd` as
   * `name` with `mac`.
   */
  addMacvlan(o: { name: string; parent: number; netnsFd: number; mac: string }): void {
    const MACVLAN_MODE_BRIDGE = 4;
    const attrs: Attr[] = [
      nla.str(IFLA_IFNAME, o.name),
      nla.u32(IFLA_LINK, o.parent),
      nla.u32(IFLA_NET_NS_FD, o.netnsFd),
      nla.bytes(IFLA_ADDRESS, macBytes(o.mac)),
      nla.nest(IFLA_LINKINFO, nla.str(IFLA_INFO_KIND, "macvlan"), nla.nest(IFLA_INFO_DATA, nla.u32(1 /* IFLA_MACVLAN_MODE */, MACVLAN_MODE_BRIDGE))),
    ];
    this.req(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfomsg(0, false), attrs, o.name, "RTM_NEWLINK");
  }

  /** Bring a link up. */
  setUp(index: number, what: string): void {
    this.req(RTM_NEWLINK, 0, ifinfomsg(index, true), [], what, "RTM_NEWLINK");
  }

  /** Delete a link; false when it was not there. */
  deleteLink(name: string): boolean {
    try {
      this.req(RTM_DELLINK, 0, ifinfomsg(), [nla.str(IFLA_IFNAME, name)], name, "RTM_DELLINK");
      return true;
    } catch (err) {
      if (err instanceof SyscallError && (err.errno === ENODEV || err.errno === ENOENT)) return false;
      throw err;
    }
  }

  /**
   * Add an address `ip/prefix` to link `index` (EEXIST when it is there). IPv4 gets its broadcast
   * address; IPv6 skips duplicate address detection (the engine hands each address out once, and
   * DAD would leave it unusable for a second or more), as Docker does.
   */
  addAddress(index: number, ip: string, prefix: number, what: string): void {
    const { header, attrs } = addressMessage(index, ip, prefix);
    if (!isIPv6(ip)) attrs.push(nla.bytes(IFA_BROADCAST, ipBytes(broadcastOf(ip, prefix))));
    this.req(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, header, attrs, what, "RTM_NEWADDR");
  }

  /** The global-scope IPv6 addresses on link `index`. */
  addresses6(index: number, what: string): { ip: string; prefix: number }[] {
    const hdr = new Uint8Array(8);
    hdr[0] = AF_INET6;
    const out: { ip: string; prefix: number }[] = [];
    for (const m of this.req(RTM_GETADDR, NLM_F_DUMP, hdr, [], what, "RTM_GETADDR")) {
      const v = new DataView(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength);
      if (m.type !== RTM_NEWADDR || v.getUint8(0) !== AF_INET6 || v.getUint8(3) !== 0 /* RT_SCOPE_UNIVERSE */ || v.getUint32(4, true) !== index) continue;
      const a = decodeAttrs(m.payload.subarray(8)).get(IFA_ADDRESS);
      if (a?.length === 16) out.push({ ip: formatIPv6(a.reduce((n, b) => (n << 8n) | BigInt(b), 0n)), prefix: v.getUint8(1) });
    }
    return out;
  }

  /** Remove address `ip/prefix` from link `index`. */
  deleteAddress(index: number, ip: string, prefix: number, what: string): void {
    const { header, attrs } = addressMessage(index, ip, prefix);
    this.req(RTM_DELADDR, 0, header, attrs, what, "RTM_DELADDR");
  }

  /** A default route (IPv4 or, for an IPv6 gateway, IPv6) via `gateway` out of link `index`. */
  addDefaultRoute(index: number, gateway: string, what: string): void {
    const b = new Uint8Array(12);
    const six = isIPv6(gateway);
    b[0] = six ? AF_INET6 : AF_INET;
    b[4] = 254; // RT_TABLE_MAIN
    b[5] = 3; // RTPROT_BOOT
    b[6] = 0; // RT_SCOPE_UNIVERSE
    b[7] = 1; // RTN_UNICAST
    this.req(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, b, [nla.bytes(RTA_GATEWAY, six ? ipv6Bytes(gateway) : ipBytes(gateway)), nla.u32(RTA_OIF, index)], what, "RTM_NEWROUTE");
  }
}

/** struct ifaddrmsg and the address attributes for `ip/prefix` on link `index` (IPv6: no DAD). */
function addressMessage(index: number, ip: string, prefix: number): { header: Uint8Array; attrs: Attr[] } {
  const header = new Uint8Array(8);
  const v = new DataView(header.buffer);
  const six = isIPv6(ip);
  v.setUint8(0, six ? AF_INET6 : AF_INET);
  v.setUint8(1, prefix);
  v.setUint8(2, six ? IFA_F_NODAD : 0);
  v.setUint32(4, index, true);
  const addr = six ? ipv6Bytes(ip) : ipBytes(ip);
  return { header, attrs: [nla.bytes(IFA_LOCAL, addr), nla.bytes(IFA_ADDRESS, addr)] };
}

function concatPeer(header: Uint8Array, attrs: Attr[]): Uint8Array {
  // The peer is an ifinfomsg followed by attributes: encode as a message and strip its header.
  const m = encodeMessage(0, 0, 0, header, attrs);
  return m.subarray(16);
}

/** Dotted quad to 4 bytes. */
export function ipBytes(ip: string): Uint8Array {
  const n = parseIPv4(ip);
  return Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}

function broadcastOf(ip: string, prefix: number): string {
  const n = parseIPv4(ip);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  const b = (n | ~mask) >>> 0;
  return [b >>> 24, (b >>> 16) & 255, (b >>> 8) & 255, b & 255].join(".");
}
