/**
 * The Docker SDK for Python's own integration suite, run against Debian's dockerd and against
 * Bunker on this machine, each started here with its own data root and socket, with the same
 * images (made from busybox-static: no pull). Every test that passes on dockerd must pass on
 * Bunker, or be listed in `differences.tsv` with the reason Bunker differs on purpose.
 *
 *   bun test/peers/docker-py/run.ts [--only bunker|dockerd] [-k EXPR]
 *
 * The SDK is 7.2.0 (pip, pinned). Its sdist carries no tests/, and neither does 7.1.0's; the
 * newest sdist with the integration suite is 6.1.3's, so that suite runs against SDK 7.2.0.
 * Downloads are cached under ~/.cache/bunker-peers. Ends with `N passed, N failed`, where a
 * failure is a test that passes on dockerd and fails on Bunker without being listed.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { cleanup, cleanupMounted, run, startDaemon } from "../../helpers/daemon.ts";
import { DOCKER_CLI, DOCKERD, startDockerd } from "../../helpers/dockerd.ts";
import { busyboxLayer, dockerArchive } from "../../helpers/images.ts";
import { compareWithDockerd, removeEverything } from "../compare.ts";

const SDK = "7.2.0";
const SUITE_FROM = "6.1.3";
const PINS = [`docker==${SDK}`, "pytest==8.3.4", "pytest-timeout==2.3.1", "paramiko==3.5.0", "websocket-client==1.8.0"];
const CACHE = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "bunker-peers");
const HERE = import.meta.dir;

// Everything this runner starts (the daemons too) goes through a proxy that refuses: a test that
// reaches for Docker Hub fails here, on this machine, and no traffic leaves it.
Object.assign(process.env, { HTTPS_PROXY: "http://127.0.0.1:9", HTTP_PROXY: "http://127.0.0.1:9", https_proxy: "http://127.0.0.1:9", http_proxy: "http://127.0.0.1:9", NO_PROXY: "localhost,127.0.0.1", no_proxy: "localhost,127.0.0.1" });
/** Downloads from the registries (Go proxy, PyPI) bypass that proxy: an empty value is no proxy. */
const DOWNLOAD = { HTTPS_PROXY: "", HTTP_PROXY: "", https_proxy: "", http_proxy: "" };

const args = process.argv.slice(2);
const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : undefined;
const kExpr = args.includes("-k") ? args[args.indexOf("-k") + 1] : undefined;

async function sh(cmd: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<string> {
  const p = Bun.spawn(cmd, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}:\n${out}\n${err}`);
  return out;
}

/** The virtualenv with the pinned SDK and pytest, and the suite's tests/ directory. */
async function prepare(): Promise<{ python: string; tests: string }> {
  mkdirSync(CACHE, { recursive: true });
  const venv = join(CACHE, `venv-docker-py-${SDK}`);
  const python = join(venv, "bin/python");
  if (!existsSync(join(venv, ".complete"))) {
    await sh(["python3", "-m", "venv", venv]);
    await sh([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", ...PINS], { env: DOWNLOAD });
    writeFileSync(join(venv, ".complete"), PINS.join("\n"));
  }
  // Only the sdist's tests/, away from its docker/ package, so that the suite imports SDK 7.2.0.
  const suite = join(CACHE, `docker-py-suite-${SUITE_FROM}`);
  if (!existsSync(join(suite, "tests/integration"))) {
    await sh([python, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-binary", ":all:", "--no-deps", "-d", CACHE, `docker==${SUITE_FROM}`], { env: DOWNLOAD });
    mkdirSync(suite, { recursive: true });
    await sh(["tar", "-xzf", join(CACHE, `docker-${SUITE_FROM}.tar.gz`), "-C", suite, "--strip-components=1", `docker-${SUITE_FROM}/tests`]);
  }
  return { python, tests: join(suite, "tests") };
}

/** Outcome per test id from a junit XML file. */
function outcomes(xmlFile: string): Map<string, "passed" | "failed" | "skipped"> {
  const out = new Map<string, "passed" | "failed" | "skipped">();
  const xml = readFileSync(xmlFile, "utf8");
  const reasons: string[] = [];
  for (const m of xml.matchAll(/<testcase classname="([^"]*)" name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const id = `${m[1]}::${m[2]}`;
    const body = m[4] ?? "";
    const failed = /<(failure|error)\b/.test(body);
    out.set(id, failed ? "failed" : /<skipped\b/.test(body) ? "skipped" : "passed");
    if (failed) reasons.push(`${id}\t${/message="([^"]*)"/.exec(body)?.[1]?.slice(0, 300) ?? ""}`);
  }
  writeFileSync(xmlFile.replace(/\.xml$/, "-failures.txt"), reasons.join("\n") + "\n");
  return out;
}

async function runSuite(name: string, host: string, python: string, tests: string, workDir: string): Promise<Map<string, "passed" | "failed" | "skipped">> {
  const deselected = (await sh([python, join(HERE, "select.py"), join(tests, "integration")])).split("\n").filter(Boolean).map((l) => l.split("\t")[0]!);
  const xml = join(workDir, `${name}.xml`);
  const cmd = [python, "-m", "pytest", "integration", "-p", "no:cacheprovider", "-q", "-rN", "--timeout", "120", `--junitxml=${xml}`, "-o", "junit_family=xunit1"];
  for (const d of deselected) cmd.push(d.includes("::") ? `--deselect=${d}` : `--ignore=${d}`);
  if (kExpr) cmd.push("-k", kExpr);
  const t0 = performance.now();
  const home = join(workDir, `${name}-home`);
  mkdirSync(join(home, ".docker"), { recursive: true });
  // docker-py keeps contexts beside its config file; with none, in ./contexts of the working
  // directory (the cached suite): a context one run left there broke the next run's context tests.
  writeFileSync(join(home, ".docker", "config.json"), "{}\n");
  rmSync(join(tests, "contexts"), { recursive: true, force: true });
  const p = Bun.spawn(cmd, {
    cwd: tests,
    // A proxy that refuses: nothing the suite or the daemon does can reach past this machine.
    // Its own HOME and DOCKER_CONFIG: the context tests write contexts there, and a context left
    // behind would redirect later clients.
    env: { ...process.env, HOME: home, DOCKER_CONFIG: join(home, ".docker"), DOCKER_HOST: host, HTTPS_PROXY: "http://127.0.0.1:9", HTTP_PROXY: "http://127.0.0.1:9", NO_PROXY: "localhost,127.0.0.1", PYTHONDONTWRITEBYTECODE: "1" },
    stdout: Bun.file(join(workDir, `${name}.log`)),
    stderr: "inherit",
  });
  await p.exited;
  if (!existsSync(xml)) throw new Error(`pytest wrote no report; see ${join(workDir, `${name}.log`)}:\n${readFileSync(join(workDir, `${name}.log`), "utf8").slice(-3000)}`);
  const res = outcomes(xml);
  const count = (o: string) => [...res.values()].filter((v) => v === o).length;
  console.log(`${name}: ${count("passed")} passed, ${count("failed")} failed, ${count("skipped")} skipped of ${res.size} (${((performance.now() - t0) / 1000).toFixed(0)} s; log ${join(workDir, `${name}.log`)})`);
  return res;
}

/** The suite's images: busybox-static as alpine:3.10 (the suite's TEST_IMG), alpine and busybox. */
async function images(dir: string): Promise<string> {
  const file = join(dir, "images.tar");
  writeFileSync(file, await dockerArchive({ tags: ["alpine:3.10", "alpine:latest", "busybox:latest"], layers: [await busyboxLayer({ full: true })], cmd: ["/bin/sh"] }));
  return file;
}

const { python, tests } = await prepare();
if (process.argv.includes("--prepare")) process.exit(0);
// Kept after the run (reports, logs, failure reasons); made afresh by the next one.
const work = join(tmpdir(), "bunker-peer-docker-py");
// --only bunker keeps the last dockerd report to compare with (dockerd's results change only with dockerd).
if (!only) cleanupMounted(work);
mkdirSync(work, { recursive: true });
for (const d of ["dockerd", "bunker", "images.tar"]) if (only === d || d === "images.tar") cleanup(join(work, d));
const tar = await images(work);
const load = async (host: string) => {
  const r = await run([DOCKER_CLI!, "load", "-i", tar], { DOCKER_HOST: host });
  if (r.code !== 0) throw new Error(`docker load: ${r.stderr}`);
};

let onDockerd: Map<string, string> | undefined = only === "bunker" && existsSync(join(work, "dockerd.xml")) ? outcomes(join(work, "dockerd.xml")) : undefined;
let onBunker: Map<string, string> | undefined;
if (only !== "bunker") {
  if (!DOCKERD) throw new Error("dockerd is not installed (apt-get install docker.io)");
  const d = await startDockerd(join(work, "dockerd"), { args: ["--iptables=false", "--ip6tables=false", "--bip", "10.98.0.1/24"] });
  try {
    await load(d.host);
    onDockerd = await runSuite("dockerd", d.host, python, tests, work);
  } finally {
    await removeEverything(d.host);
    await d.stop();
    Bun.spawnSync(["ip", "link", "del", "docker0"]);
  }
}
if (only !== "dockerd") {
  const b = await startDaemon({ dir: join(work, "bunker") });
  try {
    await load(b.host);
    onBunker = await runSuite("bunker", b.host, python, tests, work);
  } finally {
    // Containers outlive the daemon (live restore): remove what the suite left before stopping it.
    await removeEverything(b.host);
    await b.stop();
  }
}

let failed = 0;
let passed = 0;
if (onDockerd && onBunker) ({ passed, failed } = compareWithDockerd(onDockerd, onBunker, join(HERE, "differences.tsv")));
console.log(`reports in ${work}`);
console.log(`docker-py: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
