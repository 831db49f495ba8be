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

/** The suite: returns the markdown section. */
export async function buildSuite(): Promise<string> {
  if (!DOCKER) return "## Build\n\nSkipped: no docker CLI.\n";
  const { work, archive } = await benchWorkDir("bunker-bench-build");
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
    const env = { DOCKER_BUILDKIT: "0" };
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
    const row = (e: { name: string }) => {
      const c = summary(cold.get(e.name)!);
      const w = summary(warm.get(e.name)!);
      return `| ${e.name} | ${ms(c.median)} | ${ms(w.median)} | ${ms(w.min)} |`;
    };
    const bc = summary(cold.get("bunker")!).median;
    const bw = summary(warm.get("bunker")!).median;
    const lines = [
      "## Build (classic builder, ten steps)",
      "",
      `Suite \`bench/build.ts\`: \`DOCKER_BUILDKIT=0 docker build\` of a ten-step Dockerfile (ENV, WORKDIR, two COPY, two RUN, LABEL, EXPOSE, CMD on busybox), cold with \`--no-cache\` then fully cached, ${ROUNDS} rounds alternated, same docker CLI; times include the CLI (about 13 ms here).`,
      "",
      "| engine | cold median ms | full-cache median ms | full-cache min ms |",
      "|---|---|---|---|",
      ...engines.map(row),
      "",
    ];
    if (DOCKERD) {
      const dc = summary(cold.get("dockerd")!).median;
      const dw = summary(warm.get("dockerd")!).median;
      lines.push(`Cold: dockerd ÷ bunker ${(dc / bc).toFixed(1)}× (target: bunker faster — ${bc < dc ? "met" : "missed"}). Full cache: bunker ${ms(bw)} ms (target < 100 ms — ${bw < 100 ? "met" : "missed"}), dockerd ${ms(dw)} ms.`, "");
    }
    return lines.join("\n");
  } finally {
    for (const p of procs) p.kill("SIGTERM");
    await Promise.all(procs.map((p) => p.exited));
    removeWorkDir(work);
  }
}

if (import.meta.main) console.log(await buildSuite());
