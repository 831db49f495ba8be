/**
 * Test helpers: build (once) and start the compiled `dist/bunker` daemon on a private data root,
 * exec root and socket, wait until `/_ping` answers, and stop it.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const REPO = resolve(import.meta.dir, "../..");
export const BUNKER = join(REPO, "dist/bunker");

/** Build dist/bunker if it is missing (the test script builds it first in CI). */
export function ensureBuilt(): string {
  if (!existsSync(BUNKER)) {
    const r = Bun.spawnSync([process.execPath, "scripts/build.ts"], { cwd: REPO, stdout: "inherit", stderr: "inherit" });
    if (r.exitCode !== 0) throw new Error("build failed");
  }
  return BUNKER;
}

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = "bunker-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A running test daemon. */
export interface TestDaemon {
  dir: string;
  dataRoot: string;
  execRoot: string;
  socket: string;
  host: string;
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  /** Everything the daemon printed on stderr so far. */
  logs(): string;
  /** SIGTERM and wait; returns the exit code. */
  stop(): Promise<number>;
}

/** Run `bunker daemon` with extra args; resolves once it answers /_ping. */
export async function startDaemon(
  opts: { args?: string[]; dir?: string; argv0?: string; configFile?: string } = {},
): Promise<TestDaemon> {
  const bin = ensureBuilt();
  const dir = opts.dir ?? tempDir();
  const dataRoot = join(dir, "data");
  const execRoot = join(dir, "run");
  const socket = join(execRoot, "bunker.sock");
  const cmd = opts.argv0 ? [opts.argv0] : [bin, "daemon"];
  const proc = Bun.spawn([...cmd, "--data-root", dataRoot, "--exec-root", execRoot, "--config-file", opts.configFile ?? "/dev/null", ...(opts.args ?? [])], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let stderr = "";
  const decoder = new TextDecoder();
  if (process.env.BUNKER_TEST_LOG_DIR) mkdirSync(process.env.BUNKER_TEST_LOG_DIR, { recursive: true });
  const reading = (async () => {
    for await (const chunk of proc.stderr) {
      stderr += decoder.decode(chunk);
      // BUNKER_TEST_LOG_DIR keeps each test daemon's log (for chasing what a test left behind).
      if (process.env.BUNKER_TEST_LOG_DIR) require("node:fs").appendFileSync(join(process.env.BUNKER_TEST_LOG_DIR, `daemon-${proc.pid}.log`), chunk);
    }
  })();
  const d: TestDaemon = {
    dir,
    dataRoot,
    execRoot,
    socket,
    host: `unix://${socket}`,
    proc,
    logs: () => stderr,
    async stop() {
      proc.kill("SIGTERM");
      const code = await proc.exited;
      await reading;
      return code;
    },
  };
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) {
      await reading;
      throw new Error(`daemon exited with ${proc.exitCode}:\n${stderr}`);
    }
    try {
      const r = await fetch("http://localhost/_ping", { unix: socket } as RequestInit);
      if (r.ok) return d;
    } catch {
      /* not up yet */
    }
    await Bun.sleep(10);
  }
  proc.kill("SIGKILL");
  throw new Error(`daemon did not answer /_ping within 10 s:\n${stderr}`);
}

/** Run a command to completion, capturing output. */
export async function run(cmd: string[], env: Record<string, string | undefined> = {}, stdin?: string) {
  const p = Bun.spawn(cmd, {
    env: { ...process.env, ...env },
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr, code };
}

/** Remove a temp directory tree. */
export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Unmount whatever daemons left mounted under `dir` (dockerd's netns files, say), then remove it. */
export function cleanupMounted(dir: string): void {
  const { readFileSync } = require("node:fs") as typeof import("node:fs");
  const mounted = readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4]).filter((p): p is string => !!p && (p === dir || p.startsWith(`${dir}/`)));
  for (const m of mounted.reverse()) Bun.spawnSync(["umount", "-l", m]);
  cleanup(dir);
}
