/**
 * `docker run --rm <busybox> true` end to end (client → daemon → container → exit) against Bunker
 * and against Debian's dockerd in the same run, with the same docker CLI as the client so that
 * only the engines differ; `--network none` on both (Bunker's bridge network comes with the
 * network issue). Also: 50 runs started at once, `GET /containers/json` requests per second with
 * 100 containers present, and memory per idle running container (the engine's side: Bunker's
 * monitor, dockerd's containerd-shim, plus the daemons' growth).
 */
import { join } from "node:path";
import { BUNKER_BIN as BUNKER, benchWorkDir, DOCKER_CLI as DOCKER, DOCKERD_BIN as DOCKERD, descendantPids, ms, removeWorkDir, rssKb, summary, waitForPing } from "./lib.ts";

const N = Number(process.env.BUNKER_BENCH_N ?? 30);

interface Engine {
  name: string;
  host: string;
  proc: Bun.Subprocess;
}

async function docker(e: Engine, ...args: string[]): Promise<{ code: number; out: string }> {
  const p = Bun.spawn([DOCKER!, "-H", e.host, ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${e.name}: docker ${args.join(" ")}: ${err}`);
  return { code, out };
}

async function timeRun(e: Engine): Promise<number> {
  const t0 = performance.now();
  await docker(e, "run", "--rm", "--network", "none", "busybox", "true");
  return performance.now() - t0;
}

/** Requests per second of `GET /containers/json?all=1` over the engine's socket for `seconds`. */
async function listRate(socket: string, seconds: number): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    const r = await fetch("http://localhost/v1.44/containers/json?all=1", { unix: socket } as RequestInit);
    await r.arrayBuffer();
    n++;
  }
  return n / seconds;
}

/** containerd-shim processes serving the engine whose state is under `dir` (they re-parent to init). */
function shimRss(dir: string): { shims: number; kb: number } {
  const fs = require("node:fs");
  const pids = fs.readdirSync("/proc").filter((p: string) => /^\d+$/.test(p)).map(Number).filter((p: number) => {
    try {
      return fs.readFileSync(`/proc/${p}/comm`, "utf8").startsWith("containerd-shim") && fs.readFileSync(`/proc/${p}/cmdline`, "utf8").includes(dir);
    } catch {
      return false;
    }
  });
  return { shims: pids.length, kb: pids.reduce((a: number, p: number) => a + rssKb(p), 0) };
}

/** The suite: returns the markdown section. */
export async function runLatencySuite(): Promise<string> {
  if (!DOCKER) return "## docker run latency\n\nSkipped: no docker CLI.\n";
  const { work, archive } = await benchWorkDir("bunker-bench-run");
  const engines: Engine[] = [];
  const dataRoots: string[] = [];
  try {
    const bdir = join(work, "bunker");
    const bsock = join(bdir, "run", "bunker.sock");
    engines.push({ name: "bunker", host: `unix://${bsock}`, proc: Bun.spawn([BUNKER, "daemon", "--config-file", "/dev/null", "--data-root", join(bdir, "data"), "--exec-root", join(bdir, "run")], { stdout: "ignore", stderr: "ignore" }) });
    await waitForPing(bsock);
    dataRoots.push(join(bdir, "data"));
    if (DOCKERD) {
      const ddir = join(work, "dockerd");
      const dsock = join(ddir, "docker.sock");
      engines.push({
        name: "dockerd",
        host: `unix://${dsock}`,
        proc: Bun.spawn([DOCKERD, "--data-root", join(ddir, "data"), "--exec-root", join(ddir, "run"), "-H", `unix://${dsock}`, "--pidfile", join(ddir, "docker.pid"), "--iptables=false", "--ip6tables=false", "--bridge=none"], { stdout: "ignore", stderr: "ignore" }),
      });
      await waitForPing(dsock);
    }
    for (const e of engines) await docker(e, "load", "-i", archive);
    for (const e of engines) for (let i = 0; i < 3; i++) await timeRun(e);
    const samples = new Map(engines.map((e) => [e.name, [] as number[]]));
    // Bunker's own client on the same daemon: `bunker run --rm` (the CLI is one Bun executable too).
    const own: number[] = [];
    const bunkerRun = async () => {
      const t0 = performance.now();
      const p = Bun.spawn([BUNKER, "-H", engines[0]!.host, "run", "--rm", "--network", "none", "busybox", "true"], { stdout: "ignore", stderr: "ignore" });
      if ((await p.exited) !== 0) throw new Error("bunker run failed");
      return performance.now() - t0;
    };
    for (let i = 0; i < 3; i++) await bunkerRun();
    for (let i = 0; i < N; i++) {
      for (const e of engines) samples.get(e.name)!.push(await timeRun(e));
      own.push(await bunkerRun());
    }
    const floor: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      await docker(engines[0]!, "version");
      floor.push(performance.now() - t0);
    }
    const parallel = new Map<string, number>();
    for (const e of engines) {
      const t0 = performance.now();
      await Promise.all(Array.from({ length: 50 }, () => timeRun(e)));
      parallel.set(e.name, performance.now() - t0);
    }
    // 100 containers present (created, not started), then list them as fast as one client can.
    const rate = new Map<string, number>();
    for (const e of engines) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => docker(e, "create", "--network", "none", "--name", `list${i}`, "busybox", "true")));
      const sock = e.host.replace("unix://", "");
      await listRate(sock, 0.5);
      rate.set(e.name, await listRate(sock, 3));
      await docker(e, "rm", ...Array.from({ length: 100 }, (_, i) => `list${i}`));
    }
    // Memory per idle running container: 20 `sleep` containers.
    const mem = new Map<string, { perContainerKb: number; detail: string }>();
    for (const e of engines) {
      const pid = e.proc.pid;
      const before = [pid, ...descendantPids(pid)].reduce((a, p) => a + rssKb(p), 0);
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) ids.push((await docker(e, "run", "-d", "--network", "none", "busybox", "sleep", "600")).out.trim());
      await Bun.sleep(1500);
      const all = [pid, ...descendantPids(pid)].filter((p) => {
        try {
          return require("node:fs").readFileSync(`/proc/${p}/comm`, "utf8").trim() !== "sleep";
        } catch {
          return false;
        }
      });
      let engineSide: number;
      let detail: string;
      if (e.name === "bunker") {
        // The monitors (children of the daemon while it runs); the containers' processes are not counted.
        const state = (id: string) => JSON.parse(require("node:fs").readFileSync(join(work, "bunker", "run", "runtime.v1.linux", id, "state.json"), "utf8"));
        const monitors = ids.map((id) => state(id).monitorPid as number);
        const monKb = monitors.reduce((a, p) => a + rssKb(p), 0);
        const daemonKb = rssKb(pid);
        engineSide = monKb + (daemonKb - before);
        detail = `monitors ${(monKb / 20).toFixed(0)} kB each; daemon grew ${((daemonKb - before) / 1024).toFixed(1)} MB`;
      } else {
        const shims = shimRss(join(work, "dockerd"));
        const daemons = all.reduce((a, p) => a + rssKb(p), 0); // dockerd and its containerd
        engineSide = shims.kb + (daemons - before);
        detail = `${shims.shims} containerd-shim-runc-v2 processes, ${(shims.kb / Math.max(1, shims.shims) / 1024).toFixed(1)} MB each; dockerd+containerd grew ${((daemons - before) / 1024).toFixed(1)} MB`;
      }
      mem.set(e.name, { perContainerKb: engineSide / 20, detail });
      await docker(e, "rm", "-f", ...ids);
    }
    const b = summary(samples.get("bunker")!);
    const rows = engines.map((e) => {
      const s = summary(samples.get(e.name)!);
      return `| ${e.name} | ${ms(s.median)} | ${ms(s.min)} | ${ms(parallel.get(e.name)!)} | ${rate.get(e.name)!.toFixed(0)} | ${(mem.get(e.name)!.perContainerKb / 1024).toFixed(2)} MB | ${e.name === "bunker" ? "" : (s.median / b.median).toFixed(1) + "×"} |`;
    });
    return [
      "## docker run latency (CLI → daemon → exit)",
      "",
      `Suite \`bench/run-latency.ts\`: \`docker run --rm --network none busybox true\` with the same docker CLI (${(await Bun.$`${DOCKER} --version`.text()).trim()}) against each engine, ${N} runs alternated; then 50 at once; \`GET /containers/json?all=1\` from one client with 100 containers present; engine memory per idle running container (20 \`sleep\` containers).`,
      "",
      "| engine | median ms | min ms | 50 in parallel, total ms | containers/json per s | memory per idle container | ÷ bunker (median) |",
      "|---|---|---|---|---|---|---|",
      ...rows,
      "",
      ...engines.map((e) => `- ${e.name}: ${mem.get(e.name)!.detail}`),
      `- \`bunker run --rm --network none busybox true\` (Bunker's CLI, same daemon): median ${ms(summary(own).median)} ms, min ${ms(summary(own).min)} ms${engines[1] ? `; dockerd with the docker CLI ÷ this: ${(summary(samples.get(engines[1].name)!).median / summary(own).median).toFixed(1)}×` : ""}.`,
      `- The docker CLI's own floor here: \`docker version\` against Bunker takes ${ms(summary(floor).median)} ms (median), so a 10× ratio against dockerd would leave ${engines[1] ? ms(summary(samples.get(engines[1].name)!).median / 10 - summary(floor).median) : "?"} ms for the whole engine side of a run.`,
      "",
    ].join("\n");
  } finally {
    for (const e of engines) {
      e.proc.kill("SIGTERM");
      await e.proc.exited;
    }
    removeWorkDir(work);
  }
}
