/**
 * The sending side of fsutil's DiffCopy (a session's `FileSend` for `--output type=local`): a
 * STAT per entry in fsutil's walk order (each directory's names sorted, parents first), an
 * empty STAT at the end, then each requested file's bytes as DATA packets ending in an empty
 * one; the receiver's FIN is answered with ours. And the same tree as a tar stream (`type=tar`).
 */
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats } from "node:fs";
import { join } from "node:path";
import type { TarInput } from "../layer/tar-stream.ts";
import { Packet_PacketType as T } from "./gen/buildkit/fsutil_pb.ts";
import { unixToGoMode } from "./file-mode.ts";
import type { PacketCall } from "./fs-receive.ts";

const CHUNK = 32 * 1024;

/** glibc's dev_t split (gnu_dev_major/minor). */
const major = (d: number) => ((d >>> 8) & 0xfff) | (Math.floor(d / 2 ** 32) & ~0xfff);
const minor = (d: number) => (d & 0xff) | ((d >>> 12) & ~0xff);

interface Entry {
  rel: string;
  st: Stats;
  linkname: string;
}

/** Every entry under `root` in fsutil's order (names sorted bytewise within each directory). */
export function* walkTree(root: string, rel = ""): Generator<Entry> {
  const names = readdirSync(join(root, rel)).sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : 1));
  for (const name of names) {
    const p = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(root, p));
    yield { rel: p, st, linkname: st.isSymbolicLink() ? readlinkSync(join(root, p)) : "" };
    if (st.isDirectory()) yield* walkTree(root, p);
  }
}

/** Send the tree under `root` to a receiver; resolves when it has what it asked for. */
export async function sendDir(call: PacketCall, root: string): Promise<{ files: number; bytes: number }> {
  const files = new Map<number, string>();
  let id = 0;
  try {
    for (const e of walkTree(root)) {
      if (e.st.isFile()) files.set(id, e.rel);
      id++;
      await call.send({
        type: T.PACKET_STAT,
        stat: {
          path: e.rel,
          mode: unixToGoMode(e.st.mode),
          uid: e.st.uid,
          gid: e.st.gid,
          size: BigInt(e.st.isFile() ? e.st.size : 0),
          modTime: BigInt(Math.round(e.st.mtimeMs * 1e6)),
          linkname: e.linkname,
          devmajor: BigInt(major(e.st.rdev)),
          devminor: BigInt(minor(e.st.rdev)),
        },
      });
    }
    await call.send({ type: T.PACKET_STAT });
    const out = { files: 0, bytes: 0 };
    for await (const p of call.responses) {
      if (p.type === T.PACKET_ERR) throw new Error(`error from receiver: ${new TextDecoder().decode(p.data)}`);
      if (p.type === T.PACKET_FIN) {
        await call.send({ type: T.PACKET_FIN });
        break;
      }
      if (p.type !== T.PACKET_REQ) continue;
      const rel = files.get(p.ID);
      if (rel === undefined) throw new Error(`invalid file request ${p.ID}`);
      out.bytes += await sendFile(call, p.ID, join(root, rel));
      out.files++;
    }
    return out;
  } finally {
    call.end();
  }
}

async function sendFile(call: PacketCall, id: number, path: string): Promise<number> {
  const fd = openSync(path, "r");
  let total = 0;
  try {
    const buf = Buffer.alloc(CHUNK);
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (!n) break;
      total += n;
      await call.send({ type: T.PACKET_DATA, ID: id, data: buf.subarray(0, n) });
    }
  } finally {
    closeSync(fd);
  }
  await call.send({ type: T.PACKET_DATA, ID: id });
  return total;
}

/** The tree under `root` as tar entries (paths relative, no leading `./`, as BuildKit's tar exporter writes). */
export async function* treeAsTar(root: string): AsyncGenerator<TarInput> {
  for (const e of walkTree(root)) {
    const type = e.st.isDirectory() ? "directory" : e.st.isSymbolicLink() ? "symlink" : e.st.isFile() ? "file" : e.st.isFIFO() ? "fifo" : e.st.isCharacterDevice() ? "chardev" : e.st.isBlockDevice() ? "blockdev" : undefined;
    if (!type) continue;
    const header = {
      name: type === "directory" ? `${e.rel}/` : e.rel,
      type,
      mode: e.st.mode & 0o7777,
      uid: e.st.uid,
      gid: e.st.gid,
      size: type === "file" ? e.st.size : 0,
      mtime: Math.floor(e.st.mtimeMs / 1000),
      linkname: e.linkname,
      devmajor: major(e.st.rdev),
      devminor: minor(e.st.rdev),
    } as TarInput["header"];
    yield type === "file" ? { header, body: readChunks(join(root, e.rel)) } : { header };
  }
}

async function* readChunks(path: string): AsyncGenerator<Uint8Array> {
  const fd = openSync(path, "r");
  try {
    for (;;) {
      const buf = Buffer.alloc(CHUNK);
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (!n) return;
      yield buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}
