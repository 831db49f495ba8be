/**
 * Interop with skopeo and umoci: images that skopeo writes (docker-archive and OCI layout) load
 * into Bunker, and Bunker's save output is read by `skopeo inspect` and unpacked by `umoci`
 * file for file equal to the original rootfs.
 */
import { DOCKER, ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { applyLayer } from "../../src/core/layer/apply.ts";
import { linuxSys } from "../../src/core/sys/sys.ts";
import { cleanup, run, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.ts";
import { BUSYBOX, busyboxLayer, dockerArchive } from "../helpers/images.ts";

const SKOPEO = Bun.which("skopeo");
const UMOCI = Bun.which("umoci");

describe.skipIf(skipUnless("interop with skopeo and umoci", { "the docker CLI": DOCKER, "skopeo": SKOPEO, "umoci": UMOCI, "root": ROOT, "busybox-static": BUSYBOX }))("interop with skopeo and umoci", () => {
  let dir: string;
  let bunker: TestDaemon;
  let layer: Buffer;
  const onBunker = (...a: string[]) => run([DOCKER!, ...a], { DOCKER_HOST: bunker.host });
  const sh = async (cmd: string[]) => {
    const r = await run(cmd);
    if (r.code !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
    return r;
  };

  beforeAll(async () => {
    dir = tempDir();
    bunker = await startDaemon();
    layer = await busyboxLayer();
    writeFileSync(join(dir, "src.tar"), await dockerArchive({ tags: ["tools/busybox:1"], layers: [layer], gzip: true }));
  });
  afterAll(async () => {
    await bunker.stop();
    cleanup(bunker.dir);
    cleanup(dir);
  });

  test("skopeo's docker-archive and OCI layout load into bunker", async () => {
    await sh([SKOPEO!, "copy", "-q", `docker-archive:${join(dir, "src.tar")}`, `docker-archive:${join(dir, "skopeo-docker.tar")}:tools/skopeo:da`]);
    const a = await onBunker("load", "-i", join(dir, "skopeo-docker.tar"));
    expect(a.stdout).toBe("Loaded image: tools/skopeo:da\n");
    await sh([SKOPEO!, "copy", "-q", `docker-archive:${join(dir, "src.tar")}`, `oci:${join(dir, "layout")}:oci1`]);
    await sh(["tar", "-C", join(dir, "layout"), "-cf", join(dir, "layout.tar"), "."]);
    const b = await onBunker("load", "-i", join(dir, "layout.tar"));
    expect(b.stderr).toBe("");
    expect(b.stdout).toMatch(/^Loaded image ID: sha256:[0-9a-f]{64}\n$/); // an OCI ref name alone is not a repository
    // skopeo rewrites the config as an OCI config (so a new ID) but the layers are the same.
    const idB = b.stdout.trim().split(": ")[1]!;
    const layersA = (await onBunker("image", "inspect", "--format", "{{json .RootFS.Layers}}", "tools/skopeo:da")).stdout;
    const layersB = (await onBunker("image", "inspect", "--format", "{{json .RootFS.Layers}}", idB)).stdout;
    expect(layersB).toBe(layersA);
  });

  test("bunker's save is read by skopeo and unpacked by umoci identically to the rootfs", async () => {
    await onBunker("load", "-i", join(dir, "src.tar"));
    const saved = join(dir, "saved.tar");
    expect((await onBunker("save", "-o", saved, "tools/busybox:1")).code).toBe(0);
    const inspect = JSON.parse((await sh([SKOPEO!, "inspect", `docker-archive:${saved}`])).stdout);
    expect(inspect.Layers.length).toBe(1);
    const oci = join(dir, "saved-oci");
    mkdirSync(oci);
    await sh(["tar", "-C", oci, "-xf", saved]);
    const ociInspect = JSON.parse((await sh([SKOPEO!, "inspect", `oci:${oci}:1`])).stdout);
    expect(ociInspect.Layers).toEqual(inspect.Layers);
    await sh([UMOCI!, "unpack", "--image", `${oci}:1`, join(dir, "bundle")]);
    const expected = join(dir, "expected");
    mkdirSync(expected);
    await applyLayer(linuxSys(), expected, [layer] as unknown as AsyncIterable<Uint8Array>, { whiteouts: "remove" });
    const diff = await run(["diff", "-r", "--no-dereference", expected, join(dir, "bundle", "rootfs")]);
    expect(diff.stdout + diff.stderr).toBe("");
  });
});
