/**
 * Networking at scale: 100 user networks, then 300 containers on them (a published port on every
 * third), through the Engine API, against Bunker and Debian's dockerd in the same run. Reports the
 * time of each network create and container start by position (the first, middle and last
 * tenth), so a cost that grows with the number of networks or containers shows as a rising row;
 * and Bunker's nf_tables rule count. dockerd runs with `--iptables=false` (this bench leaves the
 * host's firewall alone), so it does no firewall work at all while Bunker keeps its rules.
 */
import { join } from "node:path";
import { BUNKER_BIN as BUNKER, benchWorkDir, DOCKERD_BIN as DOCKERD, ms, removeWorkDir, summary, waitForPing } from "./lib.ts";

const NETWORKS = Number(process.env.BUNKER_BENCH_NETWORKS ?? 100);
const CONTAINERS = Number(process.env.BUNKER_BENCH_CONTAINERS ?? 300);

interface Engine {
  name: string;
  socket: string;
  proc: Bun.Subprocess;
}

async function api(e: Engine, method: string, path: string, body?: unknown): Promise<{ status: number; json: { Id?: string; message?: string } }> {
  const r = await fetch(`http://localhost${path}`, { unix: e.socket, method, headers: body ? { "content-type": "application/json" } : {}, ...(body ? { body: JSON.stringify(body) } : {}) } as RequestInit);
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : {} };
}

/** Medians of the first, middle and last tenth of `xs`. */
function tenths(xs: number[]): [number, number, number] {
  const n = Math.max(1, Math.floor(xs.length / 10));
  const mid = Math.floor(xs.length / 2 - n / 2);
  return [summary(xs.slice(0, n)).median, summary(xs.slice(mid, mid + n)).median, summary(xs.slice(-n)).median];
}

/** Rules in Bunker's ip table now (what `nft list` shows). */
const ruleCount = () => (Bun.which("nft") ? Bun.spawnSync(["nft", "list", "table", "ip", "bunker"]).stdout.toString().split("\n").filter((l) => /^\t\t\S/.test(l) && !l.includes("type ")).length : 0);

async function scale(e: Engine): Promise<{ nets: number[]; starts: number[]; rules: number }> {
  let rules = 0;
  const nets: number[] = [];
  const starts: number[] = [];
  const netIds: string[] = [];
  const ids: string[] = [];
  try {
    for (let i = 0; i < NETWORKS; i++) {
      const t0 = performance.now();
      const r = await api(e, "POST", "/networks/create", { Name: `scale-${i}` });
      nets.push(performance.now() - t0);
      if (r.status !== 201) throw new Error(`${e.name}: network ${i}: ${r.status} ${r.json.message}`);
      netIds.push(r.json.Id!);
    }
    for (let i = 0; i < CONTAINERS; i++) {
      const publish = i % 3 === 0;
      const c = await api(e, "POST", "/containers/create", {
        Image: "busybox",
        Cmd: ["sleep", "1000"],
        ExposedPorts: publish ? { "80/tcp": {} } : {},
        HostConfig: { NetworkMode: `scale-${i % NETWORKS}`, ...(publish ? { PortBindings: { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: String(22000 + i) }] } } : {}) },
      });
      if (c.status !== 201) throw new Error(`${e.name}: container ${i}: ${c.status} ${c.json.message}`);
      ids.push(c.json.Id!);
      const t0 = performance.now();
      const s = await api(e, "POST", `/containers/${c.json.Id}/start`);
      starts.push(performance.now() - t0);
      if (s.status !== 204) throw new Error(`${e.name}: start ${i}: ${s.status} ${s.json.message}`);
    }
    if (e.name === "bunker") rules = ruleCount();
  } finally {
    for (let i = 0; i < ids.length; i += 25) await Promise.all(ids.slice(i, i + 25).map((id) => api(e, "DELETE", `/containers/${id}?force=1`)));
    for (const n of netIds) await api(e, "DELETE", `/networks/${n}`);
  }
  return { nets, starts, rules };
}

/** The suite: returns the markdown section. */
export async function networkScaleSuite(): Promise<string> {
  const { work, archive } = await benchWorkDir("bunker-bench-netscale");
  const engines: Engine[] = [];
  try {
    const bdir = join(work, "bunker");
    writeConfig(join(bdir, "daemon.json"));
    const bsock = join(bdir, "run", "bunker.sock");
    engines.push({ name: "bunker", socket: bsock, proc: Bun.spawn([BUNKER, "daemon", "--config-file", join(bdir, "daemon.json"), "--data-root", join(bdir, "data"), "--exec-root", join(bdir, "run")], { stdio: ["ignore", "ignore", "ignore"] }) });
    await waitForPing(bsock);
    if (DOCKERD) {
      const ddir = join(work, "dockerd");
      const dsock = join(ddir, "docker.sock");
      engines.push({
        name: "dockerd",
        socket: dsock,
        proc: Bun.spawn([DOCKERD, "--data-root", join(ddir, "data"), "--exec-root", join(ddir, "run"), "-H", `unix://${dsock}`, "--pidfile", join(ddir, "docker.pid"), "--iptables=false", "--ip6tables=false", "--bip", "10.250.0.1/24", "--default-address-pool", "base=10.214.0.0/16,size=24"], { stdio: ["ignore", "ignore", "ignore"] }),
      });
      await waitForPing(dsock);
    }
    for (const e of engines) {
      const r = await fetch("http://localhost/images/load", { unix: e.socket, method: "POST", body: Bun.file(archive) } as RequestInit);
      await r.text();
    }
    const results = new Map<string, { nets: number[]; starts: number[]; rules: number }>();
    for (const e of engines) results.set(e.name, await scale(e));
    const row = (what: string, xs: number[]) => {
      const [a, b, c] = tenths(xs);
      return `| ${what} | ${ms(a)} | ${ms(b)} | ${ms(c)} | ${(c / a).toFixed(2)} |`;
    };
    const lines = [
      "## Networking at scale (100 networks, 300 containers)",
      "",
      `Suite \`bench/network-scale.ts\`: ${NETWORKS} \`POST /networks/create\`, then ${CONTAINERS} containers (\`sleep\`, a published port on every third) created and started on them in turn, through the Engine API; medians of the first, middle and last tenth of the operations. Bunker keeps its nf_tables table; dockerd runs with \`--iptables=false\` and does no firewall work.`,
      "",
      "| operation | first tenth ms | middle tenth ms | last tenth ms | last ÷ first |",
      "|---|---|---|---|---|",
    ];
    for (const [name, r] of results) lines.push(row(`${name}: network create`, r.nets), row(`${name}: container start`, r.starts));
    const b = results.get("bunker")!;
    const d = results.get("dockerd");
    lines.push("");
    if (d) lines.push(`Medians over all: network create bunker ${ms(summary(b.nets).median)} ms vs dockerd ${ms(summary(d.nets).median)} ms (${(summary(d.nets).median / summary(b.nets).median).toFixed(1)}×); container start bunker ${ms(summary(b.starts).median)} ms vs dockerd ${ms(summary(d.starts).median)} ms (${(summary(d.starts).median / summary(b.starts).median).toFixed(1)}×).`);
    lines.push(`Rules in Bunker's ip table with all ${NETWORKS} networks and ${CONTAINERS} containers up: ${b.rules} (six per network, one per published port). Before this work the table had one rule per pair of networks (9,900 for 100) and every change rewrote whole chains; an nf_tables batch broke with ENOBUFS at about 13 networks.`, "");
    return lines.join("\n");
  } finally {
    for (const e of engines) {
      e.proc.kill("SIGTERM");
      await e.proc.exited;
    }
    removeWorkDir(work);
  }
}

function writeConfig(file: string): void {
  require("node:fs").mkdirSync(join(file, ".."), { recursive: true });
  require("node:fs").writeFileSync(file, JSON.stringify({ "default-address-pools": [{ base: "10.213.0.0/16", size: 24 }] }));
}
