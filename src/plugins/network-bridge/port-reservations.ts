/**
 * Host ports held for published container ports: a socket bound (not listening) to the host
 * address and port, so no other program can take the port while the kernel's DNAT rule sends its
 * traffic to the container. Port 0 asks the kernel for an ephemeral port, as `-P` does.
 */
import { EngineError, SyscallError } from "../../core/errors.ts";
import { AF_INET, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_STREAM, type Sys } from "../../core/sys/sys.ts";
import { ipBytes } from "../../core/network/rtnl.ts";
import { ipv6Bytes, isIPv6 } from "../../core/network/ipv6.ts";
import type { PortBinding } from "../../core/network/types.ts";

const EADDRINUSE = 98;
const AF_INET6 = 10;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;

/** struct sockaddr_in, or struct sockaddr_in6 for an IPv6 address. */
function sockaddr(ip: string, port: number): Uint8Array {
  const six = isIPv6(ip);
  const b = new Uint8Array(six ? 28 : 16);
  const v = new DataView(b.buffer);
  v.setUint16(0, six ? AF_INET6 : AF_INET, true);
  v.setUint16(2, port);
  b.set(six ? ipv6Bytes(ip) : ipBytes(ip), six ? 8 : 4);
  return b;
}

/**
 * Bind a socket for `p` and return it with the port actually bound. An IPv6 host address (`::`
 * for every one) gets an IPv6-only socket, so that it holds the IPv6 port and nothing else.
 */
export function reservePort(sys: Sys, p: PortBinding): { fd: number; binding: PortBinding } {
  const ip = p.hostIp || "0.0.0.0";
  const six = isIPv6(ip);
  const fd = sys.socket(six ? AF_INET6 : AF_INET, (p.proto === "tcp" ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  try {
    // No SO_REUSEADDR: with it on both sides, another non-listening bind of the port would succeed.
    const shown = six ? `[${ip}]` : ip;
    try {
      if (six) sys.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, new Uint8Array(Int32Array.of(1).buffer));
      sys.bind(fd, sockaddr(ip, p.hostPort), `${shown}:${p.hostPort}`);
    } catch (err) {
      if (err instanceof SyscallError && err.errno === EADDRINUSE) throw new EngineError("conflict", `Bind for ${shown}:${p.hostPort} failed: port is already allocated`);
      throw err;
    }
    const port = new DataView(sys.getsockname(fd).buffer).getUint16(2);
    return { fd, binding: { ...p, hostIp: ip, hostPort: port } };
  } catch (err) {
    sys.close(fd);
    throw err;
  }
}
