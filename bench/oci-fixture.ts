/**
 * Bench fixture: wrap an existing layer file into a docker-archive (config + manifest.json), so
 * skopeo can turn it into an OCI layout for umoci.
 */
import { digestOf, Digester } from "../src/core/content/digest.ts";
import { fullHeader, writeTar } from "../src/core/layer/tar-stream.ts";

/** `layerFile` (as stored, e.g. gzip) with the diff ID of `uncompressedTar`, into `out`. */
export async function dockerArchiveFromLayer(layerFile: string, uncompressedTar: string, out: string): Promise<void> {
  const d = new Digester();
  for await (const c of Bun.file(uncompressedTar).stream()) d.update(c);
  const diffId = d.digest();
  const config = new TextEncoder().encode(JSON.stringify({
    architecture: process.arch === "arm64" ? "arm64" : "amd64", os: "linux", config: {},
    rootfs: { type: "layers", diff_ids: [diffId] },
  }));
  const cfgName = `${digestOf(config).slice(7)}.json`;
  const layer = await Bun.file(layerFile).bytes();
  const manifest = new TextEncoder().encode(JSON.stringify([{ Config: cfgName, RepoTags: ["bench/layer:1"], Layers: ["layer.tar.gz"] }]));
  const f = (name: string, body: Uint8Array) => ({ header: fullHeader({ name, type: "file", mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0 }), body });
  await Bun.write(out, new Blob(await Array.fromAsync(writeTar([f(cfgName, config), f("layer.tar.gz", layer), f("manifest.json", manifest)]))));
}
