/**
 * `docker pull` of the Debian minbase image (bench/.cache/minbase, from bench/setup-minbase.ts)
 * from a registry on loopback (Debian's docker-registry, else Bunker's own server), Bunker
 * versus Debian's dockerd in the same run with the same docker CLI. The image has three layers
 * (the rootfs without /usr, /usr without /usr/share, /usr/share) so that downloads and
 * extraction can overlap. Each round starts with the image and its layers gone from both engines.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { digestOf } from "../src/core/content/digest.ts";
import { BUNKER_BIN as BUNKER, benchWorkDir, DOCKER_CLI as DOCKER, DOCKERD_BIN as DOCKERD, removeWorkDir, summary, waitForPing } from "./lib.ts";

const MINBASE = resolve(import.meta.dir, ".cache/minbase");
const REGISTRY = Bun.which("docker-registry");
const ROUNDS = Number(process.env.BUNKER_BENCH_PULL_ROUNDS ?? 3);
const PORT = 15180;

function tarOf(args: string[]): Buffer {
  const r = Bun.spawnSync(["tar", "--numeric-owner", "-C", MINBASE, "-c", ...args], { stdout: "pipe", stderr: "pipe", maxBuffer: 1 << 30 });
  if (r.exitCode !== 0) throw new Error(`tar: ${r.stderr}`);
  return r.stdout;
}

/** The minbase image as a docker-archive with three gzip layers. */
function minbaseArchive(): Buffer {
  const layers = [tarOf(["--exclude=./usr", "."]), tarOf(["--exclude=./usr/share", "./usr"]), tarOf(["./usr/share"])];
  const config = {
    architecture: process.arch === "arm64" ? "arm64" : "amd64",
    os: "linux",
    config: { Cmd: ["/bin/bash"] },
    rootfs: { type: "layers", diff_ids: layers.map((l) => digestOf(l)) },
  };
  const cfg = Buffer.from(JSON.stringify(config));
  const files: [string, Buffer][] = [[`${digestOf(cfg).slice(7)}.json`, cfg]];
  const paths = layers.map((l, i) => {
    const p = `layer${i}.tar.gz`;
    files.push([p, gzipSync(l, { level: 6 })]);
    return p;
  });
  files.push(["manifest.json", Buffer.from(JSON.stringify([{ Config: files[0]![0], RepoTags: [`127.0.0.1:${PORT}/bench/minbase:1`], Layers: paths }]))]);
  const dir = join("/var/tmp", `bunker-pull-archive-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  for (const [name, body] of files) writeFileSync(join(dir, name), body);
  const tar = Bun.spawnSync(["tar", "-C", dir, "-c", "."], { stdout: "pipe", maxBuffer: 1 << 30 }).stdout;
  Bun.spawnSync(["rm", "-rf", dir]);
  return tar;
}

async function timed(cmd: string[]): Promise<number> {
  const t0 = performance.now();
  const p = Bun.spawn(cmd, { stdout: "ignore", stderr: "pipe" });
  const err = await new Response(p.stderr).text();
  if ((await p.exited) !== 0) throw new Error(`${cmd.join(" ")}: ${err}`);
  return (performance.now() - t0) / 1000;
}

/** The suite: returns the markdown section. */
export async function pullSuite(): Promise<string> {
  if (!DOCKER || !existsSync(join(MINBASE, "etc"))) return "## Pull\n\nSkipped: needs the docker CLI and bench/.cache/minbase (bun bench/setup-minbase.ts).\n";
  const { work } = await benchWorkDir("bunker-bench-pull");
  const procs: Bun.Subprocess[] = [];
  try {
    // The registry.
    let registryName: string;
    if (REGISTRY) {
      writeFileSync(join(work, "registry.yml"), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(work, "registry")}\nhttp:\n  addr: 127.0.0.1:${PORT}\n`);
      procs.push(Bun.spawn([REGISTRY, "serve", join(work, "registry.yml")], { stdout: "ignore", stderr: "ignore" }));
      registryName = "docker-registry (distribution 2.8)";
    } else {
      procs.push(Bun.spawn([BUNKER, "registry", "serve", "--addr", `127.0.0.1:${PORT}`, "--root", join(work, "registry")], { stdout: "ignore", stderr: "ignore" }));
      registryName = "bunker registry serve";
    }
    for (let i = 0; i < 200 && !(await fetch(`http://127.0.0.1:${PORT}/v2/`).then(() => true, () => false)); i++) await Bun.sleep(50);
    // The engines.
    const bsock = join(work, "bunker", "run", "bunker.sock");
    procs.push(Bun.spawn([BUNKER, "daemon", "--config-file", "/dev/null", "--data-root", join(work, "bunker", "data"), "--exec-root", join(work, "bunker", "run")], { stdout: "ignore", stderr: "ignore" }));
    await waitForPing(bsock);
    const engines: { name: string; host: string }[] = [{ name: "bunker", host: `unix://${bsock}` }];
    if (DOCKERD) {
      const ddir = join(work, "dockerd");
      const dsock = join(ddir, "docker.sock");
      procs.push(Bun.spawn([DOCKERD, "--data-root", join(ddir, "data"), "--exec-root", join(ddir, "run"), "-H", `unix://${dsock}`, "--pidfile", join(ddir, "docker.pid"), "--iptables=false", "--ip6tables=false", "--bridge=none", "--insecure-registry", `127.0.0.1:${PORT}`], { stdout: "ignore", stderr: "ignore" }));
      await waitForPing(dsock);
      engines.push({ name: "dockerd", host: `unix://${dsock}` });
    }
    const ref = `127.0.0.1:${PORT}/bench/minbase:1`;
    writeFileSync(join(work, "minbase.tar"), minbaseArchive());
    const d = (e: { host: string }, ...args: string[]) => [DOCKER!, "-H", e.host, ...args];
    await timed(d(engines[0]!, "load", "-i", join(work, "minbase.tar")));
    await timed(d(engines[0]!, "push", ref));
    await timed(d(engines[0]!, "rmi", ref));
    const samples = new Map(engines.map((e) => [e.name, [] as number[]]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const e of engines) {
        samples.get(e.name)!.push(await timed(d(e, "pull", ref)));
        await timed(d(e, "rmi", ref));
      }
    }
    const b = summary(samples.get("bunker")!).median;
    const rows = engines.map((e) => {
      const s = summary(samples.get(e.name)!);
      return `| ${e.name} | ${s.median.toFixed(2)} | ${s.min.toFixed(2)} | ${e.name === "bunker" ? "" : `${(s.median / b).toFixed(2)}×`} |`;
    });
    const sizeMb = (Bun.file(join(work, "minbase.tar")).size / 1e6).toFixed(0);
    return [
      "## Pull (registry on loopback)",
      "",
      `Suite \`bench/pull.ts\`: \`docker pull\` of the Debian minbase image (3 gzip layers, ${sizeMb} MB compressed) from ${registryName} on 127.0.0.1, same docker CLI against each engine, ${ROUNDS} rounds alternated, the image removed after each pull.`,
      "",
      "| engine | median s | min s | ÷ bunker |",
      "|---|---|---|---|",
      ...rows,
      "",
    ].join("\n");
  } finally {
    for (const p of procs) p.kill("SIGTERM");
    await Promise.all(procs.map((p) => p.exited));
    removeWorkDir(work);
  }
}

if (import.meta.main) console.log(await pullSuite());
