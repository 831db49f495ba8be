/**
 * fsutil's DiffCopy, receiving side (src/core/buildkit/fs-receive.ts), driven by a scripted
 * sender: a tree arrives whole (modes, links, times, data by request), and a hostile sender
 * cannot write outside the destination (`..`, absolute paths, a child below a symlink, a
 * duplicate entry, data for a file never announced).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { receiveDir, type PacketCall } from "../../src/core/buildkit/fs-receive.ts";
import { GO_MODE } from "../../src/core/buildkit/file-mode.ts";
import { Packet_PacketType as T, type Packet } from "../../src/core/buildkit/gen/buildkit/fsutil_pb.ts";
import { create } from "@bufbuild/protobuf";
import { PacketSchema } from "../../src/core/buildkit/gen/buildkit/fsutil_pb.ts";

const root = mkdtempSync(join(tmpdir(), "fs-receive-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const dest = () => {
  const d = join(root, `d${n++}`);
  mkdirSync(d);
  return d;
};

type Stat = { path: string; mode: number; size?: number; linkname?: string };
const enc = new TextEncoder();

/** A sender that announces `entries`, then answers each REQ with `files[path]` in two chunks. */
function sender(entries: Stat[], files: Record<string, string> = {}, extra: Packet[] = []) {
  const sent: Packet[] = [];
  const queue: Packet[] = [];
  let wake: (() => void) | undefined;
  const push = (p: Packet) => {
    queue.push(p);
    wake?.();
  };
  for (const e of entries) push(create(PacketSchema, { type: T.PACKET_STAT, stat: { path: e.path, mode: e.mode, size: BigInt(e.size ?? 0), modTime: 1_700_000_000_000_000_000n, linkname: e.linkname ?? "" } }));
  for (const p of extra) push(p);
  push(create(PacketSchema, { type: T.PACKET_STAT }));
  const call: PacketCall = {
    async send(p) {
      const pkt = create(PacketSchema, p);
      sent.push(pkt);
      if (pkt.type === T.PACKET_REQ) {
        const e = entries[pkt.ID]!;
        const body = enc.encode(files[e.path] ?? "");
        push(create(PacketSchema, { type: T.PACKET_DATA, ID: pkt.ID, data: body.slice(0, 3) }));
        push(create(PacketSchema, { type: T.PACKET_DATA, ID: pkt.ID, data: body.slice(3) }));
        push(create(PacketSchema, { type: T.PACKET_DATA, ID: pkt.ID }));
      }
      if (pkt.type === T.PACKET_FIN) push(create(PacketSchema, { type: T.PACKET_FIN }));
    },
    end() {},
    responses: {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          while (queue.length) yield queue.shift()!;
          await new Promise<void>((r) => (wake = r));
        }
      },
    },
  };
  return { call, sent };
}

describe("receiving a tree", () => {
  test("directories, files by request, symlinks, hard links, modes and times", async () => {
    const d = dest();
    const { call, sent } = sender(
      [
        { path: "a", mode: GO_MODE.dir | 0o750 },
        { path: "a/f.txt", mode: 0o640, size: 11 },
        { path: "a/hard", mode: 0o640, linkname: "a/f.txt" },
        { path: "a/link", mode: GO_MODE.symlink | 0o777, linkname: "f.txt" },
        { path: "empty", mode: 0o600 },
        { path: "run.sh", mode: GO_MODE.setuid | 0o755, size: 9 },
      ],
      { "a/f.txt": "hello world", "run.sh": "#!/bin/sh" },
    );
    const got = await receiveDir(call, d);
    expect(got).toEqual({ entries: 6, files: 2, bytes: 20 });
    expect(readFileSync(join(d, "a/f.txt"), "utf8")).toBe("hello world");
    expect(lstatSync(join(d, "a")).mode & 0o7777).toBe(0o750);
    expect(lstatSync(join(d, "a/f.txt")).mode & 0o7777).toBe(0o640);
    expect(lstatSync(join(d, "run.sh")).mode & 0o7777).toBe(0o4755);
    expect(lstatSync(join(d, "a/hard")).ino).toBe(lstatSync(join(d, "a/f.txt")).ino);
    expect(readlinkSync(join(d, "a/link"))).toBe("f.txt");
    expect(lstatSync(join(d, "a/f.txt")).mtimeMs).toBe(1_700_000_000_000);
    // Only regular files with bytes are requested, by their index in the walk; then FIN.
    expect(sent.filter((p) => p.type === T.PACKET_REQ).map((p) => p.ID)).toEqual([1, 5]);
    expect(sent.at(-1)!.type).toBe(T.PACKET_FIN);
  });
});

describe("a hostile sender", () => {
  const refuse = async (entries: Stat[], message: string, extra: Packet[] = []) => {
    const d = dest();
    await expect(receiveDir(sender(entries, { "x/y": "boom" }, extra).call, d)).rejects.toThrow(message);
    expect(existsSync(join(root, "escaped"))).toBe(false);
  };
  test("`..` and absolute paths are refused", async () => {
    await refuse([{ path: "../escaped", mode: 0o644 }], "invalid path");
    await refuse([{ path: "a/../../escaped", mode: 0o644 }], "invalid path");
    await refuse([{ path: "a//b", mode: 0o644 }], "invalid path");
  });
  test("a child below a symlink (or below nothing announced) is refused", async () => {
    await refuse(
      [
        { path: "x", mode: GO_MODE.symlink | 0o777, linkname: root },
        { path: "x/escaped", mode: 0o644 },
      ],
      "its parent was not sent as a directory",
    );
    await refuse([{ path: "nodir/file", mode: 0o644 }], "its parent was not sent as a directory");
  });
  test("a second entry on a path is refused; data for an unknown file is refused; a hard link out is refused", async () => {
    await refuse(
      [
        { path: "x", mode: GO_MODE.symlink | 0o777, linkname: join(root, "escaped") },
        { path: "x", mode: 0o644, size: 4 },
      ],
      "EEXIST",
    );
    await refuse([{ path: "f", mode: 0o644 }], "invalid file request 7", [create(PacketSchema, { type: T.PACKET_DATA, ID: 7, data: enc.encode("zz") })]);
    await refuse([{ path: "h", mode: 0o644, linkname: "../escaped" }], "invalid path");
  });
  test("an error from the sender ends the transfer with its message", async () => {
    await refuse([], "error from sender: walk failed", [create(PacketSchema, { type: T.PACKET_ERR, data: enc.encode("walk failed") })]);
  });
});
