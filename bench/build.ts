/**
 * `docker build` (classic builder, `DOCKER_BUILDKIT=0`) of a ten-step Dockerfile, cold (no
 * cache: `--no-cache`) and then again with every step cached, Bunker versus Debian's dockerd in
 * the same run with the same docker CLI. Rounds alternate between the engines.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUNKER_BIN as BUNKER, benchWorkDir, DOCKER_CLI as DOCKER, DOCKERD_BIN as DOCKERD, ms, removeWorkDir, summary, waitForPing } from "./lib.ts";

const ROUNDS = Number(process.env.BUNKER_BENCH_BUILD_ROUNDS ?? 5);

const DOCKERFILE = [
  "FROM busybox",
  "ENV APP=/app MODE=bench",
  "WORKDIR /app",
  "COPY a.txt .",
  "COPY dir/ ./dir/",
  "RUN echo built > /app/built && ls -R /app > /app/listing",
  "RUN sh -c 'i=0; while [ $i -lt 100 ]; do echo $i; i=$((i+1)); done > /app/numbers'",
  "LABEL bench=build",
  "EXPOSE 8080",
  'CMD ["cat", "/app/built"]',
  "",
].join("\n");

async function timed(cmd: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const p = Bun.spawn(cmd, { stdout: "ignore", stderr: "pipe", env: { ...process.env, ...env } });
  const err = await new Response(p.stderr).text();
  if ((await p.exited) !== 0) throw new Error(`${cmd.join(" ")}: ${err}`);
  return performance.now() - t0;
}

/** Both engines' timings: `--no-cache` builds and fully cached ones, rounds alternated. */
interface BuildTimes {
  engines: { name: string; host: string }[];
  cold: Map<string, number[]>;
  warm: Map<string, number[]>;
}

/**
 * Start Bunker and (when installed) dockerd in a scratch directory, load busybox into both, and
 * time ROUNDS cold and cached builds of the ten-step Dockerfile with the docker CLI under `env`.
 */
export async function timeBuilds(name: string, env: Record<string, string>): Promise<BuildTimes | undefined> {
  if (!DOCKER) return undefined;
  const { work, archive } = await benchWorkDir(name);
  const procs: Bun.Subprocess[] = [];
  try {
    const ctx = join(work, "ctx");
    mkdirSync(join(ctx, "dir"), { recursive: true });
    writeFileSync(join(ctx, "Dockerfile"), DOCKERFILE);
    writeFileSync(join(ctx, "a.txt"), "a\n");
    for (let i = 0; i < 20; i++) writeFileSync(join(ctx, "dir", `f${i}`), `file ${i}\n`.repeat(100));
    const bsock = join(work, "bunker", "run", "bunker.sock");
    procs.push(Bun.spawn([BUNKER, "daemon", "--config-file", "/dev/null", "--data-root", join(work, "bunker", "data"), "--exec-root", join(work, "bunker", "run")], { stdout: "ignore", stderr: "ignore" }));
    await waitForPing(bsock);
    const engines = [{ name: "bunker", host: `unix://${bsock}` }];
    if (DOCKERD) {
      const ddir = join(work, "dockerd");
      const dsock = join(ddir, "docker.sock");
      procs.push(Bun.spawn([DOCKERD, "--data-root", join(ddir, "data"), "--exec-root", join(ddir, "run"), "-H", `unix://${dsock}`, "--pidfile", join(ddir, "docker.pid"), "--iptables=false", "--ip6tables=false", "--bridge=none"], { stdout: "ignore", stderr: "ignore" }));
      await waitForPing(dsock);
      engines.push({ name: "dockerd", host: `unix://${dsock}` });
    }
    for (const e of engines) await timed([DOCKER!, "-H", e.host, "load", "-i", archive], env);
    const cold = new Map(engines.map((e) => [e.name, [] as number[]]));
    const warm = new Map(engines.map((e) => [e.name, [] as number[]]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const e of engines) {
        const b = (...extra: string[]) => [DOCKER!, "-H", e.host, "build", "--network", "none", "-t", "bench:1", ...extra, ctx];
        cold.get(e.name)!.push(await timed(b("--no-cache"), env));
        warm.get(e.name)!.push(await timed(b(), env));
      }
    }
    return { engines, cold, warm };
  } finally {
    for (const p of procs) p.kill("SIGTERM");
    await Promise.all(procs.map((p) => p.exited));
    removeWorkDir(work);
  }
}

/** The markdown table of {@link timeBuilds}' results, with the ratios against dockerd. */
export function buildTable(t: BuildTimes, title: string, about: string, cachedTarget: number, coldFactor: number): string {
  const row = (e: { name: string }) => {
    const c = summary(t.cold.get(e.name)!);
    const w = summary(t.warm.get(e.name)!);
    return `| ${e.name} | ${ms(c.median)} | ${ms(w.median)} | ${ms(w.min)} |`;
  };
  const bc = summary(t.cold.get("bunker")!).median;
  const bw = summary(t.warm.get("bunker")!).median;
  const lines = [`## ${title}`, "", about, "", "| engine | cold median ms | full-cache median ms | full-cache min ms |", "|---|---|---|---|", ...t.engines.map(row), ""];
  if (t.cold.has("dockerd")) {
    const dc = summary(t.cold.get("dockerd")!).median;
    const dw = summary(t.warm.get("dockerd")!).median;
    lines.push(`Cold: dockerd ÷ bunker ${(dc / bc).toFixed(1)}× (target: ≥ ${coldFactor}× — ${dc / bc >= coldFactor ? "met" : "missed"}). Full cache: bunker ${ms(bw)} ms (target < ${cachedTarget} ms — ${bw < cachedTarget ? "met" : "missed"}), dockerd ${ms(dw)} ms.`, "");
  }
  return lines.join("\n");
}

/** The suite: returns the markdown section. */
export async function buildSuite(): Promise<string> {
  const t = await timeBuilds("bunker-bench-build", { DOCKER_BUILDKIT: "0" });
  if (!t) return "## Build\n\nSkipped: no docker CLI.\n";
  const about = `Suite \`bench/build.ts\`: \`DOCKER_BUILDKIT=0 docker build\` of a ten-step Dockerfile (ENV, WORKDIR, two COPY, two RUN, LABEL, EXPOSE, CMD on busybox), cold with \`--no-cache\` then fully cached, ${ROUNDS} rounds alternated, same docker CLI; times include the CLI (about 13 ms here).`;
  return buildTable(t, "Build (classic builder, ten steps)", about, 100, 1);
}

if (import.meta.main) console.log(await buildSuite());
