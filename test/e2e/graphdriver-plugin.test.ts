/**
 * An out-of-process GraphDriver plugin as the daemon's storage driver: the daemon finds it by
 * name in the discovery directories (started after the daemon asked for it: discovery waits),
 * `docker info` names it with the plugin's status, and images loaded through the docker CLI are
 * stored by the plugin (its ApplyDiff was called) and removed through it.
 */
import { DOCKER, ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { findDockerPlugin } from "../../src/core/plugin/docker-plugin.ts";
import { connectGraphDriverPlugin } from "../../src/core/plugin/graphdriver-proxy.ts";
import { cleanup, REPO, run, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.ts";
import { BUSYBOX, busyboxLayer, dockerArchive } from "../helpers/images.ts";


describe("docker plugin discovery", () => {
  test("sockets, spec files and json files are found in moby's order; a missing plugin is NotSupported", async () => {
    const dir = tempDir("bunker-discovery-");
    try {
      mkdirSync(join(dir, "a"));
      mkdirSync(join(dir, "b"));
      writeFileSync(join(dir, "b", "p1.spec"), "unix:///run/p1.sock\n");
      writeFileSync(join(dir, "b", "p2.json"), JSON.stringify({ Name: "p2", Addr: "tcp://127.0.0.1:9999" }));
      writeFileSync(join(dir, "b", "p3.spec"), "ftp://nope");
      expect(findDockerPlugin("p1", [join(dir, "a"), join(dir, "b")])).toEqual({ name: "p1", socket: "/run/p1.sock", base: "http://plugin" });
      expect(findDockerPlugin("p2", [join(dir, "b")])).toEqual({ name: "p2", base: "http://127.0.0.1:9999" });
      expect(() => findDockerPlugin("p3", [join(dir, "b")])).toThrow("unsupported address");
      expect(() => findDockerPlugin("../x", [join(dir, "b")])).toThrow("invalid plugin name");
      // A socket wins over a spec file of the same name, whichever directory holds it.
      writeFileSync(join(dir, "a", "p2.sock"), ""); // not a socket: ignored
      expect(findDockerPlugin("p2", [join(dir, "a"), join(dir, "b")])?.socket).toBeUndefined();
      const listener = Bun.listen({ unix: join(dir, "a", "p1.sock"), socket: { data() {} } });
      expect(findDockerPlugin("p1", [join(dir, "b"), join(dir, "a")])?.socket).toBe(join(dir, "a", "p1.sock"));
      listener.stop(true);
      expect(findDockerPlugin("none", [join(dir, "a")])).toBeUndefined();
      await expect(connectGraphDriverPlugin("none", join(dir, "root"), { dirs: [join(dir, "a")], retryFor: 0 })).rejects.toThrow(`no plugin named none in ${join(dir, "a")}`);
    } finally {
      cleanup(dir);
    }
  });
});

describe.skipIf(skipUnless("a GraphDriver plugin as the daemon's storage driver", { "the docker CLI": DOCKER, "root": ROOT, "busybox-static": BUSYBOX }))("a GraphDriver plugin as the daemon's storage driver", () => {
  let daemon: TestDaemon;
  let work: string;
  let plugin: ReturnType<typeof Bun.spawn>;
  let calls = "";
  let env: Record<string, string>;
  const docker = (...args: string[]) => run([DOCKER!, ...args], env);

  beforeAll(async () => {
    work = tempDir("bunker-gd-e2e-");
    const plugins = join(work, "plugins");
    mkdirSync(plugins);
    writeFileSync(join(work, "daemon.json"), JSON.stringify({ "storage-driver": "testgd", "docker-plugin-dirs": [plugins] }));
    writeFileSync(join(work, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer()] }));
    const starting = startDaemon({ configFile: join(work, "daemon.json") });
    await Bun.sleep(300); // the daemon is already waiting for the plugin when it appears
    plugin = Bun.spawn([process.execPath, join(REPO, "test/fixtures/graphdriver-plugin.ts"), join(plugins, "testgd.sock")], { stdout: "pipe", stderr: "inherit" });
    (async () => {
      const dec = new TextDecoder();
      for await (const c of plugin.stdout as ReadableStream<Uint8Array>) calls += dec.decode(c);
    })();
    daemon = await starting;
    env = { DOCKER_HOST: daemon.host };
  });
  afterAll(async () => {
    await daemon?.stop();
    plugin?.kill();
    if (daemon) cleanup(daemon.dir);
    cleanup(work);
  });

  test("docker info names the plugin driver and its status", async () => {
    const r = await docker("info", "--format", "{{.Driver}} {{json .DriverStatus}}");
    expect(r.stdout.trim()).toBe('testgd [["Test Plugin","directories"]]');
  });

  test("docker load stores layers through the plugin; rmi removes them through it", async () => {
    const r = await docker("load", "-i", join(work, "busybox.tar"));
    expect(r.stdout).toBe("Loaded image: busybox:latest\n");
    expect(calls).toContain("GraphDriver.ApplyDiff");
    const insp = JSON.parse((await docker("image", "inspect", "busybox")).stdout)[0];
    expect(insp.GraphDriver.Name).toBe("testgd");
    expect((await docker("rmi", "busybox")).code).toBe(0);
    expect(calls).toContain("GraphDriver.Remove");
    expect((await docker("images", "-q")).stdout).toBe("");
  });
});
