/**
 * The kill -9 suite (issue 15): for each mutating operation, the daemon is killed with SIGKILL at
 * a seeded random instant while the operation runs, then started again on the same data root,
 * and the store must hold: the daemon starts, every listed object is usable, the operation's
 * object is in its old or its new state, nothing on disk is owned by no record, and a retry of
 * the operation succeeds. Run on overlay and vfs; the data root is on a tmpfs (fast, and a
 * real filesystem for both drivers).
 *
 *   bun test/crash/kill9.ts [--cuts N] [--drivers overlay,vfs] [--ops commit,start,…] [--seed S] [--bin EXECUTABLE]
 *
 * Prints one line per operation (cuts, cuts that held) and ends with `N passed, N failed`
 * (one per cut). Traffic: only the daemon's Unix socket and a registry on loopback.
 */
import { spawn } from "bun";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUNKER, cleanupMounted, ensureBuilt, tempDir } from "../helpers/daemon.ts";
import { DOCKER } from "../helpers/env.ts";
import { busyboxLayer, dockerArchive, filesLayer } from "../helpers/images.ts";
import { type Api, apiOn, storeProblems } from "./store-invariants.ts";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const CUTS = Number(arg("cuts", process.env.BUNKER_CRASH_CUTS ?? "20"));
const DRIVERS = arg("drivers", "overlay,vfs").split(",");
const SEED = Number(arg("seed", "15"));
const ONLY = arg("ops", "").split(",").filter(Boolean);
/** The engine under test: this build, or another executable (`--bin`, e.g. an older build for a before/after). */
const BIN = arg("bin", BUNKER);

/** A small seeded generator (mulberry32), so a failing cut can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One daemon on the suite's data root, restartable. */
class Engine {
  proc: ReturnType<typeof spawn> | undefined;
  api: Api;
  readonly socket: string;
  readonly dataRoot: string;
  private starts = 0;
  constructor(
    readonly dir: string,
    readonly driver: string,
  ) {
    this.dataRoot = join(dir, "data");
    this.socket = join(dir, "run", "bunker.sock");
    this.api = apiOn(this.socket);
  }
  get host() {
    return `unix://${this.socket}`;
  }
  /** Start and wait for /_ping (15 s); the reason when it does not come up. */
  async start(): Promise<string | undefined> {
    const log = join(this.dir, `daemon-${++this.starts}.log`);
    this.proc = spawn([BIN, "daemon", "--data-root", this.dataRoot, "--exec-root", join(this.dir, "run"), "--config-file", "/dev/null", "--storage-driver", this.driver, "--bridge", `bkc-${this.driver}`.slice(0, 15), "--bip", `10.231.${this.driver === "vfs" ? 2 : 1}.1/24`, "--plugin-config", `network.v1.bridge={"table":"bkc${this.driver}"}`], {
      stdin: "ignore",
      stdout: Bun.file(log),
      stderr: Bun.file(log),
    });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) return `daemon exited with ${this.proc.exitCode}: ${(await Bun.file(log).text()).trim().split("\n").slice(-3).join(" | ")}`;
      try {
        if ((await fetch("http://localhost/_ping", { unix: this.socket, signal: AbortSignal.timeout(1000) } as RequestInit)).ok) return undefined;
      } catch {
        /* not yet */
      }
      await Bun.sleep(10);
    }
    this.proc.kill("SIGKILL");
    return `daemon did not answer /_ping within 15 s: ${(await Bun.file(log).text()).trim().split("\n").slice(-3).join(" | ")}`;
  }
  async kill9(): Promise<void> {
    this.proc?.kill("SIGKILL");
    await this.proc?.exited;
  }
  async stop(): Promise<void> {
    this.proc?.kill("SIGTERM");
    await this.proc?.exited;
  }
  /** docker … with a 30 s limit: a client left hanging by a daemon that cannot start again is a failure, not a stuck suite. */
  async docker(...args: string[]) {
    const p = spawn([DOCKER!, ...args], { env: { ...process.env, DOCKER_HOST: this.host, DOCKER_BUILDKIT: "0" }, stdin: "ignore", stdout: "pipe", stderr: "pipe", timeout: 30_000 });
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { stdout, stderr: p.signalCode ? `${stderr}(no answer within 30 s)` : stderr, code };
  }
  /** docker …, which must succeed. */
  async must(...args: string[]): Promise<string> {
    const r = await this.docker(...args);
    if (r.code !== 0) throw new Error(`docker ${args.join(" ")}: ${r.stderr.trim()}`);
    return r.stdout.trim();
  }
  async exists(kind: "container" | "image" | "volume" | "network", name: string): Promise<boolean> {
    const path = { container: `/containers/${name}/json`, image: `/images/${name}/json`, volume: `/volumes/${name}`, network: `/networks/${name}` }[kind];
    return (await this.api("GET", path)).status === 200;
  }
  /** Whether container `name` runs, by its inspect (false when it does not exist). */
  async isRunning(name: string): Promise<boolean> {
    const r = await this.api("GET", `/containers/${name}/json`);
    return r.status === 200 && r.json?.State?.Running === true;
  }
}

/** One operation under test. */
interface Op {
  name: string;
  /** Make the state the operation starts from. */
  setup(e: Engine): Promise<void>;
  /** The operation itself, through the API (the request is sent at once; no client start-up). */
  act(e: Engine): Promise<unknown>;
  /** After the restart: the operation's own object in its old or its new state (problems). */
  check(e: Engine): Promise<string[]>;
  /** The retry must succeed; then the state is set back for the next cut. */
  retry(e: Engine): Promise<string[]>;
}

const ok = (what: string, r: { status: number; text: string }, good: number[]) => (good.includes(r.status) ? [] : [`${what}: ${r.status} ${r.text.trim().slice(0, 200)}`]);
const runs = async (e: Engine, image: string, ...cmd: string[]) => {
  const r = await e.docker("run", "--rm", "--pull", "never", "--network", "none", image, ...cmd);
  return r.code === 0 ? [] : [`docker run ${image} ${cmd.join(" ")}: ${r.code} ${r.stderr.trim()}`];
};
const execs = async (e: Engine, name: string) => {
  const r = await e.docker("exec", name, "true");
  return r.code === 0 ? [] : [`docker exec ${name} true: ${r.stderr.trim()}`];
};
/** A running container named `name` (made when missing or not running). */
async function running(e: Engine, name: string, ...cmd: string[]): Promise<void> {
  if (await e.isRunning(name)) return;
  if (await e.exists("container", name)) await e.api("DELETE", `/containers/${name}?force=1`);
  await e.must("run", "-d", "--name", name, "busybox", ...(cmd.length ? cmd : ["sleep", "100000"]));
}

function ops(fixtures: { ctx: string; ctxTar: Uint8Array; loadTar: Uint8Array; importTar: Uint8Array; registry: string }): Op[] {
  const files = (dir: string) => (existsSync(dir) ? readdirSync(dir).length : -1);
  return [
    {
      name: "commit",
      setup: (e) => running(e, "cm", "sh", "-c", "dd if=/dev/urandom of=/big bs=1M count=16 2>/dev/null; touch /done; sleep 100000"),
      act: (e) => e.api("POST", "/commit?container=cm&repo=cut&tag=c"),
      check: async (e) => [...(await execs(e, "cm")), ...((await e.exists("image", "cut:c")) ? await runs(e, "cut:c", "test", "-s", "/big") : [])],
      retry: async (e) => {
        const p = ok("retried commit", await e.api("POST", "/commit?container=cm&repo=cut&tag=c"), [201]);
        await e.docker("rmi", "cut:c");
        return p;
      },
    },
    {
      name: "start",
      setup: async (e) => {
        await e.docker("rm", "-f", "st");
        await e.must("create", "--name", "st", "busybox", "sleep", "100000");
      },
      act: (e) => e.api("POST", "/containers/st/start"),
      check: async (e) => {
        if (!(await e.exists("container", "st"))) return ["container st is gone"];
        return (await e.isRunning("st")) ? execs(e, "st") : [];
      },
      retry: async (e) => [...ok("retried start", await e.api("POST", "/containers/st/start"), [204, 304]), ...(await execs(e, "st")), ...ok("rm -f after the retry", await e.api("DELETE", "/containers/st?force=1"), [204])],
    },
    {
      name: "volume rm",
      setup: async (e) => {
        if (await e.exists("volume", "vr")) await e.docker("volume", "rm", "vr");
        await e.must("run", "--rm", "--network", "none", "-v", "vr:/d", "busybox", "sh", "-c", "cd /d && seq 1 3000 | xargs touch");
      },
      act: (e) => e.api("DELETE", "/volumes/vr"),
      check: async (e) => {
        if (!(await e.exists("volume", "vr"))) return [];
        const n = files(await e.must("volume", "inspect", "-f", "{{.Mountpoint}}", "vr"));
        return n === 3000 ? [] : [`volume vr is listed with ${n} of its 3000 files`];
      },
      retry: async (e) => ok("retried volume rm", await e.api("DELETE", "/volumes/vr"), [204, 404]),
    },
    {
      name: "rm -f",
      setup: (e) => running(e, "rf"),
      act: (e) => e.api("DELETE", "/containers/rf?force=1"),
      check: async (e) => ((await e.isRunning("rf")) ? execs(e, "rf") : []),
      retry: async (e) => ok("retried rm -f", await e.api("DELETE", "/containers/rf?force=1"), [204, 404]),
    },
    {
      name: "build",
      setup: async () => {},
      act: (e) => e.api("POST", "/build?t=cut:b&rm=1&nocache=1&networkmode=none", fixtures.ctxTar),
      check: async (e) => {
        const extra = (await e.must("ps", "-a", "--format", "{{.Names}}")).split("\n").filter((n) => n && !["cm", "rf", "sp", "st"].includes(n));
        return [...extra.map((n) => `build container ${n} left in ps -a`), ...((await e.exists("image", "cut:b")) ? await runs(e, "cut:b", "sh", "-c", "test -s /a && grep -q hi /b && test -f /f") : [])];
      },
      retry: async (e) => {
        const r = await e.docker("build", "-q", "--no-cache", "--network", "none", "-t", "cut:b", fixtures.ctx);
        const p = r.code === 0 ? await runs(e, "cut:b", "test", "-f", "/f") : [`retried build: ${r.stderr.trim()}`];
        await e.docker("rmi", "cut:b");
        return p;
      },
    },
    {
      name: "load",
      setup: async () => {},
      act: (e) => e.api("POST", "/images/load?quiet=1", fixtures.loadTar),
      check: async (e) => ((await e.exists("image", "loadme:1")) ? runs(e, "loadme:1", "test", "-s", "/data/blob") : []),
      retry: async (e) => {
        const p = [...ok("retried load", await e.api("POST", "/images/load?quiet=1", fixtures.loadTar), [200]), ...(await runs(e, "loadme:1", "test", "-s", "/data/blob"))];
        await e.docker("rmi", "loadme:1");
        return p;
      },
    },
    {
      name: "pull",
      setup: async () => {},
      act: (e) => e.api("POST", `/images/create?fromImage=${fixtures.registry}/pullme&tag=1`),
      check: async (e) => ((await e.exists("image", `${fixtures.registry}/pullme:1`)) ? runs(e, `${fixtures.registry}/pullme:1`, "test", "-s", "/data/blob") : []),
      retry: async (e) => {
        const r = await e.docker("pull", "-q", `${fixtures.registry}/pullme:1`);
        const p = r.code === 0 ? await runs(e, `${fixtures.registry}/pullme:1`, "test", "-s", "/data/blob") : [`retried pull: ${r.stderr.trim()}`];
        await e.docker("rmi", `${fixtures.registry}/pullme:1`);
        return p;
      },
    },
    {
      name: "import",
      setup: async () => {},
      act: (e) => e.api("POST", "/images/create?fromSrc=-&repo=imp&tag=1", fixtures.importTar),
      check: async (e) => ((await e.exists("image", "imp:1")) ? runs(e, "imp:1", "/bin/busybox", "true") : []),
      retry: async (e) => {
        const p = [...ok("retried import", await e.api("POST", "/images/create?fromSrc=-&repo=imp&tag=1", fixtures.importTar), [200]), ...(await runs(e, "imp:1", "/bin/busybox", "true"))];
        await e.docker("rmi", "imp:1");
        return p;
      },
    },
    {
      name: "create",
      setup: async (e) => void (await e.docker("rm", "-f", "cr")),
      act: (e) => e.api("POST", "/containers/create?name=cr", { Image: "busybox", Cmd: ["true"] }),
      check: async (e) => {
        if (!(await e.exists("container", "cr"))) return [];
        const started = ok("start of a created container", await e.api("POST", "/containers/cr/start"), [204]);
        return [...started, ...ok("its wait", await e.api("POST", "/containers/cr/wait"), [200])];
      },
      retry: async (e) => {
        await e.api("DELETE", "/containers/cr?force=1");
        return [...ok("retried create", await e.api("POST", "/containers/create?name=cr", { Image: "busybox", Cmd: ["true"] }), [201]), ...ok("rm", await e.api("DELETE", "/containers/cr?force=1"), [204])];
      },
    },
    {
      name: "stop",
      setup: (e) => running(e, "sp"),
      act: (e) => e.api("POST", "/containers/sp/stop?t=1"),
      check: async (e) => ((await e.isRunning("sp")) ? execs(e, "sp") : []),
      retry: async (e) => ok("retried stop", await e.api("POST", "/containers/sp/stop?t=1"), [204, 304]),
    },
    {
      name: "network create",
      setup: async (e) => void (await e.docker("network", "rm", "cutnet")),
      act: (e) => e.api("POST", "/networks/create", { Name: "cutnet" }),
      check: async (e) => ((await e.exists("network", "cutnet")) ? ok("network rm", await e.api("DELETE", "/networks/cutnet"), [204]) : []),
      retry: async (e) => ok("retried network create", await e.api("POST", "/networks/create", { Name: "cutnet" }), [201]),
    },
    {
      name: "network rm",
      setup: async (e) => {
        if (!(await e.exists("network", "cutnet2"))) await e.must("network", "create", "cutnet2");
      },
      act: (e) => e.api("DELETE", "/networks/cutnet2"),
      check: async (e) => ((await e.exists("network", "cutnet2")) ? (await e.docker("run", "--rm", "--network", "cutnet2", "busybox", "true")).code === 0 ? [] : ["network cutnet2 is listed but a container cannot join it"] : []),
      retry: async (e) => ok("retried network rm", await e.api("DELETE", "/networks/cutnet2"), [204, 404]),
    },
    {
      name: "volume create",
      setup: async (e) => void (await e.docker("volume", "rm", "vc")),
      act: (e) => e.api("POST", "/volumes/create", { Name: "vc" }),
      check: async (e) => ((await e.exists("volume", "vc")) ? runs(e, "-v", "vc:/v", "busybox", "touch", "/v/x") : []),
      retry: async (e) => ok("retried volume create", await e.api("POST", "/volumes/create", { Name: "vc" }), [201]),
    },
    {
      name: "tag/rmi",
      setup: async (e) => {
        if (!(await e.exists("image", "rmi:1"))) await e.api("POST", "/images/create?fromSrc=-&repo=rmi&tag=1", fixtures.importTar);
        await e.must("tag", "rmi:1", "rmi:2");
      },
      act: async (e) => {
        await e.api("POST", "/images/rmi:1/tag?repo=rmi&tag=3");
        return e.api("DELETE", "/images/rmi:2");
      },
      check: async (e) => ((await e.exists("image", "rmi:2")) ? runs(e, "rmi:2", "/bin/busybox", "true") : []),
      retry: async (e) => [...ok("retried rmi", await e.api("DELETE", "/images/rmi:2"), [200, 404]), ...ok("rmi:3", await e.api("DELETE", "/images/rmi:3"), [200, 404])],
    },
    {
      name: "prune",
      setup: async (e) => {
        await e.docker("run", "--network", "none", "--name", "pr1", "busybox", "true");
        await e.docker("volume", "create", "pv1");
        if (!(await e.exists("image", "prn:1"))) await e.api("POST", "/images/create?fromSrc=-&repo=prn&tag=1", fixtures.importTar);
      },
      act: async (e) => {
        await e.api("POST", "/containers/prune");
        await e.api("POST", "/volumes/prune?filters=%7B%22all%22%3A%5B%22true%22%5D%7D");
        return e.api("POST", "/images/prune?filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D");
      },
      check: async () => [],
      retry: async (e) => [...ok("retried container prune", await e.api("POST", "/containers/prune"), [200]), ...ok("retried image prune", await e.api("POST", "/images/prune?filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D"), [200])],
    },
  ];
}

async function main(): Promise<void> {
  ensureBuilt();
  const top = tempDir("bunker-kill9-");
  Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=3g", "tmpfs", top]);
  const layer = await busyboxLayer({ full: true });
  const random = new Uint8Array(6 << 20);
  for (let i = 0; i < random.length; i += 65536) crypto.getRandomValues(random.subarray(i, i + 65536));
  const blobLayer = await filesLayer({ "data/blob": random });
  const ctx = join(top, "ctx");
  mkdirSync(ctx);
  writeFileSync(join(ctx, "Dockerfile"), "FROM busybox\nRUN dd if=/dev/zero of=/a bs=1M count=8 2>/dev/null\nRUN echo hi > /b\nCOPY f /f\nENV X=1\n");
  writeFileSync(join(ctx, "f"), "f\n");
  const ctxTar = new Uint8Array(Bun.spawnSync(["tar", "-C", ctx, "-cf", "-", "."]).stdout);
  const fixtures = {
    ctx,
    ctxTar,
    loadTar: new Uint8Array(await dockerArchive({ tags: ["loadme:1"], layers: [layer, blobLayer] })),
    importTar: new Uint8Array(layer),
    registry: `127.0.0.1:${5231 + (DRIVERS[0] === "vfs" ? 1 : 0)}`,
  };
  const registry = spawn([BUNKER, "registry", "serve", "--addr", fixtures.registry, "--root", join(top, "registry")], { stdout: "ignore", stderr: "ignore" });
  const results: { driver: string; op: string; cuts: number; held: number; points: number[]; failures: string[] }[] = [];
  let passed = 0;
  let failed = 0;
  try {
    for (const driver of DRIVERS) {
      const dir = join(top, driver);
      mkdirSync(dir);
      const e = new Engine(dir, driver);
      const why = await e.start();
      if (why) throw new Error(why);
      writeFileSync(join(dir, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [layer] }));
      await e.must("load", "-q", "-i", join(dir, "busybox.tar"));
      writeFileSync(join(dir, "pullme.tar"), await dockerArchive({ tags: [`${fixtures.registry}/pullme:1`], layers: [layer, blobLayer] }));
      await e.must("load", "-q", "-i", join(dir, "pullme.tar"));
      await e.must("push", "-q", `${fixtures.registry}/pullme:1`);
      await e.must("rmi", `${fixtures.registry}/pullme:1`);
      const random = rng(SEED);
      for (const op of ops(fixtures)) {
        if (ONLY.length && !ONLY.includes(op.name)) continue;
        // The operation's length uncut, to spread the cuts over it.
        await op.setup(e);
        const t0 = performance.now();
        await op.act(e);
        const span = Math.max(5, performance.now() - t0);
        await op.retry(e);
        const r = { driver, op: op.name, cuts: 0, held: 0, points: [] as number[], failures: [] as string[] };
        for (let k = 0; k < CUTS; k++) {
          await op.setup(e);
          const at = Math.round(random() * span * 1.1);
          const acting = op.act(e).catch(() => undefined);
          await Bun.sleep(at);
          await e.kill9();
          await acting;
          const problems: string[] = [];
          const down = await e.start();
          if (down) problems.push(down);
          else {
            problems.push(...(await op.check(e).catch((err) => [`check: ${err}`])));
            problems.push(...(await storeProblems(e.api, e.dataRoot, driver)));
            problems.push(...(await op.retry(e).catch((err) => [`retry: ${err}`])));
          }
          r.cuts++;
          r.points.push(at);
          if (problems.length === 0) {
            r.held++;
            passed++;
          } else {
            failed++;
            r.failures.push(`cut at ${at} ms of ${Math.round(span)}: ${problems.join("; ")}`);
            console.log(`(fail) ${driver} ${op.name} cut at ${at} ms: ${problems.join("; ")}`);
            // Put the store back to a known state for the next cut: a fresh daemon, what can be removed removed.
            if (down) {
              await e.kill9();
              await e.start();
            }
          }
        }
        results.push(r);
        console.log(`${driver} ${op.name}: ${r.held}/${r.cuts} cuts held (operation ${Math.round(span)} ms uncut)`);
      }
      const ids = (await e.docker("ps", "-aq")).stdout.split("\n").filter(Boolean);
      if (ids.length) await e.docker("rm", "-f", ...ids);
      await e.docker("network", "rm", "cutnet", "cutnet2");
      await e.stop();
    }
  } finally {
    registry.kill();
    Bun.spawnSync(["pkill", "-9", "-f", `--data-root ${top}`]);
    cleanupMounted(top);
    Bun.spawnSync(["umount", "-l", top]);
    for (const d of DRIVERS) {
      Bun.spawnSync(["ip", "link", "del", `bkc-${d}`.slice(0, 15)]);
      for (const family of ["ip", "ip6", "inet"]) Bun.spawnSync(["nft", "delete", "table", family, `bkc${d}`], { stderr: "ignore" });
    }
  }
  if (process.env.BUNKER_CRASH_REPORT) writeFileSync(process.env.BUNKER_CRASH_REPORT, JSON.stringify(results, null, 2));
  console.log(`\n${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

await main();
