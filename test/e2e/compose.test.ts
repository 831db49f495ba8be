/**
 * docker-compose (Debian's 1.29, docker-py underneath) drives Bunker unchanged: a project that
 * builds an image, publishes a port on loopback, puts two services on a user network where one
 * reaches the other by name, and mounts a named volume; `ps`, `logs` and `down -v` clean up.
 */
import { DOCKER, ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, run, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.ts";
import { BUSYBOX, busyboxLayer, dockerArchive } from "../helpers/images.ts";

const COMPOSE = Bun.which("docker-compose");

describe.skipIf(skipUnless("docker-compose against Bunker", { "docker-compose": COMPOSE, "the docker CLI": DOCKER, "root": ROOT, "busybox-static": BUSYBOX }))("docker-compose against Bunker", () => {
  let daemon: TestDaemon;
  let dir: string;
  let env: Record<string, string>;
  const compose = (...args: string[]) => run([COMPOSE!, "--project-directory", join(dir, "proj"), "-p", "cmp", ...args], env);

  beforeAll(async () => {
    dir = tempDir("bunker-compose-");
    daemon = await startDaemon({ dir });
    env = { DOCKER_HOST: daemon.host, COMPOSE_DOCKER_CLI_BUILD: "0", DOCKER_BUILDKIT: "0" };
    writeFileSync(join(dir, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer()], gzip: true }));
    expect((await run([DOCKER!, "load", "-i", join(dir, "busybox.tar")], env)).code).toBe(0);
    mkdirSync(join(dir, "proj", "web"), { recursive: true });
    writeFileSync(join(dir, "proj", "web", "Dockerfile"), 'FROM busybox\nRUN mkdir -p /www && echo "hello from compose" > /www/index.html\nCMD ["busybox", "httpd", "-f", "-p", "80", "-h", "/www"]\n');
    writeFileSync(
      join(dir, "proj", "docker-compose.yml"),
      [
        'version: "3.8"',
        "services:",
        "  web:",
        "    build: ./web",
        '    ports: ["127.0.0.1:18097:80"]',
        "    networks: [back]",
        "  client:",
        "    image: busybox",
        `    command: ["sh", "-c", "sleep 1; printf 'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | busybox nc -w 3 web 80; echo stored > /data/f"]`,
        "    depends_on: [web]",
        "    networks: [back]",
        "    volumes: [data:/data]",
        "networks:",
        "  back: {}",
        "volumes:",
        "  data: {}",
        "",
      ].join("\n"),
    );
  });
  afterAll(async () => {
    await compose("down", "-v");
    await daemon.stop();
    cleanup(dir);
  });

  test("up builds, publishes, networks and mounts; ps and logs; down -v removes it all", async () => {
    const up = await compose("up", "-d");
    expect(up.code).toBe(0);
    let body = "";
    for (let i = 0; i < 50 && !body; i++) body = await fetch("http://127.0.0.1:18097/").then((r) => r.text(), async () => (await Bun.sleep(100), ""));
    expect(body).toBe("hello from compose\n");
    let logs = "";
    for (let i = 0; i < 50 && !logs.includes("hello from compose"); i++) {
      await Bun.sleep(100);
      logs = (await compose("logs", "--no-color", "client")).stdout;
    }
    expect(logs).toContain("hello from compose"); // the client reached `web` by name on the project network
    const ps = (await compose("ps")).stdout;
    expect(ps.match(/cmp_web_1/g)?.length).toBe(1); // label filters are ANDed: each service lists its own
    expect(ps).toContain("cmp_client_1");
    expect(ps).toContain("127.0.0.1:18097->80/tcp");
    expect((await run([DOCKER!, "network", "ls", "--format", "{{.Name}}"], env)).stdout).toContain("cmp_back");
    expect((await run([DOCKER!, "volume", "ls", "-q"], env)).stdout).toContain("cmp_data");
    const down = await compose("down", "-v");
    expect(down.code).toBe(0);
    expect((await run([DOCKER!, "ps", "-aq"], env)).stdout).toBe("");
    expect((await run([DOCKER!, "network", "ls", "--format", "{{.Name}}"], env)).stdout).not.toContain("cmp_back");
    expect((await run([DOCKER!, "volume", "ls", "-q"], env)).stdout).not.toContain("cmp_data");
  }, 120_000);
});
