import { describe, expect, test } from "bun:test";
import { type Digest, digestOf } from "../../src/core/content/digest.ts";
import { chainIds, type ImageIndex, MediaTypes, parseImageConfig, parseManifest, parsePlatform, selectPlatform } from "../../src/core/image/manifest.ts";

const d = (s: string) => digestOf(s);
const desc = (mediaType: string, s: string, extra: object = {}) => ({ mediaType, digest: d(s), size: s.length, ...extra });
const manifest = (mt: string = MediaTypes.dockerManifest) => ({
  schemaVersion: 2,
  mediaType: mt,
  config: desc(MediaTypes.dockerConfig, "cfg"),
  layers: [desc(MediaTypes.dockerLayerGzip, "l1"), desc(MediaTypes.dockerLayerGzip, "l2")],
});
const plat = (architecture: string, variant?: string, os = "linux") => ({ os, architecture, ...(variant ? { variant } : {}) });
const index: ImageIndex = parseManifest(JSON.stringify({
  schemaVersion: 2,
  mediaType: MediaTypes.ociIndex,
  manifests: [
    desc(MediaTypes.ociManifest, "amd64", { platform: plat("amd64") }),
    desc(MediaTypes.ociManifest, "armv6", { platform: plat("arm", "v6") }),
    desc(MediaTypes.ociManifest, "arm64", { platform: plat("arm64", "v8") }),
    desc(MediaTypes.ociManifest, "att", { platform: plat("unknown", undefined, "unknown") }),
  ],
})) as ImageIndex;

describe("manifests", () => {
  test("docker v2 schema 2 and OCI manifests and indexes parse", () => {
    expect(parseManifest(JSON.stringify(manifest())).kind).toBe("manifest");
    expect(parseManifest(JSON.stringify(manifest(MediaTypes.ociManifest)), MediaTypes.ociManifest).mediaType).toBe(MediaTypes.ociManifest);
    const { mediaType: _, ...noType } = manifest();
    expect(parseManifest(JSON.stringify(noType), MediaTypes.dockerManifest).mediaType).toBe(MediaTypes.dockerManifest);
    expect(index.kind).toBe("index");
  });

  test("bad manifests get clear errors", () => {
    const both = { ...manifest(), manifests: [] };
    expect(() => parseManifest(JSON.stringify(both))).toThrow("ambiguous manifest");
    expect(() => parseManifest(JSON.stringify(manifest()), MediaTypes.ociIndex)).toThrow("does not match Content-Type");
    expect(() => parseManifest(JSON.stringify({ ...manifest(), mediaType: "application/x-weird" }))).toThrow("unsupported manifest media type");
    expect(() => parseManifest(JSON.stringify({ ...manifest(), layers: [desc("application/x-foo", "x")] }))).toThrow("unsupported layer media type");
    expect(() => parseManifest(JSON.stringify({ ...manifest(), config: { ...desc(MediaTypes.dockerConfig, "c"), digest: "sha256:nope" } }))).toThrow("config.digest: invalid digest");
    expect(() => parseManifest(JSON.stringify({ ...manifest(), schemaVersion: 1 }))).toThrow("schemaVersion");
    expect(() => parseManifest("{not json")).toThrow("not valid JSON");
  });
});

describe("platforms", () => {
  test("exact match, arm64 variant default, arm fallback to an older variant", () => {
    expect(selectPlatform(index, parsePlatform("linux/amd64")).digest).toBe(d("amd64"));
    expect(selectPlatform(index, parsePlatform("linux/aarch64")).digest).toBe(d("arm64"));
    expect(selectPlatform(index, parsePlatform("linux/arm64")).digest).toBe(d("arm64"));
    expect(selectPlatform(index, parsePlatform("linux/arm/v7")).digest).toBe(d("armv6"));
    expect(() => selectPlatform(index, parsePlatform("linux/s390x"))).toThrow("no matching manifest for linux/s390x");
    expect(() => selectPlatform(index, parsePlatform("linux/arm/v5"))).toThrow("no matching manifest");
    expect(() => parsePlatform("linux")).toThrow("invalid platform");
  });
});

describe("image configs and chain IDs", () => {
  const cfg = {
    architecture: "amd64",
    os: "linux",
    config: { Env: ["PATH=/bin"], Cmd: ["sh"], Entrypoint: null, Labels: { a: "b" } },
    rootfs: { type: "layers", diff_ids: [d("a"), d("b")] },
    history: [{ created_by: "ADD" }, { created_by: "ENV", empty_layer: true }, { created_by: "RUN" }],
  };

  test("parses and checks history against diff IDs", () => {
    expect(parseImageConfig(JSON.stringify(cfg)).config?.Cmd).toEqual(["sh"]);
    expect(() => parseImageConfig(JSON.stringify({ ...cfg, history: [{ created_by: "ADD" }] }))).toThrow("history has 1 layers but rootfs has 2");
    expect(() => parseImageConfig(JSON.stringify({ ...cfg, rootfs: { type: "layers", diff_ids: ["x"] } }))).toThrow("rootfs.diff_ids.0: invalid digest");
  });

  test("chain IDs as Docker computes them", () => {
    // Independent check: the second chain ID is sha256sum of the text "<chain0> <diff1>".
    const a = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef" as Digest;
    const b = "sha256:6c5d7ff1e2f4a5a5b4a7d4f2d24ac5e2c4ebbb0e5c8c61ebf8b1e8e1c4b7d6a3" as Digest;
    const [c0, c1] = chainIds([a, b]);
    expect(c0).toBe(a);
    const expected = Bun.spawnSync(["sha256sum"], { stdin: new TextEncoder().encode(`${a} ${b}`) }).stdout.toString().split(" ")[0];
    expect(c1 as string).toBe(`sha256:${expected}`);
    expect(chainIds([])).toEqual([]);
  });
});
