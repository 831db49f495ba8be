/**
 * Shared helpers for benchmark suites: spawning daemons, waiting for `/_ping`, reading RSS,
 * summarising samples, and the machine description for RESULTS.md.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { cleanupMounted } from "../test/helpers/daemon.ts";

/** Wait until a Unix socket answers `GET /_ping` with 200; polls every millisecond. */
export async function waitForPing(socket: string, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const ok = await fetch("http://localhost/_ping", { unix: socket } as RequestInit).then((r) => r.ok, () => false);
    if (ok) return;
    await Bun.sleep(1);
  }
  throw new Error(`${socket} did not answer /_ping within ${timeoutMs} ms`);
}

/** Resident set size of a process in kB (VmRSS), 0 when gone. */
export function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Proportional set size in kB (shared pages divided among their users). */
export function pssKb(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** All descendants of a process (children of every thread, recursively). */
export function descendantPids(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number)) {
        out.push(c, ...descendantPids(c));
      }
    } catch {
      /* thread gone */
    }
  }
  return out;
}

/** Median, mean, min and max of samples. */
export function summary(samples: number[]): { median: number; mean: number; min: number; max: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, mean: s.reduce((a, b) => a + b, 0) / s.length, min: s[0]!, max: s.at(-1)!, n: s.length };
}

/** One line describing the machine the numbers come from. */
export function machineLine(): string {
  return `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}, Bun ${Bun.version}`;
}

/** Format milliseconds with sensible precision. */
export const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** The built executable and the docker tools the side-by-side suites use. */
export const BUNKER_BIN = join(resolve(import.meta.dir, ".."), "dist/bunker");
export const DOCKER_CLI = ["/usr/local/bin/docker", "/usr/bin/docker"].find((p) => existsSync(p));
export const DOCKERD_BIN = Bun.which("dockerd");

/** A work directory under /var/tmp holding a docker-archive of the test busybox image (`busybox.tar`). */
export async function benchWorkDir(prefix: string): Promise<{ work: string; archive: string }> {
  const { busyboxLayer, dockerArchive } = await import("../test/helpers/images.ts");
  const work = resolve("/var/tmp", `${prefix}-${process.pid}`);
  mkdirSync(work, { recursive: true });
  const archive = join(work, "busybox.tar");
  writeFileSync(archive, await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer()], gzip: true }));
  return { work, archive };
}

/** Unmount whatever the engines left mounted under `work`, then remove it. */
export function removeWorkDir(work: string): void {
  cleanupMounted(work);
}
