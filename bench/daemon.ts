/**
 * Daemon benchmarks, side by side with Docker in the same run:
 *  - time from spawning the daemon to the first `/_ping` answer (bunker vs dockerd);
 *  - idle daemon memory (RSS and PSS; dockerd counted with its containerd child);
 *  - wall time of `bunker version` vs `docker version` (tinybench, process spawn included).
 * Targets from the foundation issue: ready < 150 ms, idle RSS < 40 MB, client command < 15 ms.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Bench } from "tinybench";
import { descendantPids, ms, pssKb, rssKb, summary, waitForPing } from "./lib.ts";

const REPO = resolve(import.meta.dir, "..");
const BUNKER = join(REPO, "dist/bunker");
const DOCKER_CLI = ["/usr/local/bin/docker", "/usr/bin/docker"].find((p) => existsSync(p));
const DOCKERD = Bun.which("dockerd");

interface DaemonRun {
  readyMs: number;
  rssKb?: number;
  pssKb?: number;
}

/** Start a daemon command, time it to /_ping, optionally measure idle memory, stop it. */
async function timeDaemon(cmd: (dir: string) => string[], socket: (dir: string) => string, measureIdle: boolean, cold = false): Promise<DaemonRun> {
  if (cold) dropPageCache();
  const dir = mkdtempSync(join(tmpdir(), "bunker-bench-"));
  const t0 = performance.now();
  const proc = Bun.spawn(cmd(dir), { stdout: "ignore", stderr: "ignore" });
  try {
    await waitForPing(socket(dir));
    const run: DaemonRun = { readyMs: performance.now() - t0 };
    if (measureIdle) {
      await Bun.sleep(3000);
      const pids = [proc.pid, ...descendantPids(proc.pid)];
      run.rssKb = pids.reduce((a, p) => a + rssKb(p), 0);
      run.pssKb = pids.reduce((a, p) => a + pssKb(p), 0);
    }
    return run;
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

const bunkerCmdFor = (bin: string) => (dir: string) => [bin, "daemon", "--config-file", "/dev/null", "--data-root", join(dir, "data"), "--exec-root", join(dir, "run")];
const bunkerCmd = (dir: string) => [BUNKER, "daemon", "--config-file", "/dev/null", "--data-root", join(dir, "data"), "--exec-root", join(dir, "run")];
const bunkerSock = (dir: string) => join(dir, "run", "bunker.sock");
const dockerdCmd = (dir: string) => [
  DOCKERD!, "--data-root", join(dir, "data"), "--exec-root", join(dir, "run"), "-H", `unix://${join(dir, "docker.sock")}`,
  "--pidfile", join(dir, "docker.pid"), "--iptables=false", "--ip6tables=false", "--bridge=none",
];
const dockerdSock = (dir: string) => join(dir, "docker.sock");

/**
 * Empty the page cache (root only), as after a boot. Resident file-backed pages of a mapped
 * executable depend on what is cached: the kernel maps cached neighbours of each touched page
 * ("fault-around"), so a binary that was just written or run shows several MB more RSS than the
 * same daemon started from a cold cache. Both states are measured.
 */
function dropPageCache(): boolean {
  if (process.getuid?.() !== 0) return false;
  Bun.spawnSync(["sync"]);
  try {
    writeFileSync("/proc/sys/vm/drop_caches", "3");
    return true;
  } catch {
    return false;
  }
}

async function daemonRuns(cmd: typeof bunkerCmd, sock: typeof bunkerSock, n: number): Promise<DaemonRun[]> {
  const runs: DaemonRun[] = [];
  for (let i = 0; i < n; i++) runs.push(await timeDaemon(cmd, sock, false));
  return runs;
}

/**
 * Idle memory: three runs from a cold page cache, then three with the whole executable read into
 * the page cache first (the worst case, as right after a build or copy).
 */
async function memoryRuns(cmd: typeof bunkerCmd, sock: typeof bunkerSock): Promise<{ cold: DaemonRun[]; warm: DaemonRun[] }> {
  const cold: DaemonRun[] = [];
  const warm: DaemonRun[] = [];
  if (dropPageCache()) for (let i = 0; i < 3; i++) cold.push(await timeDaemon(cmd, sock, true, true));
  const binary = cmd("/nonexistent")[0]!;
  for (let i = 0; i < 3; i++) {
    await Bun.file(binary).arrayBuffer(); // every page of the executable cached
    warm.push(await timeDaemon(cmd, sock, true));
  }
  return { cold, warm };
}

/** Time client commands against a running daemon with tinybench. */
async function clientTimes(tasks: { name: string; cmd: string[] }[]): Promise<Map<string, { p50: number; mean: number; n: number }>> {
  const bench = new Bench({ time: 3000, iterations: 30, warmupIterations: 3 });
  for (const t of tasks) {
    bench.add(t.name, () => {
      const r = Bun.spawnSync(t.cmd, { stdout: "ignore", stderr: "ignore" });
      if (r.exitCode !== 0) throw new Error(`${t.cmd.join(" ")} exited ${r.exitCode}`);
    });
  }
  await bench.run();
  const out = new Map<string, { p50: number; mean: number; n: number }>();
  for (const task of bench.tasks) {
    const res = task.result as { latency?: { p50: number; mean: number; samplesCount: number }; error?: Error };
    if (!res.latency) throw res.error ?? new Error(`${task.name}: no result`);
    out.set(task.name, { p50: res.latency.p50, mean: res.latency.mean, n: res.latency.samplesCount });
  }
  return out;
}

/** Run the suite; returns the markdown section for RESULTS.md. */
export async function daemonSuite(): Promise<string> {
  if (!existsSync(BUNKER)) throw new Error("dist/bunker is missing: run `npm run build` first");
  const bunker = await daemonRuns(bunkerCmd, bunkerSock, 15);
  const dockerd = DOCKERD ? await daemonRuns(dockerdCmd, dockerdSock, 5) : undefined;
  const bMem = await memoryRuns(bunkerCmd, bunkerSock);
  // A freshly written copy (as right after a build, copy or install, before any reboot): the
  // page cache then holds the file in large folios, and mapping it touches more of them.
  const fresh = join(mkdtempSync(join(tmpdir(), "bunker-bench-bin-")), "bunker");
  await Bun.write(fresh, Bun.file(BUNKER));
  Bun.spawnSync(["chmod", "+x", fresh]);
  const freshRuns: DaemonRun[] = [];
  for (let i = 0; i < 3; i++) freshRuns.push(await timeDaemon(bunkerCmdFor(fresh), bunkerSock, true));
  rmSync(join(fresh, ".."), { recursive: true, force: true });
  const dMem = DOCKERD ? await memoryRuns(dockerdCmd, dockerdSock) : undefined;
  const versions = `bunker ${Bun.spawnSync([BUNKER, "--version"]).stdout.toString().trim()}; ${DOCKERD ? Bun.spawnSync([DOCKERD, "--version"]).stdout.toString().trim() : "dockerd not installed"}; client ${DOCKER_CLI ? Bun.spawnSync([DOCKER_CLI, "--version"]).stdout.toString().trim() : "none"}`;

  // Client commands, each against its own daemon, measured in one tinybench run.
  const bdir = mkdtempSync(join(tmpdir(), "bunker-bench-"));
  const bproc = Bun.spawn(bunkerCmd(bdir), { stdout: "ignore", stderr: "ignore" });
  const ddir = mkdtempSync(join(tmpdir(), "bunker-bench-"));
  const dproc = DOCKERD ? Bun.spawn(dockerdCmd(ddir), { stdout: "ignore", stderr: "ignore" }) : undefined;
  let clients;
  try {
    await waitForPing(bunkerSock(bdir));
    if (dproc) await waitForPing(dockerdSock(ddir));
    const tasks = [{ name: "bunker version → bunker", cmd: [BUNKER, "-H", `unix://${bunkerSock(bdir)}`, "version"] }];
    if (DOCKER_CLI) tasks.push({ name: "docker version → bunker", cmd: [DOCKER_CLI, "-H", `unix://${bunkerSock(bdir)}`, "version"] });
    if (DOCKER_CLI && dproc) tasks.push({ name: "docker version → dockerd", cmd: [DOCKER_CLI, "-H", `unix://${dockerdSock(ddir)}`, "version"] });
    clients = await clientTimes(tasks);
  } finally {
    bproc.kill("SIGTERM");
    dproc?.kill("SIGTERM");
    await Promise.all([bproc.exited, dproc?.exited]);
    rmSync(bdir, { recursive: true, force: true });
    rmSync(ddir, { recursive: true, force: true });
  }

  const b = summary(bunker.map((r) => r.readyMs));
  const d = dockerd ? summary(dockerd.map((r) => r.readyMs)) : undefined;
  const mb = (kb?: number) => (kb === undefined ? "n/a" : (kb / 1024).toFixed(1));
  const memMedian = (runs: DaemonRun[] | undefined, key: "rssKb" | "pssKb") =>
    runs?.length ? summary(runs.flatMap((r) => (r[key] === undefined ? [] : [r[key]!]))).median : undefined;
  const bv = clients.get("bunker version → bunker")!;
  const dv = clients.get("docker version → dockerd");
  const dvb = clients.get("docker version → bunker");
  const pass = (ok: boolean) => (ok ? "met" : "**missed**");
  let md = `## Daemon start, idle memory, client command\n\n`;
  md += `Suite \`bench/daemon.ts\` (${versions}). dockerd runs with \`--iptables=false --bridge=none\` and starts its own containerd; its memory includes that child. Most of an idle Bun daemon's RSS is clean, shared pages of its own executable; how many are mapped depends on the page cache (see \`dropPageCache\`), so memory is given for a cold and a warm cache.\n\n`;
  md += `| measure | bunker | dockerd / docker | ratio (docker ÷ bunker) | target | \n|---|---|---|---|---|\n`;
  md += `| daemon start → first \`/_ping\` (median of ${b.n} / ${d?.n ?? 0}) | ${ms(b.median)} ms (min ${ms(b.min)}, max ${ms(b.max)}) | ${d ? `${ms(d.median)} ms (min ${ms(d.min)}, max ${ms(d.max)})` : "not installed"} | ${d ? (d.median / b.median).toFixed(1) + "×" : "n/a"} | < 150 ms: ${pass(b.median < 150)} |\n`;
  for (const state of ["cold", "warm"] as const) {
    const label = state === "cold" ? "cold page cache, as after boot" : "whole executable in page cache";
    for (const key of ["rssKb", "pssKb"] as const) {
      const b = memMedian(bMem[state], key);
      const d = memMedian(dMem?.[state], key);
      if (b === undefined) continue;
      const target = key === "rssKb" ? `< 40 MB: ${pass(b / 1024 < 40)}` : "";
      md += `| idle ${key === "rssKb" ? "RSS" : "PSS"} 3 s after ready, ${label} (median of 3) | ${mb(b)} MB | ${mb(d)} MB | ${d ? (d / b).toFixed(1) + "×" : "n/a"} | ${target} |\n`;
    }
  }
  const fr = memMedian(freshRuns, "rssKb")!;
  md += `| idle RSS 3 s after ready, executable freshly written (copied) (median of 3) | ${mb(fr)} MB | | | < 40 MB: ${pass(fr / 1024 < 40)} |\n`;
  md += `| \`version\` command wall time (p50 of ${bv.n}${dv ? ` / ${dv.n}` : ""}) | ${ms(bv.p50)} ms | ${dv ? ms(dv.p50) + " ms" : "n/a"} | ${dv ? (dv.p50 / bv.p50).toFixed(1) + "×" : "n/a"} | < 15 ms: ${pass(bv.p50 < 15)} |\n`;
  if (dvb) md += `| \`docker version\` against bunker (p50) | ${ms(dvb.p50)} ms | | | |\n`;
  return md + "\n";
}

if (import.meta.main) console.log(await daemonSuite());
