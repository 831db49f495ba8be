/**
 * The leak soak (issue 15): 1,000 mixed operations through the docker CLI against one daemon —
 * run --rm, detached runs with exec, `logs -f` and `attach` cut off by the client, failed starts,
 * commits, builds, cp, stop, rm, volumes — then the daemon's open descriptors, zombie children,
 * mounts under the data root and resident memory are compared with their values after a
 * warm-up, and after `system prune -a --volumes` the data root must be back to its size on an
 * empty engine.
 *
 *   bun test/soak/soak.ts [--ops 1000] [--seed 15]
 *
 * Ends with `N passed, N failed` (one per bound). Traffic: only the daemon's Unix socket.
 */
import { spawn } from "bun";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupMounted, run, startDaemon, tempDir } from "../helpers/daemon.ts";
import { DOCKER } from "../helpers/env.ts";
import { busyboxLayer, dockerArchive } from "../helpers/images.ts";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const OPS = Number(arg("ops", "1000"));
let seed = Number(arg("seed", "15")) >>> 0;
const random = () => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

/** What the daemon holds: descriptors, zombie children, mounts under its data root, RSS (kB). */
function resources(pid: number, dataRoot: string) {
  const fds = readdirSync(`/proc/${pid}/fd`).length;
  let zombies = 0;
  let children = 0;
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) !== pid) continue;
      children++;
      if (fields[0] === "Z") zombies++;
    } catch {
      /* gone */
    }
  }
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.split(" ")[4]?.startsWith(dataRoot)).length;
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  return { fds, zombies, children, mounts, rss };
}

const du = (dir: string) => Number(Bun.spawnSync(["du", "-sk", dir]).stdout.toString().split("\t")[0]);

async function main(): Promise<void> {
  const dir = tempDir("bunker-soak-");
  Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=2g", "tmpfs", dir]);
  const daemon = await startDaemon({ dir, args: ["--bridge", "bksoak0", "--bip", "10.232.0.1/24", "--plugin-config", `network.v1.bridge={"table":"bksoak"}`] });
  const docker = (...args: string[]) => run([DOCKER!, ...args], { DOCKER_HOST: daemon.host, DOCKER_BUILDKIT: "0" });
  const pid = daemon.proc.pid;
  let passed = 0;
  let failed = 0;
  const bound = (what: string, ok: boolean, detail: string) => {
    console.log(`${ok ? "(pass)" : "(fail)"} ${what}: ${detail}`);
    if (ok) passed++;
    else failed++;
  };
  try {
    await docker("system", "prune", "-a", "-f", "--volumes");
    const emptySize = du(daemon.dataRoot);
    writeFileSync(join(dir, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer({ full: true })] }));
    if ((await docker("load", "-q", "-i", join(dir, "busybox.tar"))).code !== 0) throw new Error("load failed");
    const ctx = join(dir, "ctx");
    mkdirSync(ctx);
    writeFileSync(join(ctx, "Dockerfile"), "FROM busybox\nRUN echo built > /built\nCOPY f /f\n");
    writeFileSync(join(ctx, "f"), "f\n");
    // Cut off by the client after a moment: a follow, an attach.
    const cutOff = async (args: string[], ms: number) => {
      const p = spawn([DOCKER!, ...args], { env: { ...process.env, DOCKER_HOST: daemon.host }, stdout: "ignore", stderr: "ignore", stdin: "pipe" });
      await Bun.sleep(ms);
      p.kill("SIGKILL");
      await p.exited;
    };
    let n = 0;
    const kinds: Record<string, number> = {};
    const op = async (): Promise<void> => {
      const r = random();
      const name = `s${n}`;
      const kind = r < 0.2 ? "run --rm" : r < 0.35 ? "run -d, exec, logs -f cut, attach cut, rm -f" : r < 0.45 ? "failed start" : r < 0.55 ? "commit" : r < 0.62 ? "build" : r < 0.72 ? "cp" : r < 0.82 ? "volume" : r < 0.9 ? "health-checked run" : "stop, start, rm";
      kinds[kind] = (kinds[kind] ?? 0) + 1;
      switch (kind) {
        case "run --rm":
          await docker("run", "--rm", "busybox", "sh", "-c", "echo hi");
          return;
        case "run -d, exec, logs -f cut, attach cut, rm -f":
          await docker("run", "-d", "--name", name, "busybox", "sh", "-c", "while true; do echo tick; sleep 0.05; done");
          await docker("exec", name, "true");
          await cutOff(["logs", "-f", name], 150);
          await cutOff(["attach", name], 100);
          await docker("rm", "-f", name);
          return;
        case "failed start":
          await docker("run", "--rm", "busybox", "/no/such/program");
          return;
        case "commit":
          await docker("run", "-d", "--name", name, "busybox", "sh", "-c", "echo x > /x; sleep 30");
          await docker("commit", name, `soak:${n}`);
          await docker("rm", "-f", name);
          await docker("rmi", `soak:${n}`);
          return;
        case "build":
          await docker("build", "-q", "-t", `soakb:${n}`, ctx);
          await docker("rmi", `soakb:${n}`);
          return;
        case "cp":
          await docker("run", "-d", "--name", name, "-v", `/data`, "busybox", "sh", "-c", "echo c > /data/c; sleep 30");
          await docker("cp", `${name}:/data`, join(dir, "cp-out"));
          await docker("cp", join(ctx, "f"), `${name}:/data/f`);
          await docker("rm", "-f", "-v", name);
          Bun.spawnSync(["rm", "-rf", join(dir, "cp-out")]);
          return;
        case "volume":
          await docker("volume", "create", `v${n}`);
          await docker("run", "--rm", "-v", `v${n}:/v`, "busybox", "touch", "/v/x");
          await docker("volume", "rm", `v${n}`);
          return;
        case "health-checked run":
          await docker("run", "-d", "--name", name, "--health-cmd", "true", "--health-interval", "100ms", "busybox", "sleep", "30");
          await Bun.sleep(300);
          await docker("rm", "-f", name);
          return;
        default:
          await docker("run", "-d", "--name", name, "busybox", "sleep", "30");
          await docker("stop", "-t", "0", name);
          await docker("start", name);
          await docker("rm", "-f", name);
      }
    };
    // Warm-up: every module loaded, every pool filled once.
    const WARM = Number(arg("warm-up", "200"));
    for (; n < WARM; n++) await op();
    await Bun.sleep(1500);
    const heap = async () => {
      const before = daemon.logs().length;
      process.kill(pid, "SIGUSR1"); // the daemon collects and logs its heap
      for (let i = 0; i < 100 && !daemon.logs().slice(before).includes("heap after a full collection"); i++) await Bun.sleep(20);
      return /heap after a full collection.*/.exec(daemon.logs().slice(before))?.[0] ?? "";
    };
    const baseHeap = await heap();
    const base = resources(pid, daemon.dataRoot);
    const t0 = performance.now();
    for (; n < WARM + OPS; n++) await op();
    const secs = ((performance.now() - t0) / 1000).toFixed(0);
    console.log(`${OPS} operations in ${secs} s: ${Object.entries(kinds)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`);
    // Quiet: what ran is gone, timers and pumps have ended.
    const ids = (await docker("ps", "-aq")).stdout.split("\n").filter(Boolean);
    if (ids.length) await docker("rm", "-f", ...ids);
    await Bun.sleep(2000);
    // A removed container's exit status is kept a minute for its `wait` (as dockerd): past that, the heap holds only what it held.
    await Bun.sleep(Number(process.env.SOAK_SETTLE ?? 61_000));
    const endHeap = await heap();
    const end = resources(pid, daemon.dataRoot);
    console.log(`baseline ${JSON.stringify(base)}; after ${JSON.stringify(end)}`);
    console.log(`heap at baseline: ${baseHeap}\nheap after: ${endHeap}`);
    bound("descriptors back to baseline (± 5)", Math.abs(end.fds - base.fds) <= 5, `${base.fds} → ${end.fds}`);
    bound("no zombie children", end.zombies <= 1, `${base.zombies} → ${end.zombies} (children ${base.children} → ${end.children})`);
    bound("mounts under the data root back to baseline", end.mounts <= base.mounts, `${base.mounts} → ${end.mounts}`);
    bound("resident memory within 10 MB of baseline", end.rss - base.rss <= 10 * 1024, `${(base.rss / 1024).toFixed(1)} MB → ${(end.rss / 1024).toFixed(1)} MB`);
    await docker("system", "prune", "-a", "-f", "--volumes");
    await docker("builder", "prune", "-a", "-f");
    const size = du(daemon.dataRoot);
    bound("data root back to its empty size after system prune -a --volumes (± 256 kB)", size - emptySize <= 256, `${emptySize} kB → ${size} kB`);
  } finally {
    await daemon.stop();
    cleanupMounted(dir);
    Bun.spawnSync(["umount", "-l", dir]);
    Bun.spawnSync(["ip", "link", "del", "bksoak0"]);
    Bun.spawnSync(["nft", "delete", "table", "ip", "bksoak"], { stderr: "ignore" });
  }
  console.log(`\n${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

await main();
