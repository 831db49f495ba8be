/**
 * The cost of crash safety (issue 15): `run --rm`, `commit`, `volume rm` and `load` on the build
 * from before the intent journal and the start-up sweep (git revision BUNKER_BENCH_BEFORE,
 * default ce8b494, built into a worktree) and on this build, in the same run, on the same kind
 * of data root (a tmpfs, so the disk's noise stays out), alternating the two engines sample by
 * sample. Target: under 5 % or under 1 ms more per operation.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { BUNKER_BIN, DOCKER_CLI as DOCKER, ms, removeWorkDir, summary, waitForPing } from "./lib.ts";

const N = Number(process.env.BUNKER_BENCH_N ?? 15);
const BEFORE = process.env.BUNKER_BENCH_BEFORE ?? "ce8b494";
const REPO = resolve(import.meta.dir, "..");

/** The executable of revision `rev`, built once into a worktree under /var/tmp. */
function buildRevision(rev: string): string {
  const tree = `/var/tmp/bunker-bench-${rev}`;
  const bin = join(tree, "dist/bunker");
  if (existsSync(bin)) return bin;
  rmSync(tree, { recursive: true, force: true });
  Bun.spawnSync(["git", "-C", REPO, "worktree", "prune"]);
  const add = Bun.spawnSync(["git", "-C", REPO, "worktree", "add", "--detach", tree, rev]);
  if (add.exitCode !== 0) throw new Error(`git worktree add ${rev}: ${add.stderr}`);
  Bun.spawnSync(["ln", "-s", join(REPO, "node_modules"), join(tree, "node_modules")]);
  const b = Bun.spawnSync([process.execPath, "scripts/build.ts"], { cwd: tree, stdout: "ignore", stderr: "pipe" });
  if (b.exitCode !== 0) throw new Error(`build of ${rev}: ${b.stderr}`);
  return bin;
}

interface Engine {
  name: string;
  host: string;
  proc: Bun.Subprocess;
}

async function docker(e: Engine, ...args: string[]): Promise<string> {
  const p = Bun.spawn([DOCKER!, "-H", e.host, ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${e.name}: docker ${args.join(" ")}: ${err}`);
  return out.trim();
}

async function start(name: string, bin: string, dir: string, bridge: string): Promise<Engine> {
  mkdirSync(dir, { recursive: true });
  const socket = join(dir, "run", "bunker.sock");
  const proc = Bun.spawn([bin, "daemon", "--data-root", join(dir, "data"), "--exec-root", join(dir, "run"), "--config-file", "/dev/null", "--bridge", bridge, "--iptables=false"], { stdout: "ignore", stderr: "ignore" });
  await waitForPing(socket);
  return { name, host: `unix://${socket}`, proc };
}

/** Time one operation; `prepare` (not timed) makes what it needs. */
async function timed(prepare: () => Promise<void>, act: () => Promise<unknown>): Promise<number> {
  await prepare();
  const t0 = performance.now();
  await act();
  return performance.now() - t0;
}

/** The journal suite's markdown section. */
export async function journalSuite(): Promise<string> {
  const before = buildRevision(BEFORE);
  const work = `/var/tmp/bunker-bench-journal-${process.pid}`;
  mkdirSync(work, { recursive: true });
  Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=2g", "tmpfs", work]);
  const { busyboxLayer, dockerArchive } = await import("../test/helpers/images.ts");
  const big = new Uint8Array(8 << 20).map((_, i) => (i * 2654435761) >>> 24);
  const { filesLayer } = await import("../test/helpers/images.ts");
  const loadTar = join(work, "load.tar");
  writeFileSync(join(work, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer()] }));
  writeFileSync(loadTar, await dockerArchive({ tags: ["loadme:1"], layers: [await busyboxLayer(), await filesLayer({ "data/blob": big })] }));
  const engines = [await start("before", before, join(work, "before"), "bkjb0"), await start("after", BUNKER_BIN, join(work, "after"), "bkja0")];
  const samples: Record<string, Record<string, number[]>> = {};
  try {
    for (const e of engines) await docker(e, "load", "-q", "-i", join(work, "busybox.tar"));
    const ops: [string, (e: Engine, i: number) => Promise<number>][] = [
      ["run --rm (network none)", (e) => timed(async () => {}, () => docker(e, "run", "--rm", "--network", "none", "busybox", "true"))],
      [
        "commit (a 1 MB change, container paused)",
        (e, i) =>
          timed(
            async () => void (await docker(e, "run", "-d", "--name", `c${i}`, "--network", "none", "busybox", "sh", "-c", "dd if=/dev/zero of=/f bs=1k count=1024 2>/dev/null; sleep 60")),
            () => docker(e, "commit", `c${i}`, `img:${i}`),
          ),
      ],
      [
        "volume rm (2,000 files)",
        (e, i) =>
          timed(
            async () => void (await docker(e, "run", "--rm", "--network", "none", "-v", `v${i}:/d`, "busybox", "sh", "-c", "cd /d && seq 1 2000 | xargs touch")),
            () => docker(e, "volume", "rm", `v${i}`),
          ),
      ],
      ["load (2 layers, 9 MB)", (e, i) => timed(async () => void (i > 0 && (await docker(e, "rmi", "loadme:1"))), () => docker(e, "load", "-q", "-i", loadTar))],
    ];
    for (const [name, run] of ops) {
      for (let i = 0; i < N; i++) {
        for (const e of i % 2 ? [...engines].reverse() : engines) {
          const t = await run(e, i);
          ((samples[name] ??= {})[e.name] ??= []).push(t);
        }
      }
      for (const e of engines) {
        const ids = (await docker(e, "ps", "-aq")).split("\n").filter(Boolean);
        if (ids.length) await docker(e, "rm", "-f", ...ids);
      }
    }
  } finally {
    for (const e of engines) {
      e.proc.kill("SIGTERM");
      await e.proc.exited;
    }
    removeWorkDir(work);
    Bun.spawnSync(["umount", "-l", work]);
    rmSync(work, { recursive: true, force: true });
    for (const b of ["bkjb0", "bkja0"]) Bun.spawnSync(["ip", "link", "del", b]);
  }
  let md = `## The cost of crash safety (intent journal, start-up sweep)\n\nSuite \`bench/journal.ts\`: the build before the journal (\`${BEFORE}\`) and this one, in the same run, data roots on tmpfs, samples alternating between the two; median of ${N}. Target: under 5 % or under 1 ms more.\n\n| operation | before (median) | after (median) | after − before | ratio | target |\n|---|---|---|---|---|---|\n`;
  for (const [name, by] of Object.entries(samples)) {
    const b = summary(by.before!).median;
    const a = summary(by.after!).median;
    const met = a - b < 1 || a / b < 1.05;
    md += `| ${name} | ${ms(b)} ms | ${ms(a)} ms | ${ms(a - b)} ms | ${(a / b).toFixed(3)} | ${met ? "met" : "**missed**"} |\n`;
  }
  return md;
}

if (import.meta.main) console.log(await journalSuite());
