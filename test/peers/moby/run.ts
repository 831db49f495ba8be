/**
 * moby's own API integration tests (integration/{container,image,network,volume,system} of the Go
 * module github.com/docker/docker v28.5.2), run against Debian's dockerd and against Bunker, each
 * started here with its own data root and socket and the same images (busybox-static for
 * busybox:latest, busybox:glibc and debian:bookworm-slim; Bunker's built-in hello-world for the
 * hello-world tags), loaded before the suite so its frozen-image step pulls nothing.
 *
 *   bun test/peers/moby/run.ts [--only bunker|dockerd] [--package container] [--run REGEXP]
 *
 * The module carries vendor.mod (no go.mod): the source is copied to the cache with vendor.mod as
 * go.mod, and each package's test binary is built once (`go test -c`, dependencies from the Go
 * module proxy at the versions vendor.sum pins). Left out, and printed: tests that start a
 * daemon of their own or reach a registry (select.py). Ends with `N passed, N failed`: a failure is
 * a test that passes on dockerd and fails on Bunker without a line in differences.tsv; the run
 * also fails when Bunker passes less than 90% of what dockerd passes.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { cleanup, cleanupMounted, run, startDaemon } from "../../helpers/daemon.ts";
import { DOCKER_CLI, DOCKERD, startDockerd } from "../../helpers/dockerd.ts";
import { busyboxLayer, dockerArchive } from "../../helpers/images.ts";
import { compareWithDockerd, type Outcome, removeEverything } from "../compare.ts";

const MODULE = "github.com/docker/docker";
const VERSION = "v28.5.2+incompatible";
const PACKAGES = ["container", "image", "network", "volume", "system"];
const CACHE = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "bunker-peers");
const SRC = join(CACHE, `moby-src-${VERSION.replace("+incompatible", "")}`);
const BIN = join(CACHE, `moby-it-${VERSION.replace("+incompatible", "")}`);
const HERE = import.meta.dir;

// Everything this runner starts (the daemons too) goes through a proxy that refuses: a test that
// reaches for Docker Hub fails here, on this machine, and no traffic leaves it.
Object.assign(process.env, { HTTPS_PROXY: "http://127.0.0.1:9", HTTP_PROXY: "http://127.0.0.1:9", https_proxy: "http://127.0.0.1:9", http_proxy: "http://127.0.0.1:9", NO_PROXY: "localhost,127.0.0.1", no_proxy: "localhost,127.0.0.1" });
/** Downloads from the registries (Go proxy, PyPI) bypass that proxy: an empty value is no proxy. */
const DOWNLOAD = { HTTPS_PROXY: "", HTTP_PROXY: "", https_proxy: "", http_proxy: "" };

const args = process.argv.slice(2);
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const only = flag("--only");
const packages = flag("--package") ? [flag("--package")!] : PACKAGES;
const runExpr = flag("--run");

async function sh(cmd: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<string> {
  const p = Bun.spawn(cmd, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}:\n${out.slice(-3000)}\n${err.slice(-3000)}`);
  return out;
}

/** The module source with go.mod in place, and one test binary per package. */
async function prepare(): Promise<void> {
  const go = Bun.which("go") ?? "/usr/local/go/bin/go";
  if (!existsSync(join(SRC, "go.mod"))) {
    const dir = JSON.parse(await sh([go, "mod", "download", "-json", `${MODULE}@${VERSION}`], { cwd: tmpdir(), env: { ...DOWNLOAD, GOFLAGS: "-mod=mod", GO111MODULE: "on" } })).Dir as string;
    mkdirSync(SRC, { recursive: true });
    cpSync(dir, SRC, { recursive: true });
    await sh(["chmod", "-R", "u+w", SRC]);
    cleanup(join(SRC, "vendor")); // only modules.txt is in the module zip
    cpSync(join(SRC, "vendor.mod"), join(SRC, "go.mod"));
    cpSync(join(SRC, "vendor.sum"), join(SRC, "go.sum"));
  }
  mkdirSync(BIN, { recursive: true });
  for (const p of packages) {
    if (existsSync(join(BIN, `${p}.test`))) continue;
    console.log(`building integration/${p} (go test -c)…`);
    await sh([go, "test", "-c", "-o", join(BIN, `${p}.test`), `./integration/${p}`], { cwd: SRC, env: { ...DOWNLOAD, GOFLAGS: "-mod=mod" } });
  }
}


/** Top-level and subtest outcomes from `-test.v` output, keyed `pkg/Test/sub`. */
function parse(pkg: string, log: string): Map<string, Outcome> {
  const out = new Map<string, Outcome>();
  for (const m of log.matchAll(/^\s*--- (PASS|FAIL|SKIP): (\S+)/gm)) out.set(`${pkg}/${m[2]}`, m[1] === "PASS" ? "passed" : m[1] === "FAIL" ? "failed" : "skipped");
  return out;
}

async function runSuite(name: string, host: string, work: string): Promise<Map<string, Outcome>> {
  const all = new Map<string, Outcome>();
  const t0 = performance.now();
  for (const pkg of packages) {
    const left = (await sh(["python3", join(HERE, "select.py"), join(SRC, "integration", pkg)])).split("\n").filter(Boolean);
    for (const l of left) console.log(`left out: ${pkg}/${l.replace("\t", ": ")}`);
    const skip = left.map((l) => l.split("\t")[0]!);
    const cmd = [join(BIN, `${pkg}.test`), "-test.v", "-test.timeout", "20m", ...(skip.length ? ["-test.skip", `^(${skip.join("|")})$`] : []), ...(runExpr ? ["-test.run", runExpr] : [])];
    const logFile = join(work, `${name}-${pkg}.log`);
    cleanup(logFile); // Bun.file as stdout writes over an old file without truncating it
    cleanup(`${logFile}.stderr`);
    const p = Bun.spawn(cmd, {
      cwd: join(SRC, "integration", pkg),
      // A remote daemon: the suite does not look for dockerd's files. A proxy that refuses: no
      // pull can leave this machine whatever a test does.
      // API 1.41 for both daemons: Debian's dockerd (20.10) speaks no newer one and the suite's
      // client does not negotiate; tests that need a newer API skip themselves on both.
      env: { ...process.env, DOCKER_HOST: host, DOCKER_API_VERSION: process.env.MOBY_API_VERSION ?? "1.41", DOCKER_REMOTE_DAEMON: "1", HTTPS_PROXY: "http://127.0.0.1:9", HTTP_PROXY: "http://127.0.0.1:9", NO_PROXY: "localhost,127.0.0.1", HOME: join(work, `${name}-home`) },
      stdout: Bun.file(logFile),
      stderr: "pipe",
    });
    const err = await new Response(p.stderr).text();
    await p.exited;
    if (err.trim()) writeFileSync(`${logFile}.stderr`, err);
    const res = parse(pkg, readFileSync(logFile, "utf8"));
    for (const [k, v] of res) all.set(k, v);
    await removeEverything(host);
  }
  const count = (o: Outcome) => [...all.values()].filter((v) => v === o).length;
  console.log(`${name}: ${count("passed")} passed, ${count("failed")} failed, ${count("skipped")} skipped (${((performance.now() - t0) / 1000).toFixed(0)} s; logs in ${work})`);
  return all;
}

/** The frozen images, made here: busybox-static under the suite's names, and hello-world. */
async function images(work: string, helloFrom: string): Promise<{ busybox: string; hello: string }> {
  const busybox = join(work, "busybox.tar");
  writeFileSync(busybox, await dockerArchive({ tags: ["busybox:latest", "busybox:glibc", "debian:bookworm-slim"], layers: [await busyboxLayer({ full: true })], cmd: ["sh"] }));
  const docker = (...a: string[]) => run([DOCKER_CLI!, ...a], { DOCKER_HOST: helloFrom });
  await docker("pull", "hello-world"); // Bunker's built-in program, no network
  for (const t of ["frozen", "amd64", "arm64"]) await docker("tag", "hello-world:latest", `hello-world:${t}`);
  const hello = join(work, "hello.tar");
  const saved = await docker("save", "-o", hello, "hello-world:latest", "hello-world:frozen", "hello-world:amd64", "hello-world:arm64");
  if (saved.code !== 0) throw new Error(`saving hello-world: ${saved.stderr}`);
  return { busybox, hello };
}

await prepare();
if (args.includes("--prepare")) process.exit(0);
const work = join(tmpdir(), "bunker-peer-moby");
if (!only) cleanupMounted(work);
mkdirSync(work, { recursive: true });

const bunker = await startDaemon({ dir: join(work, "bunker") });
let onBunker: Map<string, Outcome> | undefined;
let onDockerd: Map<string, Outcome> | undefined;
const saved = join(work, "dockerd-results.json");
try {
  const tars = await images(work, bunker.host);
  const load = async (host: string) => {
    for (const t of [tars.busybox, tars.hello]) {
      const r = await run([DOCKER_CLI!, "load", "-i", t], { DOCKER_HOST: host });
      if (r.code !== 0) throw new Error(`docker load: ${r.stderr}`);
    }
  };
  if (only !== "bunker") {
    if (!DOCKERD) throw new Error("dockerd is not installed (apt-get install docker.io)");
    cleanup(join(work, "dockerd"));
    const d = await startDockerd(join(work, "dockerd"), { args: ["--iptables=false", "--ip6tables=false", "--bip", "10.98.0.1/24", "--default-address-pool", "base=10.97.0.0/16,size=24"] });
    try {
      await load(d.host);
      onDockerd = await runSuite("dockerd", d.host, work);
      writeFileSync(saved, JSON.stringify([...onDockerd]));
    } finally {
      await removeEverything(d.host);
      await d.stop();
      Bun.spawnSync(["ip", "link", "del", "docker0"]);
    }
  } else if (existsSync(saved)) onDockerd = new Map(JSON.parse(readFileSync(saved, "utf8")));
  if (only !== "dockerd") {
    await load(bunker.host);
    onBunker = await runSuite("bunker", bunker.host, work);
  }
} finally {
  await removeEverything(bunker.host);
  await bunker.stop();
}

let passed = 0;
let failed = 0;
if (onDockerd && onBunker) {
  const r = compareWithDockerd(onDockerd, onBunker, join(HERE, "differences.tsv"));
  passed = r.passed;
  failed = r.failed;
  const share = r.dockerdPasses ? passed / r.dockerdPasses : 1;
  console.log(`bunker passes ${passed} of the ${r.dockerdPasses} tests dockerd passes (${(share * 100).toFixed(1)}%; at least 90% required)`);
  if (share < 0.9 && failed === 0) failed = 1;
}
console.log(`moby-integration: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
