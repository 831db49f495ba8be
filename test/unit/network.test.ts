/**
 * Networking pieces that need no root: IPAM (subnet choice, allocation exactly once, reserved
 * addresses), `-p` parsing, netlink encoding and decoding, the nf_tables batch (only changed
 * chains rewritten), embedded DNS messages, and the command-line split for `network create`.
 */
import { describe, expect, test } from "bun:test";
import { endOptionsAfterOperand } from "../../src/core/argv.ts";
import { parseNetDev } from "../../src/core/network/counters.ts";
import { answer, nameservers, parseQuestion } from "../../src/core/network/dns-server.ts";
import { allocate, allocate6, chooseSubnet, chooseSubnet6, completePool, completePool6, hostRoutes, hostRoutes6, release, type PoolState } from "../../src/core/network/ipam.ts";
import { formatCidr, parseCidr } from "../../src/core/network/ipv4.ts";
import { formatCidr6, formatIPv6, ipv6Bytes, overlaps6, parseCidr6, parseIPv6 } from "../../src/core/network/ipv6.ts";
import { decodeAttrs, decodeMessages, encodeMessage, nla } from "../../src/core/network/netlink.ts";
import { action, encodeRuleset, match, type Ruleset } from "../../src/core/network/nftables.ts";
import { parsePortKey, parsePublish } from "../../src/core/network/port-spec.ts";

describe("IPAM", () => {
  test("the first default pool that overlaps nothing taken; host routes parsed from /proc/net/route", () => {
    expect(formatCidr(chooseSubnet([]))).toBe("172.17.0.0/16");
    expect(formatCidr(chooseSubnet([parseCidr("172.17.0.0/16"), parseCidr("172.18.5.0/24")]))).toBe("172.19.0.0/16");
    const all172 = Array.from({ length: 15 }, (_, i) => parseCidr(`172.${17 + i}.0.0/16`));
    expect(formatCidr(chooseSubnet(all172))).toBe("192.168.0.0/20");
    const route = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\neth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\neth0\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
    expect(hostRoutes(route).map((r) => `${r.iface} ${formatCidr(r.cidr)}`)).toEqual(["eth0 10.0.0.0/16"]);
  });

  test("addresses are handed out once, in order, skipping gateway, aux addresses, network and broadcast; release works once", () => {
    const pool = completePool({ Subnet: "10.1.0.0/29", AuxiliaryAddresses: { r: "10.1.0.3" } });
    expect(pool.Gateway).toBe("10.1.0.1");
    const st: PoolState = { used: {} };
    expect(allocate(pool, st, "a")).toBe("10.1.0.2");
    expect(allocate(pool, st, "b")).toBe("10.1.0.4");
    expect(() => allocate(pool, st, "c", "10.1.0.4")).toThrow("Address already in use");
    expect(() => allocate(pool, st, "c", "10.1.0.1")).toThrow("Address already in use");
    expect(() => allocate(pool, st, "c", "10.9.0.1")).toThrow("outside");
    expect(allocate(pool, st, "c")).toBe("10.1.0.5");
    expect(allocate(pool, st, "d")).toBe("10.1.0.6");
    expect(() => allocate(pool, st, "e")).toThrow("no available IPv4 address");
    expect(release(st, "10.1.0.4", "x")).toBe(false); // not its owner
    expect(release(st, "10.1.0.4", "b")).toBe(true);
    expect(release(st, "10.1.0.4", "b")).toBe(false);
    expect(allocate(pool, st, "e")).toBe("10.1.0.4");
  });

  test("a range limits automatic addresses; bad pools are refused", () => {
    const pool = completePool({ Subnet: "10.2.0.0/24", IPRange: "10.2.0.128/25" });
    expect(allocate(pool, { used: {} }, "a")).toBe("10.2.0.128");
    expect(() => completePool({ Subnet: "10.2.0.0/24", Gateway: "10.3.0.1" })).toThrow("no matching subnet for gateway");
    expect(() => completePool({ Subnet: "10.2.0.0/33" })).toThrow("invalid CIDR");
    expect(completePool({ Subnet: "10.2.0.77/24" }).Subnet).toBe("10.2.0.0/24");
  });
});

describe("IPv6", () => {
  test("addresses parse in every spelling and print in RFC 5952's form; malformed ones are refused", () => {
    const same = (a: string) => formatIPv6(parseIPv6(a));
    expect(same("2001:0DB8:0000:0000:0001:0000:0000:0001")).toBe("2001:db8::1:0:0:1"); // the first longest zero run
    expect(same("fe80:0:0:0:1:0:0:0")).toBe("fe80::1:0:0:0");
    expect(same("::")).toBe("::");
    expect(same("::1")).toBe("::1");
    expect(same("1:2:3:4:5:6:7:8")).toBe("1:2:3:4:5:6:7:8");
    expect(same("1:0:3:4:5:6:7:8")).toBe("1:0:3:4:5:6:7:8"); // one zero group is not shortened
    expect(same("::ffff:192.168.1.1")).toBe("::ffff:c0a8:101");
    for (const bad of ["1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "g::", ":::", "1:2:3:4:5:6:7::8", "1:", "::1.2.3", ""]) expect(() => parseIPv6(bad)).toThrow("invalid IP address");
    expect([...ipv6Bytes("fd00::1:2")]).toEqual([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2]);
    expect(formatCidr6(parseCidr6("fd12:3456:789a:1::5/64"))).toBe("fd12:3456:789a:1::/64"); // host bits cleared
    expect(overlaps6(parseCidr6("fd00::/8"), parseCidr6("fd12::/64"))).toBe(true);
    expect(overlaps6(parseCidr6("fd01::/16"), parseCidr6("fd12::/64"))).toBe(false);
  });

  test("IPv6 pools: gateway ::1, addresses once in order whatever their spelling, a ULA /64 chosen around taken ones, host routes from /proc/net/ipv6_route", () => {
    const pool = completePool6({ Subnet: "fd5e:b0c4:1::/64", AuxiliaryAddresses: { r: "fd5e:b0c4:1::3" } });
    expect(pool.Gateway).toBe("fd5e:b0c4:1::1");
    const st: PoolState = { used: {} };
    expect(allocate6(pool, st, "a")).toBe("fd5e:b0c4:1::2");
    expect(allocate6(pool, st, "b")).toBe("fd5e:b0c4:1::4"); // ::3 is an aux address
    expect(() => allocate6(pool, st, "c", "fd5e:b0c4:1:0:0:0:0:2")).toThrow("Address already in use");
    expect(() => allocate6(pool, st, "c", "fd5e:b0c4:2::9")).toThrow("outside");
    expect(allocate6(pool, st, "c", "FD5E:B0C4:1::0099")).toBe("fd5e:b0c4:1::99");
    expect(release(st, "fd5e:b0c4:1::2", "a")).toBe(true);
    const tiny = completePool6({ Subnet: "fd5e::/126" });
    const ts: PoolState = { used: {} };
    expect([allocate6(tiny, ts, "x"), allocate6(tiny, ts, "y")]).toEqual(["fd5e::2", "fd5e::3"]);
    expect(() => allocate6(tiny, ts, "z")).toThrow("no available IPv6 address");
    expect(() => completePool6({ Subnet: "fd5e::/64", Gateway: "fd5f::1" })).toThrow("no matching subnet for gateway");
    const first = chooseSubnet6("net-id", []);
    expect(formatCidr6(first)).toMatch(/^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/64$/);
    expect(chooseSubnet6("net-id", [])).toEqual(first); // the same seed gives the same /64
    expect(overlaps6(chooseSubnet6("net-id", [first]), first)).toBe(false);
    const routes = "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n" +
      "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n" +
      "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n";
    expect(hostRoutes6(routes).map((r) => `${r.iface} ${formatCidr6(r.cidr)}`)).toEqual(["eth0 fd00::/64"]);
  });

  test("AAAA answers carry the 16-byte address", () => {
    const labels = [3, ...new TextEncoder().encode("web")];
    const q = Uint8Array.from([0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 28, 0, 1]);
    const p = parseQuestion(q)!;
    const a = answer(q, p.end, "fd5e:b0c4:1::2");
    const v = new DataView(a.buffer);
    expect(v.getUint16(p.end + 2)).toBe(28);
    expect(v.getUint16(p.end + 10)).toBe(16);
    expect([...a.subarray(-16)]).toEqual([...ipv6Bytes("fd5e:b0c4:1::2")]);
  });

  test("nf_tables: an ip6 table is sent with the IPv6 family and matches the 16-byte source prefix", () => {
    const rs: Ruleset = { table: "t", family: "ip6", chains: [{ name: "postrouting", hook: "postrouting", type: "nat", priority: 100 }], rules: [{ chain: "postrouting", exprs: [...match.saddr("fd5e::/64"), action.masquerade()] }] };
    const batch = encodeRuleset(rs, 1)!;
    const msgs = decodeMessages(batch.data);
    expect(msgs.slice(1, -1).every((m) => m.payload[0] === 10)).toBe(true); // NFPROTO_IPV6 in every nfgenmsg
    const text = Buffer.from(batch.data).toString("latin1");
    expect(text).toContain(Buffer.from(ipv6Bytes("fd5e::")).toString("latin1"));
  });
});

describe("-p parsing", () => {
  test("docker's forms", () => {
    expect(parsePublish("80")).toEqual([{ key: "80/tcp", binding: { HostIp: "", HostPort: "" } }]);
    expect(parsePublish("8080:80/udp")).toEqual([{ key: "80/udp", binding: { HostIp: "", HostPort: "8080" } }]);
    expect(parsePublish("127.0.0.1:18080:80")).toEqual([{ key: "80/tcp", binding: { HostIp: "127.0.0.1", HostPort: "18080" } }]);
    expect(parsePublish("127.0.0.1::80")[0]!.binding).toEqual({ HostIp: "127.0.0.1", HostPort: "" });
    expect(parsePublish("8000-8001:80-81").map((p) => `${p.binding.HostPort}->${p.key}`)).toEqual(["8000->80/tcp", "8001->81/tcp"]);
    for (const bad of ["80:99999", "1:2:3:4", "80/sctp", "x:80", "a.b:1:80", "8000-8002:80-81"]) expect(() => parsePublish(bad)).toThrow();
    expect(parsePortKey("53/udp")).toEqual([53, "udp"]);
    expect(() => parsePortKey("0/tcp")).toThrow();
  });
});

describe("netlink", () => {
  test("messages and nested attributes round-trip, aligned to 4 bytes", () => {
    const m = encodeMessage(16, 5, 42, new Uint8Array(16), [nla.str(3, "eth0"), nla.nest(18, nla.str(1, "veth"), nla.u32(2, 7))]);
    expect(m.length % 4).toBe(0);
    const [d] = decodeMessages(m);
    expect([d!.type, d!.flags, d!.seq]).toEqual([16, 5, 42]);
    const attrs = decodeAttrs(d!.payload.subarray(16));
    expect(new TextDecoder().decode(attrs.get(3)!)).toBe("eth0\0");
    const inner = decodeAttrs(attrs.get(18)!);
    expect(new TextDecoder().decode(inner.get(1)!)).toBe("veth\0");
    expect(new DataView(inner.get(2)!.buffer, inner.get(2)!.byteOffset).getUint32(0, true)).toBe(7);
  });

  test("nf_tables: a first install replaces the table; later ones send only the changed rules, or nothing", () => {
    const base: Ruleset = {
      table: "t",
      chains: [{ name: "post", hook: "postrouting", type: "nat", priority: 100 }, { name: "ports" }],
      rules: [{ chain: "post", exprs: [...match.saddr("10.0.0.0/8"), action.masquerade()] }],
    };
    const msgs = (data: Uint8Array) => decodeMessages(data);
    const types = (data: Uint8Array) => msgs(data).map((m) => m.type & 0xff);
    const ack = (data: Uint8Array) => msgs(data).map((m) => (m.flags & 4 ? 1 : 0));
    // BATCH_BEGIN(16), NEWTABLE, DELTABLE, NEWTABLE, NEWCHAIN×2, NEWRULE, BATCH_END(17)
    const first = encodeRuleset(base, 1)!;
    expect(types(first.data)).toEqual([16, 0, 2, 0, 3, 3, 6, 17]);
    // One ACK for the whole batch, on its last message (an ACK per message overflowed the receive buffer).
    expect(ack(first.data)).toEqual([0, 0, 0, 0, 0, 0, 1, 0]);
    expect(first.reread).toEqual(["post", "ports"]);
    const port = (n: number) => ({ chain: "ports", exprs: [...match.dport("tcp", n), ...action.dnat("10.0.0.2", 80)], key: `port ${n}` });
    const installed = { rs: base, handles: new Map([["post", [7n]], ["ports", []]]) };
    const withPort: Ruleset = { ...base, rules: [...base.rules, port(8080)] };
    // Only the new rule, at the head of the empty ports chain (no NLM_F_APPEND, no position).
    const one = encodeRuleset(withPort, 1, false, installed)!;
    expect(types(one.data)).toEqual([16, 6, 17]);
    expect(msgs(one.data)[1]!.flags & 0x800).toBe(0);
    // Its handle comes back in the kernel's echo (NLM_F_ECHO), not from listing the chain again.
    expect(msgs(one.data)[1]!.flags & 0x8).toBe(0x8);
    expect(one.reread).toEqual([]);
    expect(one.echoed).toEqual([{ chain: "ports", index: 0 }]);
    expect(one.patched.get("ports")).toEqual([undefined]);
    expect(encodeRuleset(withPort, 1, false, { rs: structuredClone(withPort), handles: new Map([["post", [7n]], ["ports", [9n]]]) })).toBeUndefined();
    // Three ports installed (handles 11, 12, 13): removing the middle one deletes handle 12 only;
    // adding one between them inserts it after handle 11.
    const three = { rs: { ...base, rules: [...base.rules, port(1), port(2), port(3)] }, handles: new Map([["post", [7n]], ["ports", [11n, 12n, 13n]]]) };
    const del = encodeRuleset({ ...base, rules: [...base.rules, port(1), port(3)] }, 1, false, three)!;
    expect(types(del.data)).toEqual([16, 8, 17]);
    const delAttrs = decodeAttrs(msgs(del.data)[1]!.payload.subarray(4));
    expect(new DataView(delAttrs.get(3)!.buffer, delAttrs.get(3)!.byteOffset).getBigUint64(0)).toBe(12n);
    const ins = encodeRuleset({ ...base, rules: [...base.rules, port(1), port(9), port(2), port(3)] }, 1, false, three)!;
    expect(types(ins.data)).toEqual([16, 6, 17]);
    const insMsg = msgs(ins.data)[1]!;
    expect(insMsg.flags & 0x800).toBe(0x800);
    const pos = decodeAttrs(insMsg.payload.subarray(4)).get(6)!;
    expect(new DataView(pos.buffer, pos.byteOffset).getBigUint64(0)).toBe(11n);
    // Kept rules in another order: the chain is flushed and refilled.
    const reordered = encodeRuleset({ ...base, rules: [...base.rules, port(3), port(1), port(2)] }, 1, false, three)!;
    expect(types(reordered.data)).toEqual([16, 8, 6, 6, 6, 17]);
  });
});

describe("embedded DNS messages", () => {
  const query = (name: string, type = 1) => {
    const labels = name.split(".").flatMap((l) => [l.length, ...new TextEncoder().encode(l)]);
    return Uint8Array.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, type, 0, 1]);
  };

  test("a question is parsed; an answer carries the A record and the query's ID", () => {
    const q = query("Web.MyNet");
    const p = parseQuestion(q)!;
    expect(p).toEqual({ name: "web.mynet", qtype: 1, end: q.length });
    const a = answer(q, p.end, "172.18.0.2");
    expect([a[0], a[1]]).toEqual([0x12, 0x34]);
    expect(a[3]! & 0x0f).toBe(0); // NOERROR
    expect(new DataView(a.buffer).getUint16(6)).toBe(1); // one answer
    expect([...a.subarray(-4)]).toEqual([172, 18, 0, 2]);
    const nx = answer(q, p.end, undefined, 3);
    expect(nx[3]! & 0x0f).toBe(3);
    expect(parseQuestion(new Uint8Array(5))).toBeUndefined();
    expect(nameservers("# x\nnameserver 10.0.0.2\nnameserver ::1\nsearch a\n")).toEqual(["10.0.0.2"]);
  });
});

describe("stats counters", () => {
  test("/proc/net/dev parsed, loopback left out", () => {
    const text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n  eth0:    1500      10    1    2    0     0          0         0      700       5    0    3    0     0       0          0\n";
    expect(parseNetDev(text)).toEqual({ eth0: { rx_bytes: 1500, rx_packets: 10, rx_errors: 1, rx_dropped: 2, tx_bytes: 700, tx_packets: 5, tx_errors: 0, tx_dropped: 3 } });
  });
});

describe("command line", () => {
  const VALUE = new Set(["--name", "-p", "--subnet"]);
  test("run stops at the image; network create is not mistaken for create", () => {
    expect(endOptionsAfterOperand(["run", "-p", "80:80", "busybox", "sh", "-c", "x"], ["run", "create"], VALUE)).toEqual(["run", "-p", "80:80", "busybox", "--", "sh", "-c", "x"]);
    expect(endOptionsAfterOperand(["network", "create", "--subnet", "10.0.0.0/24", "n"], ["run", "create"], VALUE)).toEqual(["network", "create", "--subnet", "10.0.0.0/24", "n"]);
  });
});
