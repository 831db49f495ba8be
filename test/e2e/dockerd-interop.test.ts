/**
 * Interop with Docker's own daemon (Debian's docker.io): `docker save` from dockerd loads into
 * Bunker, and Bunker's save loads into dockerd, with the same image ID both ways.
 */
import { DOCKER, ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, run, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.ts";
import { BUSYBOX, busyboxLayer, dockerArchive } from "../helpers/images.ts";

const DOCKERD = Bun.which("dockerd");

describe.skipIf(skipUnless("interop with dockerd", { "the docker CLI": DOCKER, "dockerd (docker.io)": DOCKERD, "root": ROOT, "busybox-static": BUSYBOX }))("interop with dockerd", () => {
  let dir: string;
  let dockerd: Bun.Subprocess;
  let bunker: TestDaemon;
  let dHost: string;

  beforeAll(async () => {
    dir = tempDir();
    const sock = join(dir, "docker.sock");
    dHost = `unix://${sock}`;
    dockerd = Bun.spawn([DOCKERD!, "--data-root", join(dir, "dd"), "--exec-root", join(dir, "de"), "-H", dHost, "--pidfile", join(dir, "d.pid"),
      "--iptables=false", "--ip6tables=false", "--bridge=none"], { stdout: "ignore", stderr: "ignore" });
    for (let i = 0; i < 300; i++) {
      if ((await run([DOCKER!, "version"], { DOCKER_HOST: dHost })).code === 0) break;
      await Bun.sleep(100);
    }
    bunker = await startDaemon();
    writeFileSync(join(dir, "busybox.tar"), await dockerArchive({ tags: ["interop/busybox:1"], layers: [await busyboxLayer()], gzip: true }));
  }, 60_000);
  afterAll(async () => {
    dockerd?.kill("SIGTERM");
    await dockerd?.exited;
    await bunker?.stop();
    cleanup(bunker.dir);
    cleanup(dir);
  });

  const onDockerd = (...a: string[]) => run([DOCKER!, ...a], { DOCKER_HOST: dHost });
  const onBunker = (...a: string[]) => run([DOCKER!, ...a], { DOCKER_HOST: bunker.host });

  test("dockerd's save loads into bunker with the same ID", async () => {
    expect((await onDockerd("load", "-i", join(dir, "busybox.tar"))).code).toBe(0);
    const id = (await onDockerd("image", "inspect", "--format", "{{.Id}}", "interop/busybox:1")).stdout.trim();
    const saved = join(dir, "from-dockerd.tar");
    expect((await onDockerd("save", "-o", saved, "interop/busybox:1")).code).toBe(0);
    const l = await onBunker("load", "-i", saved);
    expect(l.stderr).toBe("");
    expect(l.stdout).toBe("Loaded image: interop/busybox:1\n");
    expect((await onBunker("image", "inspect", "--format", "{{.Id}}", "interop/busybox:1")).stdout.trim()).toBe(id);
  }, 60_000);

  test("bunker's save loads into dockerd with the same ID", async () => {
    const id = (await onBunker("image", "inspect", "--format", "{{.Id}}", "interop/busybox:1")).stdout.trim();
    await onBunker("tag", "interop/busybox:1", "interop/from-bunker:2");
    const saved = join(dir, "from-bunker.tar");
    expect((await onBunker("save", "-o", saved, "interop/from-bunker:2")).code).toBe(0);
    const l = await onDockerd("load", "-i", saved);
    expect(l.stderr).toBe("");
    expect(l.stdout).toContain("interop/from-bunker:2");
    expect((await onDockerd("image", "inspect", "--format", "{{.Id}}", "interop/from-bunker:2")).stdout.trim()).toBe(id);
  }, 60_000);
});
