/**
 * Container start latency: `bunker runtime run` against `runc run` and `crun run` on the very same
 * OCI bundle (busybox rootfs, runc's default spec without a terminal, running /bin/true),
 * alternated in one run, 100 times each, then 10 containers started in parallel per runtime.
 * Wall time of the whole command, from spawn to exit, as a container engine would see it.
 */
import { mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { busyboxRootfs, testSpec, writeBundle } from "../test/helpers/bundle.ts";
import { ms, summary } from "./lib.ts";

const BUNKER = resolve(import.meta.dir, "../dist/bunker");
const N = Number(process.env.BUNKER_BENCH_N ?? 100);

async function timeIt(cmd: string[]): Promise<number> {
  const t0 = performance.now();
  const p = Bun.spawn(cmd, { stdio: ["ignore", "ignore", "pipe"] });
  const code = await p.exited;
  const t = performance.now() - t0;
  if (code !== 0) throw new Error(`${cmd.join(" ")}: exit ${code}: ${await new Response(p.stderr).text()}`);
  return t;
}

/**
 * crun refuses a hybrid host whose cgroup v2 hierarchy still holds a controller (here: hugetlb).
 * Mounting a v1 hierarchy for it moves it off v2; returns what was done, for the report.
 */
function freeV2Controllers(): string {
  const file = "/sys/fs/cgroup/unified/cgroup.controllers";
  let text = "";
  try {
    text = require("node:fs").readFileSync(file, "utf8");
  } catch {
    return ""; // not a hybrid host
  }
  const ctrls = text.trim().split(/\s+/).filter(Boolean);
  for (const c of ctrls) {
    const dir = `/sys/fs/cgroup/${c}`;
    mkdirSync(dir, { recursive: true });
    const r = Bun.spawnSync(["mount", "-t", "cgroup", "-o", c, "cgroup", dir]);
    if (r.exitCode !== 0) return `could not move ${c} off cgroup v2: ${r.stderr.toString().trim()}`;
  }
  return ctrls.length ? `moved ${ctrls.join(", ")} from the cgroup v2 hierarchy to v1 (for crun)` : "";
}

/** The suite: returns the markdown section. */
export async function startLatencySuite(): Promise<string> {
  const work = resolve("/var/tmp", `bunker-bench-start-${process.pid}`);
  mkdirSync(work, { recursive: true });
  try {
    const moved = Bun.which("crun") ? freeV2Controllers() : "";
    const rootfs = await busyboxRootfs(work);
    try {
      symlinkSync("busybox", join(rootfs, "bin/true"));
    } catch {}
    const bundle = writeBundle(join(work, "bundle"), rootfs, testSpec(["/bin/true"]));
    const runtimes: [string, (id: string) => string[]][] = [[`bunker runtime`, (id) => [BUNKER, "runtime", "--root", join(work, "bunker-state"), "run", "--bundle", bundle, id]]];
    for (const [name, bin] of [["runc", Bun.which("runc")], ["crun", Bun.which("crun")]] as const) {
      if (bin) runtimes.push([name, (id) => [bin, "--root", join(work, `${name}-state`), "run", "--bundle", bundle, id]]);
    }
    const samples = new Map<string, number[]>(runtimes.map(([n]) => [n, []]));
    for (let i = 0; i < 3; i++) for (const [n, cmd] of runtimes) await timeIt(cmd(`warm-${n.replace(/\W/g, "")}-${i}`));
    for (let i = 0; i < N; i++) {
      for (const [n, cmd] of runtimes) samples.get(n)!.push(await timeIt(cmd(`s-${n.replace(/\W/g, "")}-${i}`)));
    }
    // The engine's own path: the runtime as a library in a warm process (no process start, no compile).
    const { LinuxRuntime } = await import("../src/plugins/runtime-linux/runtime.ts");
    const { linuxSys } = await import("../src/core/sys/sys.ts");
    const lib = new LinuxRuntime(linuxSys(), join(work, "lib-state"));
    const libRun = async (id: string) => {
      const t0 = performance.now();
      const st = await lib.create(id, { bundle });
      const exited = lib.waitExit(st.pid);
      await lib.start(id);
      const code = await exited;
      await lib.delete(id, true);
      if (code !== 0) throw new Error(`in-process run exited ${code}`);
      return performance.now() - t0;
    };
    for (let i = 0; i < 3; i++) await libRun(`lw-${i}`);
    const libSamples: number[] = [];
    for (let i = 0; i < N; i++) libSamples.push(await libRun(`l-${i}`));
    samples.set("bunker in-process (engine path)", libSamples);
    runtimes.push(["bunker in-process (engine path)", () => []]);
    const parallel = new Map<string, number>();
    for (const [n, cmd] of runtimes) {
      const t0 = performance.now();
      if (n.includes("in-process")) await Promise.all(Array.from({ length: 10 }, (_, i) => libRun(`lp-${i}`)));
      else await Promise.all(Array.from({ length: 10 }, (_, i) => timeIt(cmd(`p-${n.replace(/\W/g, "")}-${i}`))));
      parallel.set(n, performance.now() - t0);
    }
    const ours = summary(samples.get("bunker runtime")!).median;
    let md = `## Container start latency\n\nSuite \`bench/start-latency.ts\`: \`<runtime> run\` of one bundle (busybox rootfs, runc's default spec without a terminal, \`/bin/true\`), wall time from spawn to exit; ${N} runs each, alternated; then 10 started at once. runc ${Bun.spawnSync(["runc", "--version"]).stdout.toString().split("\n")[0]?.replace("runc version ", "") ?? "?"}${Bun.which("crun") ? `, crun ${Bun.spawnSync(["crun", "--version"]).stdout.toString().split("\n")[0]?.replace("crun version ", "") ?? "?"}` : " (crun not installed)"}.\n\n`;
    md += "| runtime | median ms | p90 ms | min ms | 10 in parallel, total ms | bunker runtime run ÷ this | bunker in-process ÷ this |\n|---|---|---|---|---|---|---|\n";
    const inproc = summary(libSamples).median;
    for (const [n] of runtimes) {
      const s = samples.get(n)!.sort((a, b) => a - b);
      const sm = summary(s);
      md += `| ${n} | ${ms(sm.median)} | ${ms(s[Math.floor(s.length * 0.9)]!)} | ${ms(sm.min)} | ${ms(parallel.get(n)!)} | ${n.startsWith("bunker") ? "" : (ours / sm.median).toFixed(2)} | ${n.startsWith("bunker") ? "" : (inproc / sm.median).toFixed(2)} |\n`;
    }
    md += await monitorMemory(work, bundle, lib);
    md += `\nAll three create a cgroup per container (Bunker under /bunker/<id>). "in-process" is the same runtime called as a library from a warm process, as the engine calls it: create, start, wait, delete. The \`bunker runtime run\` command pays Bun's process start, module loading and the C stub's compile on every call.${moved ? ` Setup: ${moved}.` : ""}\n\n`;
    return md;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Resident memory of what holds one running container (`sleep`): Bunker's monitor, against
 * conmon (podman's monitor, with runc) when installed. containerd-shim is measured with dockerd in
 * bench/run-latency.ts.
 */
async function monitorMemory(work: string, bundleDir: string, lib: { create(id: string, o: object): Promise<{ pid: number }>; kill(id: string, s: string): void; delete(id: string, force?: boolean): Promise<void>; watchExit(id: string): Promise<number> }): Promise<string> {
  const { readFileSync, writeFileSync: wf, mkdirSync: mk } = await import("node:fs");
  const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  const sleepBundle = join(work, "sleep-bundle");
  mk(sleepBundle, { recursive: true });
  const spec = JSON.parse(readFileSync(join(bundleDir, "config.json"), "utf8"));
  spec.process.args = ["sleep", "30"];
  wf(join(sleepBundle, "config.json"), JSON.stringify(spec));
  const rows: string[] = [];
  await lib.create("mem-1", { bundle: sleepBundle, monitor: true, io: { spool: join(work, "mem.spool"), stdin: "null" } });
  await (lib as unknown as { start(id: string): Promise<void> }).start("mem-1");
  await Bun.sleep(500);
  const monitorPid = JSON.parse(readFileSync(join(work, "lib-state", "mem-1", "state.json"), "utf8")).monitorPid as number;
  rows.push(`| bunker monitor (output capture on) | ${rss(monitorPid)} kB |`);
  lib.kill("mem-1", "SIGKILL");
  await lib.watchExit("mem-1");
  await lib.delete("mem-1", true);
  const conmon = Bun.which("conmon");
  if (conmon) {
    const d = join(work, "conmon");
    mk(join(d, "exit"), { recursive: true });
    mk(join(d, "sock"), { recursive: true });
    Bun.spawnSync([conmon, "--cid", "cm1", "--cuuid", "cm1", "-n", "cm1", "--runtime", Bun.which("runc")!, "--bundle", sleepBundle, "--exit-dir", join(d, "exit"), "--log-path", join(d, "cm1.log"), "--container-pidfile", join(d, "cm1.pid"), "--conmon-pidfile", join(d, "conmon.pid"), "--runtime-arg", `--root=${join(d, "runc")}`, "--socket-dir-path", join(d, "sock")]);
    Bun.spawnSync(["runc", "--root", join(d, "runc"), "start", "cm1"]);
    await Bun.sleep(500);
    const cp = Number(readFileSync(join(d, "conmon.pid"), "utf8"));
    rows.push(`| conmon ${Bun.spawnSync([conmon, "--version"]).stdout.toString().split("\n")[0]?.replace("conmon version ", "")} (with runc) | ${rss(cp)} kB |`);
    Bun.spawnSync(["runc", "--root", join(d, "runc"), "kill", "cm1", "KILL"]);
    await Bun.sleep(300);
    Bun.spawnSync(["runc", "--root", join(d, "runc"), "delete", "-f", "cm1"]);
  }
  return `\n| what holds one running container | RSS |\n|---|---|\n${rows.join("\n")}\n| containerd-shim-runc-v2 | see "docker run latency" |\n`;
}

if (import.meta.main) console.log(await startLatencySuite());
