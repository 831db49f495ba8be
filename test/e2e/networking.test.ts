/**
 * Networking through the real docker CLI against Bunker: user-defined networks with names
 * resolved by the embedded DNS (and other queries forwarded to an upstream the test runs on
 * loopback), isolation between networks, published ports reachable from the host's loopback and
 * from another container through the host port, the cleanup after a stop, a daemon killed with
 * -9 while ports are published, the other network modes, and bad input. Traffic goes only to
 * loopback and to the containers this file creates.
 */
import { DOCKER, NFT, ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { answer, parseQuestion } from "../../src/core/network/dns-server.ts";
import { startPluginProcess } from "../helpers/plugin-process.ts";
import { cleanup, run, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.ts";
import { BUSYBOX, busyboxLayer, dockerArchive } from "../helpers/images.ts";

const UPSTREAM = "127.0.0.153";

/** A busybox httpd serving `text` on port 80. */
const httpd = (text: string) => ["sh", "-c", `mkdir -p /www && echo ${text} > /www/index.html && exec busybox httpd -f -p 80 -h /www`];
/** A shell line fetching http://host:port/ with nc (busybox-static's wget needs NSS). */
const fetchIn = (host: string, port = 80, wait = 3) => `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w ${wait} ${host} ${port}`;

describe.skipIf(skipUnless("networking through the docker CLI", { "the docker CLI": DOCKER, "root": ROOT, "busybox-static": BUSYBOX }))("networking through the docker CLI", () => {
  let daemon: TestDaemon;
  let dir: string;
  let env: Record<string, string>;
  let upstream: { close(): void } | undefined;
  const docker = (...args: string[]) => run([DOCKER!, ...args], env);
  const ipOf = async (name: string, net: string) => (await docker("inspect", "-f", `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, name)).stdout.trim();
  const bridgePorts = (br: string) => (existsSync(`/sys/class/net/${br}/brif`) ? readdirSync(`/sys/class/net/${br}/brif`) : []);
  const portsChain = () => (NFT ? Bun.spawnSync([NFT, "list", "chain", "ip", "bunker", "ports"]).stdout.toString() : "");
  const httpGet = async (url: string) => {
    try {
      return await (await fetch(url, { signal: AbortSignal.timeout(3000) })).text();
    } catch {
      return undefined;
    }
  };

  beforeAll(async () => {
    dir = tempDir("bunker-net-");
    // An upstream DNS server on loopback: the embedded DNS forwards what it does not know here.
    upstream = await Bun.udpSocket({
      hostname: UPSTREAM,
      port: 53,
      socket: {
        data(s, buf, port, addr) {
          const q = parseQuestion(buf);
          if (q) s.send(answer(buf, q.end, q.name === "upstream.test" && q.qtype === 1 ? "10.9.8.7" : undefined, q.name === "upstream.test" ? 0 : 3), port, addr);
        },
      },
    });
    mkdirSync(join(dir, "plugins"));
    // The default bridge with IPv6 as well (dockerd's `ipv6` and `fixed-cidr-v6`).
    writeFileSync(join(dir, "daemon.json"), JSON.stringify({ dns: [UPSTREAM], "docker-plugin-dirs": [join(dir, "plugins")], ipv6: true, "fixed-cidr-v6": "fd5e:b0c4:ff::/64" }));
    daemon = await startDaemon({ dir, configFile: join(dir, "daemon.json") });
    env = { DOCKER_HOST: daemon.host };
    writeFileSync(join(dir, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer()], gzip: true }));
    expect((await docker("load", "-i", join(dir, "busybox.tar"))).code).toBe(0);
  });
  afterAll(async () => {
    const ids = (await docker("ps", "-aq")).stdout.split("\n").filter(Boolean);
    if (ids.length) await docker("rm", "-f", ...ids);
    await docker("network", "prune", "-f");
    await daemon.stop();
    upstream?.close();
    cleanup(dir);
  });

  test("the default bridge: an address from the pool, a default route, loopback up, /etc/hosts with the address; IPv6 from fixed-cidr-v6", async () => {
    const r = await docker("run", "--rm", "busybox", "sh", "-c", "busybox ip -4 -o addr; busybox ip route; cat /etc/hosts; busybox ip -6 -o addr show eth0; busybox ip -6 route");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("1: lo    inet 127.0.0.1/8");
    const m = /eth0\s+inet (\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(r.stdout);
    expect(m).not.toBeNull();
    const gw = (await docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "bridge")).stdout.trim();
    expect(r.stdout).toContain(`default via ${gw} dev eth0`);
    expect(r.stdout).toMatch(new RegExp(`${m![1]!.replace(/\./g, "\\.")}\\t[0-9a-f]{12}`));
    expect(r.stdout).toMatch(/inet6 fd5e:b0c4:ff::[0-9a-f]+\/64 scope global/);
    expect(r.stdout).toContain("default via fd5e:b0c4:ff::1 dev eth0");
    expect((await docker("network", "inspect", "-f", "{{.EnableIPv6}} {{json .IPAM.Config}}", "bridge")).stdout).toContain('true [{"Subnet"');
    const id = (await docker("run", "-d", "busybox", "sleep", "30")).stdout.trim();
    expect((await docker("inspect", "-f", "{{.NetworkSettings.GlobalIPv6Address}} {{.NetworkSettings.IPv6Gateway}}", id)).stdout.trim()).toMatch(/^fd5e:b0c4:ff::[0-9a-f]+ fd5e:b0c4:ff::1$/);
    await docker("rm", "-f", id);
    const none = await docker("run", "--rm", "--network", "none", "busybox", "sh", "-c", "ls /sys/class/net");
    expect(none.stdout.split(/\s+/).filter(Boolean)).toEqual(["lo"]);
    const host = await docker("run", "--rm", "--network", "host", "busybox", "sh", "-c", "ls /sys/class/net");
    expect(host.stdout).toContain("bunker0");
  });

  test("two containers on one user network reach each other by name; another network cannot reach them", async () => {
    expect((await docker("network", "create", "appnet")).code).toBe(0);
    expect((await docker("network", "create", "othernet")).code).toBe(0);
    expect((await docker("run", "-d", "--name", "web", "--network", "appnet", "--network-alias", "www", "busybox", ...httpd("hello-from-web"))).code).toBe(0);
    const byName = await docker("run", "--rm", "--network", "appnet", "busybox", "sh", "-c", `${fetchIn("web")}; ${fetchIn("www")}; busybox nslookup upstream.test`);
    expect(byName.stdout.match(/hello-from-web/g)?.length).toBe(2);
    expect(byName.stdout).toContain("10.9.8.7"); // forwarded to the upstream on loopback
    const webIp = await ipOf("web", "appnet");
    const other = await docker("run", "--rm", "--network", "othernet", "busybox", "sh", "-c", `${fetchIn(webIp, 80, 2)}; echo rc=$?`);
    expect(other.stdout).not.toContain("hello-from-web");
    const unknownName = await docker("run", "--rm", "--network", "othernet", "busybox", "sh", "-c", "busybox nslookup web; echo rc=$?");
    expect(unknownName.stdout).not.toContain(webIp);
    // network inspect lists the container; connect puts a running container on a second network.
    const inspect = JSON.parse((await docker("network", "inspect", "appnet")).stdout)[0];
    expect(Object.values(inspect.Containers as Record<string, { Name: string }>).map((c) => c.Name)).toContain("web");
    expect((await docker("run", "-d", "--name", "client", "--network", "othernet", "busybox", "sleep", "60")).code).toBe(0);
    expect((await docker("network", "connect", "appnet", "client")).code).toBe(0);
    const connected = await docker("exec", "client", "sh", "-c", `${fetchIn("web")}; busybox ip -o -4 addr | grep -c eth`);
    expect(connected.stdout).toContain("hello-from-web");
    expect(connected.stdout.trim().endsWith("2")).toBe(true);
    expect((await docker("network", "disconnect", "appnet", "client")).code).toBe(0);
    expect((await docker("exec", "client", "sh", "-c", "busybox ip -o -4 addr | grep -c eth")).stdout.trim()).toBe("1");
    const busy = await docker("network", "rm", "appnet");
    expect(busy.stderr).toContain("has active endpoints");
    expect((await docker("rm", "-f", "web", "client")).code).toBe(0);
    expect((await docker("network", "rm", "appnet", "othernet")).code).toBe(0);
  });

  test("-p 127.0.0.1:18080:80 serves the host's loopback; -p 18081:80 serves another container through the host port; a stop removes port, veth and rules", async () => {
    const vethsBefore = new Set(bridgePorts("bunker0"));
    const id = (await docker("run", "-d", "--name", "pub", "-p", "127.0.0.1:18080:80", "-p", "18081:80", "busybox", ...httpd("published"))).stdout.trim();
    const mine = bridgePorts("bunker0").filter((v) => !vethsBefore.has(v)); // this container's host end
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    let body: string | undefined;
    for (let i = 0; i < 30 && !body; i++) body = (await httpGet("http://127.0.0.1:18080/")) ?? (await Bun.sleep(100), undefined);
    expect(body).toBe("published\n");
    const port = await docker("port", "pub");
    expect(port.stdout).toContain("80/tcp -> 127.0.0.1:18080");
    expect(port.stdout).toContain("80/tcp -> 0.0.0.0:18081");
    expect((await docker("ps", "--format", "{{.Ports}}", "-f", "name=pub")).stdout).toContain("127.0.0.1:18080->80/tcp");
    const netIo = (await docker("stats", "--no-stream", "--format", "{{.NetIO}}", "pub")).stdout.trim();
    expect(netIo).toMatch(/^[\d.]+k?B \/ [\d.]+k?B$/);
    expect(netIo).not.toBe("0B / 0B"); // the request above went through eth0
    const gw = (await docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "bridge")).stdout.trim();
    const viaHost = await docker("run", "--rm", "busybox", "sh", "-c", fetchIn(gw, 18081));
    expect(viaHost.stdout).toContain("published");
    // The host port is held: another program cannot bind it.
    expect(() => Bun.listen({ hostname: "127.0.0.1", port: 18080, socket: { data() {} } }).stop()).toThrow();
    if (NFT) expect(portsChain()).toContain("dport 18080");
    expect(mine.length).toBe(1);
    expect((await docker("stop", "-t", "1", "pub")).code).toBe(0);
    expect(await httpGet("http://127.0.0.1:18080/")).toBeUndefined();
    if (NFT) expect(portsChain()).not.toContain("dport 18080");
    const l = Bun.listen({ hostname: "127.0.0.1", port: 18080, socket: { data() {} } });
    l.stop(true);
    for (let i = 0; i < 50 && bridgePorts("bunker0").includes(mine[0]!); i++) await Bun.sleep(100);
    expect(bridgePorts("bunker0")).not.toContain(mine[0]);
    expect((await docker("inspect", "-f", "{{json .NetworkSettings.Ports}}", "pub")).stdout.trim()).toBe("{}");
    expect((await docker("rm", "pub")).code).toBe(0);
  });

  test("a host that routes a container subnet through this host cannot reach unpublished ports; published ones still answer it (Docker 28's raw PREROUTING drop)", async () => {
    // A "LAN host": a network namespace behind a veth pair, routing the network's subnet through us.
    const ns = `bunker-lan-${process.pid}`;
    const ip = (...a: string[]) => Bun.spawnSync(["ip", ...a]);
    ip("netns", "del", ns);
    expect(ip("netns", "add", ns).exitCode).toBe(0);
    try {
      expect((await docker("network", "create", "--subnet", "10.251.3.0/24", "exposed")).code).toBe(0);
      const both = "mkdir -p /a /b && echo unpublished > /a/index.html && echo published > /b/index.html && busybox httpd -p 80 -h /a && exec busybox httpd -f -p 81 -h /b";
      expect((await docker("run", "-d", "--name", "exposed", "--network", "exposed", "-p", "18095:81", "busybox", "sh", "-c", both)).code).toBe(0);
      const cip = await ipOf("exposed", "exposed");
      ip("link", "add", "lanh", "type", "veth", "peer", "name", "lanc", "netns", ns);
      ip("addr", "add", "10.250.7.1/30", "dev", "lanh");
      ip("link", "set", "lanh", "up");
      const inNs = (...a: string[]) => Bun.spawnSync(["ip", "netns", "exec", ns, ...a], { timeout: 10_000 });
      inNs("ip", "addr", "add", "10.250.7.2/30", "dev", "lanc");
      inNs("ip", "link", "set", "lanc", "up");
      inNs("ip", "link", "set", "lo", "up");
      inNs("ip", "route", "add", "10.251.3.0/24", "via", "10.250.7.1");
      const get = (host: string, port: number) => inNs(BUSYBOX!, "sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | ${BUSYBOX} nc -w 2 ${host} ${port}`).stdout.toString();
      let published = "";
      for (let i = 0; i < 10 && !published.includes("published"); i++) published = get("10.250.7.1", 18095);
      expect(published).toContain("published");
      expect(get(cip, 80)).not.toContain("unpublished");
      expect(get(cip, 81)).not.toContain("published");
      // The container itself still reaches out and its peers still reach it.
      const peer = await docker("run", "--rm", "--network", "exposed", "busybox", "sh", "-c", fetchIn("exposed"));
      expect(peer.stdout).toContain("unpublished");
    } finally {
      ip("link", "del", "lanh");
      ip("netns", "del", ns);
      await docker("rm", "-f", "exposed");
      await docker("network", "rm", "exposed");
    }
  }, 60_000);

  test("kill -9 of the daemon with published ports: the container keeps serving; a restarted daemon holds the port, keeps the rules and cleans up at stop", async () => {
    expect((await docker("run", "-d", "--name", "survivor", "-p", "127.0.0.1:18082:80", "busybox", ...httpd("still-here"))).code).toBe(0);
    let body: string | undefined;
    for (let i = 0; i < 30 && !body; i++) body = (await httpGet("http://127.0.0.1:18082/")) ?? (await Bun.sleep(100), undefined);
    expect(body).toBe("still-here\n");
    const ip = await ipOf("survivor", "bridge");
    expect((await docker("run", "-d", "--name", "casualty", "-p", "127.0.0.1:18084:80", "busybox", ...httpd("gone-soon"))).code).toBe(0);
    const casualtyPid = Number((await docker("inspect", "-f", "{{.State.Pid}}", "casualty")).stdout.trim());
    daemon.proc.kill("SIGKILL");
    await daemon.proc.exited;
    expect(await httpGet("http://127.0.0.1:18082/")).toBe("still-here\n");
    process.kill(casualtyPid, "SIGKILL"); // dies while no daemon runs: its port and rule must still go
    await Bun.sleep(200);
    daemon = await startDaemon({ dir, configFile: join(dir, "daemon.json") });
    env = { DOCKER_HOST: daemon.host };
    expect(await httpGet("http://127.0.0.1:18082/")).toBe("still-here\n");
    expect(() => Bun.listen({ hostname: "127.0.0.1", port: 18082, socket: { data() {} } }).stop()).toThrow();
    for (let i = 0; i < 50 && (await docker("inspect", "-f", "{{.State.Running}}", "casualty")).stdout.trim() !== "false"; i++) await Bun.sleep(100);
    expect((await docker("inspect", "-f", "{{.State.Running}} {{json .NetworkSettings.Ports}}", "casualty")).stdout.trim()).toBe("false {}");
    if (NFT) expect(portsChain()).not.toContain("18084");
    Bun.listen({ hostname: "127.0.0.1", port: 18084, socket: { data() {} } }).stop(true); // free again
    // Its address stays its own: a new container gets another one.
    const other = await docker("run", "--rm", "busybox", "sh", "-c", "busybox ip -4 -o addr show eth0");
    expect(other.stdout).not.toContain(`${ip}/`);
    expect((await docker("rm", "-f", "survivor")).code).toBe(0);
    expect(await httpGet("http://127.0.0.1:18082/")).toBeUndefined();
    if (NFT) expect(portsChain()).not.toContain("18082");
  });

  test("IPAM options: --subnet, --gateway, --ip-range, --aux-address and --ip; --internal has no way out; container: shares a namespace", async () => {
    expect((await docker("network", "create", "--subnet", "10.231.0.0/24", "--gateway", "10.231.0.254", "--ip-range", "10.231.0.128/25", "--aux-address", "r=10.231.0.129", "ipamnet")).code).toBe(0);
    const auto = await docker("run", "--rm", "--network", "ipamnet", "busybox", "sh", "-c", "busybox ip -4 -o addr show eth0; busybox ip route");
    expect(auto.stdout).toContain("inet 10.231.0.128/24"); // first of the range (.129 is reserved by --aux-address)
    expect(auto.stdout).toContain("default via 10.231.0.254");
    expect((await docker("run", "-d", "--name", "fixed", "--network", "ipamnet", "--ip", "10.231.0.10", "busybox", "sleep", "60")).code).toBe(0);
    expect(await ipOf("fixed", "ipamnet")).toBe("10.231.0.10");
    const taken = await docker("run", "--rm", "--network", "ipamnet", "--ip", "10.231.0.10", "busybox", "true");
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toContain("Address already in use");
    const shared = await docker("run", "--rm", "--network", "container:fixed", "busybox", "sh", "-c", "busybox ip -4 -o addr show eth0");
    expect(shared.stdout).toContain("10.231.0.10/24");
    expect((await docker("rm", "-f", "fixed")).code).toBe(0);
    expect((await docker("network", "create", "--internal", "closed")).code).toBe(0);
    const internal = await docker("run", "--rm", "--network", "closed", "busybox", "sh", "-c", "busybox ip route");
    expect(internal.stdout).not.toContain("default");
    if (NFT) expect(Bun.spawnSync([NFT, "list", "chain", "ip", "bunker", "forward"]).stdout.toString()).toContain("internal closed");
    expect((await docker("network", "rm", "ipamnet", "closed")).code).toBe(0);
  });

  test("the macvlan driver: containers on a parentless macvlan network reach each other, through no bridge of the host", async () => {
    expect((await docker("network", "create", "-d", "macvlan", "--subnet", "10.238.0.0/24", "mvnet")).code).toBe(0);
    const before = bridgePorts("bunker0").length;
    expect((await docker("run", "-d", "--name", "mv1", "--network", "mvnet", "--ip", "10.238.0.20", "busybox", "sleep", "60")).code).toBe(0);
    const r = await docker("run", "--rm", "--network", "mvnet", "busybox", "sh", "-c", "ping -c 1 -W 2 10.238.0.20 >/dev/null && echo reached");
    expect(r.stdout).toContain("reached");
    const parent = `/sys/class/net/dm-${(await docker("network", "inspect", "-f", "{{.Id}}", "mvnet")).stdout.trim().slice(0, 12)}`;
    expect(existsSync(parent)).toBe(true); // the network's own parent link (no -o parent given)
    expect(bridgePorts("bunker0").length).toBe(before);
    const pub = await docker("run", "--rm", "--network", "mvnet", "-p", "18085:80", "busybox", "true");
    expect(pub.stderr).toContain("does not publish ports");
    // A running container connected and disconnected: its macvlan comes and goes; it can come back.
    expect((await docker("run", "-d", "--name", "mvc", "busybox", "sleep", "60")).code).toBe(0);
    const links = async () => (await docker("exec", "mvc", "ls", "/sys/class/net")).stdout.split(/\s+/).filter(Boolean).sort();
    expect((await docker("network", "connect", "mvnet", "mvc")).code).toBe(0);
    expect(await links()).toEqual(["eth0", "eth1", "lo"]);
    expect((await docker("exec", "mvc", "sh", "-c", "ping -c 1 -W 2 10.238.0.20 >/dev/null && echo reached")).stdout).toContain("reached");
    expect((await docker("network", "disconnect", "mvnet", "mvc")).code).toBe(0);
    expect(await links()).toEqual(["eth0", "lo"]);
    expect((await docker("network", "connect", "mvnet", "mvc")).code).toBe(0);
    expect(await links()).toEqual(["eth0", "eth1", "lo"]);
    expect((await docker("rm", "-f", "mv1", "mvc")).code).toBe(0);
    expect((await docker("network", "rm", "mvnet")).code).toBe(0);
    expect(existsSync(parent)).toBe(false);
  });

  test("a remote NetworkDriver plugin is discovered and used by network create -d; the engine moves its interface into the container", async () => {
    const plugin = await startPluginProcess("network-plugin.ts", [join(dir, "plugins", "testnet.sock"), "bktestpl0"]);
    const lines = plugin.lines;
    try {
      expect((await docker("network", "create", "-d", "testnet", "--subnet", "10.233.0.0/24", "plnet")).code).toBe(0);
      expect((await docker("network", "inspect", "-f", "{{.Driver}}", "plnet")).stdout.trim()).toBe("testnet");
      const r = await docker("run", "--rm", "--network", "plnet", "busybox", "sh", "-c", "busybox ip -4 -o addr show eth0; busybox ip route; ping -c 1 -W 2 10.233.0.1 >/dev/null && echo gateway-reachable");
      expect(r.stdout).toContain("inet 10.233.0.2/24");
      expect(r.stdout).toContain("default via 10.233.0.1");
      expect(r.stdout).toContain("gateway-reachable");
      expect((await docker("network", "rm", "plnet")).code).toBe(0);
      const calls = lines.map((l) => l.split(" ")[0]);
      for (const m of ["Plugin.Activate", "NetworkDriver.CreateNetwork", "NetworkDriver.CreateEndpoint", "NetworkDriver.Join", "NetworkDriver.Leave", "NetworkDriver.DeleteEndpoint", "NetworkDriver.DeleteNetwork"]) expect(calls).toContain(m);
      const join_ = JSON.parse(lines.find((l) => l.startsWith("NetworkDriver.Join "))!.slice("NetworkDriver.Join ".length));
      expect(join_.SandboxKey).toMatch(/^\/proc\/\d+\/ns\/net$/);
      const missing = await docker("network", "create", "-d", "nosuchdriver", "x1");
      expect(missing.stderr).toContain('plugin "nosuchdriver" not found');
    } finally {
      plugin.kill();
    }
  });

  test("a remote IpamDriver plugin gives the network its pool and the containers their addresses", async () => {
    const plugin = await startPluginProcess("ipam-plugin.ts", [join(dir, "plugins", "testipam.sock"), "10.237.0"]);
    const lines = plugin.lines;
    try {
      expect((await docker("network", "create", "--ipam-driver", "testipam", "ipnet")).code).toBe(0);
      expect((await docker("network", "inspect", "-f", "{{.IPAM.Driver}} {{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}", "ipnet")).stdout.trim()).toBe("testipam 10.237.0.0/24 10.237.0.1");
      const r = await docker("run", "--rm", "--network", "ipnet", "busybox", "sh", "-c", "busybox ip -4 -o addr show eth0");
      expect(r.stdout).toContain("inet 10.237.0.200/24");
      expect((await docker("network", "rm", "ipnet")).code).toBe(0);
      const calls = lines.map((l) => l.split(" ")[0]);
      for (const m of ["IpamDriver.RequestPool", "IpamDriver.RequestAddress", "IpamDriver.ReleaseAddress", "IpamDriver.ReleasePool"]) expect(calls).toContain(m);
      expect(lines.some((l) => l.startsWith("IpamDriver.ReleaseAddress") && l.includes("10.237.0.200"))).toBe(true);
    } finally {
      plugin.kill();
    }
  });

  test("IPv6 (--ipv6): dual-stack addresses, a v6 default route, AAAA answers and /etc/hosts; a peer and the host reach it, another network cannot; ports published over IPv6; --ip6; bad input", async () => {
    expect((await docker("network", "create", "--ipv6", "--subnet", "fd5e:b0c4:1::/64", "v6net")).code).toBe(0);
    const pools = JSON.parse((await docker("network", "inspect", "-f", "{{json .IPAM.Config}}", "v6net")).stdout) as { Subnet: string; Gateway: string }[];
    expect(pools.map((p) => p.Subnet)).toContain("fd5e:b0c4:1::/64");
    expect(pools.some((p) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(p.Subnet))).toBe(true); // IPv4 as well, from the defaults
    expect((await docker("run", "-d", "--name", "web6", "--network", "v6net", "busybox", ...httpd("hello-over-v6"))).code).toBe(0);
    const v6 = (await docker("inspect", "-f", '{{(index .NetworkSettings.Networks "v6net").GlobalIPv6Address}}', "web6")).stdout.trim();
    expect(v6).toMatch(/^fd5e:b0c4:1::[0-9a-f]+$/);
    expect((await docker("inspect", "-f", '{{(index .NetworkSettings.Networks "v6net").IPv6Gateway}}', "web6")).stdout.trim()).toBe("fd5e:b0c4:1::1");
    const netView = JSON.parse((await docker("network", "inspect", "v6net")).stdout)[0];
    expect(Object.values(netView.Containers as Record<string, { IPv6Address: string }>).map((c) => c.IPv6Address)).toEqual([`${v6}/64`]);
    // A peer: its own v6 address and default route, the name's AAAA answer, the page over IPv6.
    const peer = await docker("run", "--rm", "--network", "v6net", "busybox", "sh", "-c", `busybox ip -6 -o addr show eth0; busybox ip -6 route; cat /etc/hosts; busybox nslookup -type=AAAA web6; ${fetchIn(v6)}`);
    expect(peer.stdout).toMatch(/inet6 fd5e:b0c4:1::[0-9a-f]+\/64 scope global/);
    expect(peer.stdout).toContain("default via fd5e:b0c4:1::1 dev eth0");
    expect(peer.stdout).toMatch(/fd5e:b0c4:1::[0-9a-f]+\t[0-9a-f]{12}/);
    expect(peer.stdout).toContain(`Address: ${v6}`);
    expect(peer.stdout).toContain("hello-over-v6");
    // The host reaches the container's IPv6 address on the bridge.
    let fromHost: string | undefined;
    for (let i = 0; i < 3 && !fromHost; i++) fromHost = await httpGet(`http://[${v6}]/`); // once seen to time out on the first try
    expect(fromHost).toContain("hello-over-v6");
    if (NFT) expect(Bun.spawnSync([NFT, "list", "table", "ip6", "bunker"]).stdout.toString()).toMatch(/ip6 saddr fd5e:b0c4:1::\/64 oifname != "br-[0-9a-f]{12}" masquerade/);
    // Another IPv6 network (a ULA /64 chosen for it) cannot reach it.
    expect((await docker("network", "create", "--ipv6", "v6other")).code).toBe(0);
    const other6 = (await docker("network", "inspect", "-f", "{{json .IPAM.Config}}", "v6other")).stdout;
    expect(other6).toMatch(/"Subnet":"fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/64"/);
    const isolated = await docker("run", "--rm", "--network", "v6other", "busybox", "sh", "-c", `${fetchIn(v6, 80, 2)}; echo rc=$?`);
    expect(isolated.stdout).not.toContain("hello-over-v6");
    // --ip6: that address exactly; a taken one is refused.
    const fixed = await docker("run", "--rm", "--network", "v6net", "--ip6", "fd5e:b0c4:1::99", "busybox", "busybox", "ip", "-6", "-o", "addr", "show", "eth0");
    expect(fixed.stdout).toContain("inet6 fd5e:b0c4:1::99/64");
    expect((await docker("run", "--rm", "--network", "v6net", "--ip6", v6, "busybox", "true")).stderr).toContain("Address already in use");
    // A published port answers over IPv6 too (here at the gateway's address, from the host), and
    // is shown for 0.0.0.0 and [::] as Docker shows it; the rule goes with the container.
    expect((await docker("run", "-d", "--name", "pub6", "--network", "v6net", "-p", "18091:80", "busybox", ...httpd("published-over-v6"))).code).toBe(0);
    expect((await docker("port", "pub6")).stdout).toBe("80/tcp -> 0.0.0.0:18091\n80/tcp -> [::]:18091\n");
    expect(await httpGet("http://[fd5e:b0c4:1::1]:18091/")).toContain("published-over-v6");
    expect((await docker("rm", "-f", "pub6")).code).toBe(0);
    if (NFT) expect(Bun.spawnSync([NFT, "list", "chain", "ip6", "bunker", "ports"]).stdout.toString()).not.toContain("dport 18091");
    // Bad input.
    // An IPv6 subnet without --ipv6 is kept in IPAM and not used, as dockerd does.
    expect((await docker("network", "create", "--subnet", "fd77::/64", "nov6")).code).toBe(0);
    expect((await docker("network", "inspect", "-f", "{{.EnableIPv6}}", "nov6")).stdout.trim()).toBe("false");
    expect((await docker("network", "rm", "nov6")).code).toBe(0);
    expect((await docker("network", "create", "--ipv6", "--subnet", "fd5e:b0c4::/32", "overlap6")).stderr).toContain("Pool overlaps");
    expect((await docker("network", "create", "--ipv6", "--subnet", "fd5e:zz::/64", "bad6")).code).not.toBe(0);
    expect((await docker("network", "ls", "--format", "{{.Name}}")).stdout.split("\n")).not.toContain("nov6");
    expect((await docker("rm", "-f", "web6")).code).toBe(0);
    expect((await docker("network", "rm", "v6net", "v6other")).code).toBe(0);
    if (NFT) expect(Bun.spawnSync([NFT, "list", "table", "ip6", "bunker"]).stdout.toString()).not.toContain("fd5e:b0c4:1::");
  });

  test("bad input gets Docker's messages and leaves nothing behind", async () => {
    expect((await docker("network", "create", "--subnet", "10.232.0.0/16", "n1")).code).toBe(0);
    const overlap = await docker("network", "create", "--subnet", "10.232.1.0/24", "n2");
    expect(overlap.stderr).toContain("Pool overlaps with other one on this address space");
    const dup = await docker("network", "create", "n1");
    expect(dup.stderr).toContain("network with name n1 already exists");
    const unknown = await docker("run", "--rm", "--pull", "never", "--network", "nosuchnet", "busybox", "true");
    expect(unknown.stderr).toContain("network nosuchnet not found");
    const badPort = await docker("run", "--rm", "-p", "80:99999", "busybox", "true");
    expect(badPort.code).not.toBe(0);
    expect((await docker("run", "-d", "--name", "holder", "-p", "127.0.0.1:18083:80", "busybox", "sleep", "60")).code).toBe(0);
    const vethsBefore = bridgePorts("bunker0").length;
    const inUse = await docker("run", "-d", "--name", "second", "-p", "127.0.0.1:18083:80", "busybox", "sleep", "60");
    expect(inUse.stderr).toContain("port is already allocated");
    expect(bridgePorts("bunker0").length).toBeLessThanOrEqual(vethsBefore); // none added (older ones may go meanwhile)
    expect((await docker("inspect", "-f", "{{.State.Running}}", "second")).stdout.trim()).toBe("false");
    const preRm = await docker("network", "rm", "bridge");
    expect(preRm.stderr).toContain("bridge is a pre-defined network and cannot be removed");
    const api = await fetch("http://localhost/v1.51/networks/create", { unix: daemon.socket, method: "POST", body: JSON.stringify({ Name: 5 }), headers: { "content-type": "application/json" } } as RequestInit);
    expect(api.status).toBe(400);
    expect(((await api.json()) as { message: string }).message).toContain("Name");
    expect((await docker("rm", "-f", "holder", "second")).code).toBe(0);
    expect((await docker("network", "rm", "n1")).code).toBe(0);
    expect(existsSync(`/sys/class/net/br-`)).toBe(false);
  });
});
