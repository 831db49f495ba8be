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
