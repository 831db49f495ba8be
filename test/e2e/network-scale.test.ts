/**
 * Networking at scale: 100 user networks and 300 containers on them (a published port on every
 * third), created, started, stopped and removed through the Engine API, with the nf_tables rules
 * read back with `nft` after each step. nf_tables batches used to fail with ENOBUFS at about 13
 * networks (an ACK per message, and a rule per pair of networks), after which every network
 * create and container start answered 500. The time per network create and per container start
 * must stay flat as the host fills up. Traffic goes only to loopback.
 */
import { NFT, ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { apiClient } from "../helpers/api.ts";
import { cleanup, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.ts";
import { BUSYBOX, busyboxLayer, dockerArchive } from "../helpers/images.ts";

const NETWORKS = 100;
const CONTAINERS = 300;
const PORT0 = 21000;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const table = () => Bun.spawnSync([NFT!, "list", "table", "ip", "bunker"]).stdout.toString();
/** The rules of one chain in `nft list` output. */
const chainRules = (text: string, chain: string) => {
  const m = new RegExp(`chain ${chain} \\{\\n([\\s\\S]*?)\\n\\t\\}`).exec(text);
  return (m?.[1] ?? "").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("type "));
};

describe.skipIf(skipUnless("100 networks and 300 containers", { "root": ROOT, "nft (nftables)": NFT, "busybox-static": BUSYBOX }))("100 networks and 300 containers", () => {
  let daemon: TestDaemon;
  let dir: string;
  let api: ReturnType<typeof apiClient>;
  const nets: { id: string; bridge: string }[] = [];
  const ctrs: string[] = [];

  beforeAll(async () => {
    dir = tempDir("bunker-scale-");
    // Docker's default pools hold 31 networks (dockerd stops there too); dockerd's
    // default-address-pools gives room for 256.
    writeFileSync(join(dir, "daemon.json"), JSON.stringify({ "default-address-pools": [{ base: "10.213.0.0/16", size: 24 }] }));
    daemon = await startDaemon({ dir, configFile: join(dir, "daemon.json") });
    api = apiClient(daemon.socket);
    writeFileSync(join(dir, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer()] }));
    const load = await fetch("http://localhost/images/load", { unix: daemon.socket, method: "POST", body: Bun.file(join(dir, "busybox.tar")) } as RequestInit);
    expect(load.status).toBe(200);
    await load.text();
  });
  afterAll(async () => {
    for (const id of ctrs) await api("DELETE", `/containers/${id}?force=1`);
    for (const n of nets) await api("DELETE", `/networks/${n.id}`);
    await daemon.stop();
    cleanup(dir);
  });

  test("create 100 networks: each is isolated with two rules, not one per pair; time per network stays flat", async () => {
    const times: number[] = [];
    for (let i = 0; i < NETWORKS; i++) {
      const t0 = performance.now();
      const r = await api("POST", "/networks/create", { Name: `scale-${i}` });
      times.push(performance.now() - t0);
      expect(r.status, r.text).toBe(201);
      nets.push({ id: r.json.Id, bridge: `br-${r.json.Id.slice(0, 12)}` });
      const subnet = (await api("GET", `/networks/${r.json.Id}`)).json.IPAM.Config[0].Subnet;
      expect(subnet).toStartWith("10.213.");
      expect(subnet).toEndWith(".0/24");
    }
    const t = table();
    const isolate = chainRules(t, "isolate");
    const forward = chainRules(t, "forward");
    const raw = chainRules(t, "raw");
    for (const n of nets) {
      expect(isolate.filter((l) => l.includes(`"${n.bridge}"`))).toHaveLength(1);
      expect(forward.filter((l) => l.includes(`iifname "${n.bridge}"`))).toHaveLength(1);
      expect(raw.filter((l) => l.includes(`"${n.bridge}"`) && l.includes("drop"))).toHaveLength(1);
    }
    // Linear: the default bridge plus the 100 networks, one isolate rule each.
    expect(isolate.length).toBe(NETWORKS + 1);
    const first = median(times.slice(0, 10));
    const last = median(times.slice(-10));
    console.log(`network create: first 10 median ${first.toFixed(1)} ms, last 10 ${last.toFixed(1)} ms`);
    expect(last).toBeLessThan(first * 3 + 20);
  }, 120_000);

  test("create and start 300 containers on them (100 with a published port): every start works, the ports chain has a DNAT per port, start time stays flat", async () => {
    const times: number[] = [];
    for (let i = 0; i < CONTAINERS; i++) {
      const net = nets[i % NETWORKS]!;
      const publish = i % 3 === 0;
      const body = {
        Image: "busybox",
        Cmd: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www; echo c$HOSTNAME > /www/index.html; httpd -p 80 -h /www; sleep 1000 & wait"],
        ExposedPorts: publish ? { "80/tcp": {} } : {},
        HostConfig: { NetworkMode: `scale-${i % NETWORKS}`, ...(publish ? { PortBindings: { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: String(PORT0 + i) }] } } : {}) },
      };
      const c = await api("POST", `/containers/create?name=scale-c${i}`, body);
      expect(c.status, c.text).toBe(201);
      ctrs.push(c.json.Id);
      const t0 = performance.now();
      const s = await api("POST", `/containers/${c.json.Id}/start`);
      times.push(performance.now() - t0);
      expect(s.status, `container ${i} on ${net.bridge}: ${s.text}`).toBe(204);
    }
    const ports = chainRules(table(), "ports");
    expect(ports.filter((l) => l.includes("dnat to"))).toHaveLength(CONTAINERS / 3);
    for (let i = 0; i < CONTAINERS; i += 3) expect(ports.some((l) => l.includes(`dport ${PORT0 + i} `))).toBe(true);
    // The last container's published port answers from the host's loopback.
    const last = CONTAINERS - 3;
    const host = (await api("GET", `/containers/${ctrs[last]}/json`)).json.Config.Hostname;
    let body = "";
    for (let i = 0; i < 30 && !body.includes(host); i++) {
      body = await fetch(`http://127.0.0.1:${PORT0 + last}/`, { signal: AbortSignal.timeout(2000) }).then((r) => r.text(), () => "");
      if (!body.includes(host)) await Bun.sleep(100);
    }
    expect(body).toContain(`c${host}`);
    const first = median(times.slice(0, 30));
    const lastT = median(times.slice(-30));
    console.log(`container start: first 30 median ${first.toFixed(1)} ms, last 30 ${lastT.toFixed(1)} ms`);
    expect(lastT).toBeLessThan(first * 3 + 20);
  }, 240_000);

  test("stop all 300: the ports chain is empty again, no veth left on the bridges", async () => {
    for (let i = 0; i < ctrs.length; i += 20) {
      const rs = await Promise.all(ctrs.slice(i, i + 20).map((id) => api("POST", `/containers/${id}/stop?t=5`)));
      for (const r of rs) expect(r.status, r.text).toBe(204);
    }
    expect(chainRules(table(), "ports").filter((l) => l.includes("dnat to"))).toHaveLength(0);
    const states = await Promise.all(ctrs.slice(0, 10).map((id) => api("GET", `/containers/${id}/json`)));
    for (const s of states) expect(s.json.State.Status).toBe("exited");
  }, 240_000);

  test("remove all containers and networks: no rule names a removed bridge, and the bridges are gone", async () => {
    for (const id of ctrs.splice(0)) expect((await api("DELETE", `/containers/${id}`)).status).toBe(204);
    const removed = nets.splice(0);
    for (const n of removed) expect((await api("DELETE", `/networks/${n.id}`)).status).toBe(204);
    const t = table();
    for (const n of removed) expect(t).not.toContain(n.bridge);
    expect(chainRules(t, "isolate")).toHaveLength(1); // the default bridge's
    expect(removed.filter((n) => existsSync(`/sys/class/net/${n.bridge}`))).toEqual([]);
  }, 240_000);
});
