/**
 * What the peer runners share: the comparison of a suite's outcomes on dockerd and on Bunker
 * (every test dockerd passes must pass on Bunker, or be listed in the runner's differences.tsv
 * with its reason), and the clean-up of what a suite left in a daemon.
 */
import { readFileSync } from "node:fs";
import { run } from "../helpers/daemon.ts";
import { DOCKER_CLI } from "../helpers/dockerd.ts";

/** A test's outcome. */
export type Outcome = "passed" | "failed" | "skipped";

/** The comparison: tests passing on both, Bunker-only failures (printed), and dockerd's passes. */
export function compareWithDockerd(onDockerd: Map<string, string>, onBunker: Map<string, string>, differencesFile: string): { passed: number; failed: number; dockerdPasses: number } {
  const allowed = new Map(
    readFileSync(differencesFile, "utf8")
      .split("\n")
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => l.split("\t") as [string, string]),
  );
  let passed = 0;
  let failed = 0;
  let dockerdPasses = 0;
  for (const [id, o] of onDockerd) {
    if (o !== "passed") continue;
    dockerdPasses++;
    if (onBunker.get(id) === "passed") passed++;
    else if (allowed.has(id)) console.log(`differs on purpose: ${id} — ${allowed.get(id)}`);
    else {
      failed++;
      console.log(`FAIL on bunker only: ${id} (${onBunker.get(id) ?? "not run"})`);
    }
  }
  const extra = [...onBunker].filter(([id, o]) => o === "passed" && onDockerd.get(id) !== "passed").map(([id]) => id);
  if (extra.length) console.log(`pass on bunker only (${extra.length}): ${extra.join(", ")}`);
  return { passed, failed, dockerdPasses };
}

/** Remove every container (they outlive a Bunker daemon), then unused volumes and networks. */
export async function removeEverything(host: string): Promise<void> {
  const docker = (...a: string[]) => run([DOCKER_CLI!, ...a], { DOCKER_HOST: host });
  const ids = (await docker("ps", "-aq")).stdout.split("\n").filter(Boolean);
  if (ids.length) await docker("rm", "-f", "-v", ...ids);
  await docker("volume", "prune", "-af");
  await docker("network", "prune", "-f");
}
