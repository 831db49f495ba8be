/**
 * Images through the real docker CLI against Bunker: load (docker-archive, gzip and plain
 * layers), images, inspect, history, tag, save, rmi; a tampered layer is refused leaving nothing;
 * a saved archive loads into a second daemon with the same image ID.
 */
import { DOCKER, ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, run, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.ts";
import { BUSYBOX, busyboxLayer, dockerArchive } from "../helpers/images.ts";


describe.skipIf(skipUnless("images through the docker CLI", { "the docker CLI": DOCKER, "root": ROOT, "busybox-static": BUSYBOX }))("images through the docker CLI", () => {
  let daemon: TestDaemon;
  let work: string;
  let env: Record<string, string>;
  const docker = (...args: string[]) => run([DOCKER!, ...args], env);

  beforeAll(async () => {
    daemon = await startDaemon();
    env = { DOCKER_HOST: daemon.host };
    work = tempDir();
    const base = await busyboxLayer();
    writeFileSync(join(work, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [base], gzip: true }));
    const extra = Buffer.concat(await Array.fromAsync((await import("../../src/core/layer/tar-stream.ts")).writeTar([
      { header: (await import("../../src/core/layer/tar-stream.ts")).fullHeader({ name: "hello.txt", type: "file", mode: 0o644, uid: 0, gid: 0, size: 3, mtime: 0 }), body: new TextEncoder().encode("hi\n") },
    ])));
    writeFileSync(join(work, "two.tar"), await dockerArchive({ tags: ["local/two:1"], layers: [base, extra] }));
    writeFileSync(join(work, "bad.tar"), await dockerArchive({ tags: ["local/bad:1"], layers: [base, extra], tamper: true }));
  });
  afterAll(async () => {
    await daemon.stop();
    cleanup(daemon.dir);
    cleanup(work);
  });

  test("docker load, then docker images and inspect", async () => {
    const r = await docker("load", "-i", join(work, "busybox.tar"));
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("Loaded image: busybox:latest\n");
    const imgs = await docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}");
    expect(imgs.stdout).toMatch(/^busybox:latest [0-9a-f]{12}\n$/);
    const insp = JSON.parse((await docker("image", "inspect", "busybox")).stdout)[0];
    expect(insp.RepoTags).toEqual(["busybox:latest"]);
    expect(insp.Config.Cmd).toEqual(["sh"]);
    expect(insp.RootFS.Layers.length).toBe(1);
    expect(insp.GraphDriver.Name).toBe("overlay");
    const info = await docker("info", "--format", "{{.Images}}");
    expect(info.stdout.trim()).toBe("1");
  });

  test("a two-layer image shares its base layer; history lists both", async () => {
    expect((await docker("load", "-i", join(work, "two.tar"))).stdout).toBe("Loaded image: local/two:1\n");
    const h = await docker("history", "--format", "{{.CreatedBy}}", "local/two:1");
    expect(h.stdout).toBe("layer 1\nlayer 0\n");
  });

  test("a tampered layer is refused and nothing of it stays", async () => {
    const before = readdirSync(join(daemon.dataRoot, "storage.v1.overlay", "snapshots")).sort();
    const r = await docker("load", "-i", join(work, "bad.tar"));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/does not match its diff ID|corrupt/);
    expect((await docker("images", "-q", "local/bad")).stdout).toBe("");
    expect(readdirSync(join(daemon.dataRoot, "storage.v1.overlay", "snapshots")).sort()).toEqual(before);
  });

  test("tag, save, load into a second daemon with the same ID, rmi", async () => {
    expect((await docker("tag", "busybox", "my/bb:1")).code).toBe(0);
    const id = (await docker("image", "inspect", "--format", "{{.Id}}", "my/bb:1")).stdout.trim();
    expect(id).toMatch(/^sha256:/);
    const out = join(work, "saved.tar");
    const s = await docker("save", "-o", out, "my/bb:1");
    expect(s.stderr).toBe("");
    const second = await startDaemon({ dir: tempDir() });
    try {
      const l = await run([DOCKER!, "load", "-i", out], { DOCKER_HOST: second.host });
      expect(l.stdout).toBe("Loaded image: my/bb:1\n");
      expect((await run([DOCKER!, "image", "inspect", "--format", "{{.Id}}", "my/bb:1"], { DOCKER_HOST: second.host })).stdout.trim()).toBe(id);
    } finally {
      await second.stop();
      cleanup(second.dir);
    }
    const tarList = await run(["tar", "-tf", out]);
    expect(tarList.stdout).toContain("manifest.json");
    expect(tarList.stdout).toContain("index.json");
    expect(tarList.stdout).toContain("oci-layout");
    const untag = await docker("rmi", "my/bb:1");
    expect(untag.stdout).toBe("Untagged: my/bb:1\n");
  });

  test("a tag moved to another image leaves a dangling image that image prune removes; system df reports", async () => {
    expect((await docker("load", "-i", join(work, "two.tar"))).code).toBe(0);
    const old = (await docker("image", "inspect", "--format", "{{.Id}}", "local/two:1")).stdout.trim();
    await docker("tag", "busybox", "local/two:1"); // the two-layer image is now untagged
    expect((await docker("images", "-q", "--filter", "dangling=true", "--no-trunc")).stdout.trim()).toBe(old);
    const df = await docker("system", "df", "--format", "{{.Type}} {{.TotalCount}}");
    expect(df.stdout).toContain("Images 2");
    const p = await docker("image", "prune", "-f");
    expect(p.stdout).toContain(`deleted: ${old}`);
    expect(p.stdout).toMatch(/Total reclaimed space: \d/);
    expect((await docker("images", "-q", "--filter", "dangling=true")).stdout).toBe("");
    expect((await docker("load", "-i", join(work, "two.tar"))).code).toBe(0); // local/two:1 back on the two-layer image
  });

  test("docker import of a rootfs tarball with --change; a bad change is refused", async () => {
    const rootfs = join(work, "rootfs.tar");
    writeFileSync(rootfs, await busyboxLayer());
    const r = await docker("import", "--change", 'CMD ["sh", "-c", "echo hi"]', "--change", "ENV A=1 B=\"two words\"", "--change", "WORKDIR /tmp", "-m", "from test", rootfs, "imported/bb:1");
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const cfg = JSON.parse((await docker("image", "inspect", "--format", "{{json .Config}}", "imported/bb:1")).stdout);
    expect(cfg.Cmd).toEqual(["sh", "-c", "echo hi"]);
    expect(cfg.Env).toEqual(["A=1", "B=two words"]);
    expect(cfg.WorkingDir).toBe("/tmp");
    expect((await docker("history", "--format", "{{.Comment}}", "imported/bb:1")).stdout).toBe("from test\n");
    const bad = await docker("import", "--change", "FROB x", rootfs, "imported/bad:1");
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("FROB is not a valid change command");
    expect((await docker("rmi", "imported/bb:1")).code).toBe(0);
  });

  test("docker pull hello-world is served by the built-in image, offline; its program runs", async () => {
    const p = await docker("pull", "hello-world");
    expect(p.stderr).toBe("");
    expect(p.stdout).toContain("Status: Downloaded newer image for hello-world:latest");
    expect((await docker("pull", "hello-world")).stdout).toContain("Status: Image is up to date for hello-world:latest");
    const cfg = JSON.parse((await docker("image", "inspect", "--format", "{{json .Config}}", "hello-world")).stdout);
    expect(cfg.Cmd).toEqual(["/hello"]);
    // Filters on creation time: hello-world (2023) is older than busybox (2026).
    const names = async (...f: string[]) => (await docker("images", "--format", "{{.Repository}}", ...f.flatMap((x) => ["--filter", x]))).stdout.trim().split("\n").sort();
    expect(await names("before=busybox")).toEqual(["hello-world"]);
    expect(await names("since=hello-world", "reference=busybox")).toEqual(["busybox"]);
    expect(await names("until=2024-01-01T00:00:00Z")).toEqual(["hello-world"]);
    expect(await names("label=org.example.test=yes", "reference=busy*")).toEqual(["busybox"]);
    // Take the program out of a saved archive and run it on the host.
    const out = join(work, "hw");
    mkdirSync(out);
    await docker("save", "-o", join(out, "hw.tar"), "hello-world");
    await run(["tar", "-C", out, "-xf", join(out, "hw.tar")]);
    const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    await run(["tar", "-C", out, "-xf", join(out, manifest[0].Layers[0])]);
    const r = await run([join(out, "hello")]);
    expect(r.stdout).toContain("Hello from Bunker!");
    expect((await docker("rmi", "hello-world")).code).toBe(0);
    // A registry that is not there (loopback, nothing listening): a clear error, no image.
    const missing = await docker("pull", "127.0.0.1:9/nothing");
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain("cannot reach registry 127.0.0.1:9");
  });

  test("rmi of the last tag deletes the image and its unshared layers", async () => {
    const r = await docker("rmi", "local/two:1");
    expect(r.stdout).toMatch(/^Untagged: local\/two:1\nDeleted: sha256:[0-9a-f]{64}\nDeleted: sha256:[0-9a-f]{64}\n$/);
    const r2 = await docker("rmi", "busybox");
    expect(r2.stdout).toMatch(/Untagged: busybox:latest\nDeleted: sha256:/);
    expect((await docker("images", "-q")).stdout).toBe("");
    expect(readdirSync(join(daemon.dataRoot, "storage.v1.overlay", "snapshots"))).toEqual([]);
    const missing = await docker("rmi", "busybox");
    expect(missing.stderr).toContain("No such image: busybox");
    expect(readFileSync(join(daemon.dataRoot, "image", "images.json"), "utf8")).toContain('"images":{}');
  });
});
