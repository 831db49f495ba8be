/** A comparable listing of a directory tree: one line per entry with type, mode, owner, size and content hash or link target. */
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";

/** Sorted lines `path kind mode uid:gid detail` for everything under `dir`. */
export function treeListing(dir: string, opts: { mtime?: boolean } = {}): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, path));
      const mode = (st.mode & 0o7777).toString(8);
      const time = opts.mtime && !st.isDirectory() && !st.isSymbolicLink() ? ` t=${Math.floor(st.mtimeMs / 1000)}` : "";
      let detail: string;
      if (st.isDirectory()) detail = "dir";
      else if (st.isSymbolicLink()) detail = `-> ${readlinkSync(join(dir, path))}`;
      else if (st.isFile()) detail = `file ${st.size} ${new Bun.CryptoHasher("sha256").update(readFileSync(join(dir, path))).digest("hex").slice(0, 16)}`;
      else detail = `special ${st.mode >> 12} ${st.rdev}`;
      out.push(`${path} ${mode} ${st.uid}:${st.gid} ${detail}${time}`);
      if (st.isDirectory()) walk(path);
    }
  };
  walk("");
  return out;
}
