/** An image's flattened filesystem, for comparing what two engines built. */
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { readTar } from "../../src/core/layer/tar-stream.ts";

/** The flattened filesystem of a saved image: path → "type mode uid:gid size sha256|link". */
export async function flatten(saveTar: Uint8Array): Promise<Map<string, string>> {
  const members = new Map<string, Uint8Array>();
  for await (const e of readTar([saveTar])) {
    const parts: Uint8Array[] = [];
    for await (const c of e.body) parts.push(c);
    members.set(e.header.name, Buffer.concat(parts));
  }
  const manifest = JSON.parse(new TextDecoder().decode(members.get("manifest.json")!)) as { Layers: string[] }[];
  const fs = new Map<string, string>();
  for (const layer of manifest[0]!.Layers) {
    let data = members.get(layer)!;
    if (data[0] === 0x1f && data[1] === 0x8b) data = gunzipSync(data);
    for await (const e of readTar([data])) {
      const name = e.header.name.replace(/^\.\//, "").replace(/\/$/, "");
      const base = name.split("/").at(-1)!;
      const dir = name.includes("/") ? name.slice(0, name.lastIndexOf("/")) : "";
      const parts: Uint8Array[] = [];
      for await (const c of e.body) parts.push(c);
      if (base === ".wh..wh..opq") {
        for (const k of [...fs.keys()]) if (k.startsWith(`${dir}/`)) fs.delete(k);
        continue;
      }
      if (base.startsWith(".wh.")) {
        const gone = `${dir ? `${dir}/` : ""}${base.slice(4)}`;
        for (const k of [...fs.keys()]) if (k === gone || k.startsWith(`${gone}/`)) fs.delete(k);
        continue;
      }
      const h = e.header;
      const content = h.type === "file" ? createHash("sha256").update(Buffer.concat(parts)).digest("hex").slice(0, 16) : h.type === "symlink" || h.type === "hardlink" ? h.linkname : "";
      fs.set(name, `${h.type} ${(h.mode & 0o7777).toString(8)} ${h.uid}:${h.gid} ${h.type === "file" ? h.size : 0} ${content}`);
    }
  }
  return fs;
}

