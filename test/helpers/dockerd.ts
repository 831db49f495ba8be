/**
 * Debian's dockerd as a peer, started by a test with its own data root, exec root, socket and
 * pidfile; `--iptables=false` and no bridge unless the test is about coexistence and asks for them.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { run } from "./daemon.ts";

export const DOCKERD = Bun.which("dockerd");
export const DOCKER_CLI = ["/usr/local/bin/docker", "/usr/bin/docker"].find((p) => existsSync(p));

/** A running dockerd. */
export interface PeerDockerd {
  host: string;
  proc: Bun.Subprocess;
  /** `docker …` against it. */
  docker(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }>;
  stop(): Promise<void>;
}

/** Start dockerd under `dir`; `args` replace the no-firewall defaults when given. */
export async function startDockerd(dir: string, opts: { args?: string[] } = {}): Promise<PeerDockerd> {
  mkdirSync(dir, { recursive: true });
  const host = `unix://${join(dir, "docker.sock")}`;
  const args = opts.args ?? ["--iptables=false", "--ip6tables=false", "--bridge=none"];
  const proc = Bun.spawn([DOCKERD!, "--data-root", join(dir, "data"), "--exec-root", join(dir, "exec"), "-H", host, "--pidfile", join(dir, "docker.pid"), ...args], {
    stdout: "ignore",
    stderr: Bun.file(join(dir, "dockerd.log")),
  });
  const docker = (...a: string[]) => run([DOCKER_CLI!, ...a], { DOCKER_HOST: host });
  for (let i = 0; i < 300; i++) {
    if ((await docker("version")).code === 0) break;
    if (proc.exitCode !== null) throw new Error(`dockerd exited with ${proc.exitCode}; see ${join(dir, "dockerd.log")}`);
    await Bun.sleep(100);
  }
  return {
    host,
    proc,
    docker,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

/** Bunker and (when installed) dockerd side by side, each with the same images loaded. */
export interface DaemonPair {
  bunker: import("./daemon.ts").TestDaemon;
  dockerd?: PeerDockerd;
  stop(): Promise<void>;
}

/**
 * Start a Bunker daemon and a dockerd (no firewall, its bridge on 10.98.0.1/24, networks from
 * 10.97.0.0/16) under `dir`, and load the docker-archive `images` into both.
 */
export async function startPair(dir: string, images: string): Promise<DaemonPair> {
  const { startDaemon } = await import("./daemon.ts");
  const bunker = await startDaemon({ dir: join(dir, "bunker") });
  const load = async (host: string) => {
    const r = await run([DOCKER_CLI!, "load", "-i", images], { DOCKER_HOST: host });
    if (r.code !== 0) throw new Error(`docker load into ${host}: ${r.stderr}`);
  };
  await load(bunker.host);
  const dockerd = DOCKERD ? await startDockerd(join(dir, "dockerd"), { args: ["--iptables=false", "--ip6tables=false", "--bip", "10.98.0.1/24", "--default-address-pool", "base=10.97.0.0/16,size=24"] }) : undefined;
  if (dockerd) await load(dockerd.host);
  return {
    bunker,
    ...(dockerd ? { dockerd } : {}),
    async stop() {
      // Containers outlive a stopped daemon (live restore): a test that left one running would
      // keep its address on the bridge and its root mounted for the next file.
      for (const host of [bunker.host, ...(dockerd ? [dockerd.host] : [])]) {
        const ids = (await run([DOCKER_CLI!, "ps", "-aq"], { DOCKER_HOST: host })).stdout.split("\n").filter(Boolean);
        if (ids.length) await run([DOCKER_CLI!, "rm", "-f", ...ids], { DOCKER_HOST: host });
      }
      await bunker.stop();
      await dockerd?.stop();
      Bun.spawnSync(["ip", "link", "del", "docker0"]);
    },
  };
}

/** What `usePair` fills in before the file's tests run. */
export interface PairState {
  dir: string;
  bunker: import("./daemon.ts").TestDaemon;
  dockerd?: PeerDockerd;
}

/**
 * For a describe block: before its tests, a temp dir (`prefix`), the full busybox image, and a
 * Bunker + dockerd pair with it loaded; after them, both stopped and the dir removed.
 */
export function usePair(prefix: string): PairState {
  const { afterAll, beforeAll } = require("bun:test") as typeof import("bun:test");
  const state = {} as PairState;
  let pair: DaemonPair | undefined;
  beforeAll(async () => {
    const { tempDir } = await import("./daemon.ts");
    const { busyboxLayer, dockerArchive } = await import("./images.ts");
    state.dir = tempDir(prefix);
    require("node:fs").writeFileSync(join(state.dir, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer({ full: true })] }));
    pair = await startPair(state.dir, join(state.dir, "busybox.tar"));
    state.bunker = pair.bunker;
    if (pair.dockerd) state.dockerd = pair.dockerd;
  }, 60_000);
  afterAll(async () => {
    await pair?.stop();
    const { cleanupMounted } = await import("./daemon.ts");
    if (state.dir) cleanupMounted(state.dir);
  });
  return state;
}
