/**
 * The same ten-step build as bench/build.ts, through buildx (the pinned docker CLI plugin, its
 * \`docker\` driver on \`/grpc\` and \`/session\`): Bunker's BuildKit face against dockerd's own
 * BuildKit, cold (\`--no-cache\`) and fully cached, same run, same CLI.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUILDX } from "../test/helpers/env.ts";
import { buildTable, timeBuilds } from "./build.ts";

/** The suite: returns the markdown section. */
export async function buildkitSuite(): Promise<string> {
  if (!BUILDX) return "## Build through buildx (BuildKit API)\n\nSkipped: no buildx (scripts/peers/install.sh builds it).\n";
  const cfg = mkdtempSync(join(tmpdir(), "bench-buildx-cfg-"));
  try {
    mkdirSync(join(cfg, "cli-plugins"));
    symlinkSync(BUILDX, join(cfg, "cli-plugins", "docker-buildx"));
    const t = await timeBuilds("bunker-bench-buildkit", { DOCKER_CONFIG: cfg, BUILDKIT_PROGRESS: "quiet" });
    if (!t) return "## Build through buildx (BuildKit API)\n\nSkipped: no docker CLI.\n";
    const about = "Suite `bench/buildkit.ts`: `docker build` with buildx v0.24.0 as the CLI plugin (so BuildKit's gRPC API: `/grpc` and `/session`) of the same ten-step Dockerfile as the classic suite, cold with `--no-cache` then fully cached, rounds alternated; times include the docker CLI and buildx (buildx alone costs tens of ms per call).";
    return buildTable(t, "Build through buildx (BuildKit API, ten steps)", about, 150, 3);
  } finally {
    rmSync(cfg, { recursive: true, force: true });
  }
}

if (import.meta.main) console.log(await buildkitSuite());
