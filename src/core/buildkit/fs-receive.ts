/**
 * The receiving side of fsutil's DiffCopy (a BuildKit session's `FileSync`): the sender streams
 * a STAT per entry in walk order (parents first) and an empty STAT at the end; we ask for each
 * regular file's bytes by its index (REQ), it answers with DATA packets ending in an empty one,
 * and a FIN from us is answered by a FIN. Everything lands under `dest` and nowhere else: paths
 * are checked, and a child is only written below a directory this transfer made.
 */
import { chmodSync, closeSync, constants, linkSync, mkdirSync, openSync, symlinkSync, utimesSync, writeSync } from "node:fs";
import { join, posix } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Packet, Packet_PacketType as T, type PacketSchema, type Stat } from "./gen/buildkit/fsutil_pb.ts";
import { goKind, goToUnixPerm } from "./file-mode.ts";

/** One DiffCopy call as the receiver sees it. */
export interface PacketCall {
  send(p: MessageInitShape<typeof PacketSchema>): Promise<void>;
  end(): void;
  readonly responses: AsyncIterable<Packet>;
}

/** What a transfer brought. */
export interface Received {
  entries: number;
  files: number;
  bytes: number;
}

/** A protocol or path error in a transfer. */
export class TransferError extends Error {}

/** A wire path made relative and checked: no absolute, `..` or empty parts. */
export function checkedPath(p: string): string {
  if (!p || p.includes("\0")) throw new TransferError(`invalid path in transfer: ${JSON.stringify(p)}`);
  const n = posix.normalize(p.replace(/^\/+/, ""));
  if (n === "." || n === ".." || n.startsWith("../") || posix.isAbsolute(n) || n !== p.replace(/^\/+/, "").replace(/\/+$/, "")) throw new TransferError(`invalid path in transfer: ${JSON.stringify(p)}`);
  return n;
}

/** Receive a directory tree into `dest` (which must exist and be empty). */
export async function receiveDir(call: PacketCall, dest: string): Promise<Received> {
  const dirs = new Map<string, Stat>([["", undefined as unknown as Stat]]);
  const wanted = new Map<number, { path: string; stat: Stat; fd?: number }>();
  const out: Received = { entries: 0, files: 0, bytes: 0 };
  let index = 0;
  let walked = false;
  let finSent = false;
  const sendFin = async () => {
    if (finSent) return;
    finSent = true;
    await call.send({ type: T.PACKET_FIN });
  };
  try {
    for await (const p of call.responses) {
      if (p.type === T.PACKET_ERR) throw new TransferError(`error from sender: ${new TextDecoder().decode(p.data)}`);
      if (p.type === T.PACKET_STAT) {
        if (walked) throw new TransferError("a STAT after the end of the walk");
        if (!p.stat) {
          walked = true;
          for (const id of wanted.keys()) await call.send({ type: T.PACKET_REQ, ID: id });
          if (!wanted.size) await sendFin();
          continue;
        }
        const id = index++;
        const path = checkedPath(p.stat.path);
        if (!dirs.has(posix.dirname(path) === "." ? "" : posix.dirname(path))) throw new TransferError(`${path}: its parent was not sent as a directory before it`);
        out.entries++;
        if (place(dest, path, p.stat, dirs)) wanted.set(id, { path, stat: p.stat });
        continue;
      }
      if (p.type === T.PACKET_DATA) {
        const f = wanted.get(p.ID);
        if (!f) throw new TransferError(`invalid file request ${p.ID}`);
        const full = join(dest, f.path);
        // Made empty at its STAT (so hard links to it can be made before its bytes come).
        f.fd ??= openSync(full, constants.O_WRONLY | constants.O_NOFOLLOW);
        if (p.data.length) {
          writeSync(f.fd, p.data);
          out.bytes += p.data.length;
          continue;
        }
        closeSync(f.fd);
        setTimes(full, f.stat);
        wanted.delete(p.ID);
        out.files++;
        if (!wanted.size && walked) await sendFin();
        continue;
      }
      if (p.type === T.PACKET_FIN) break;
    }
    if (!walked || wanted.size) throw new TransferError("the sender closed the transfer before it was complete");
  } finally {
    for (const f of wanted.values()) if (f.fd !== undefined) closeSync(f.fd);
    call.end();
  }
  // Directories last, deepest first: their modes may forbid writing and their times would move.
  for (const [path, stat] of [...dirs].reverse()) {
    if (!path) continue;
    chmodSync(join(dest, path), goToUnixPerm(stat.mode));
    setTimes(join(dest, path), stat);
  }
  return out;
}

/** Make one entry; true when it is a regular file whose bytes must be requested. */
function place(dest: string, path: string, stat: Stat, dirs: Map<string, Stat>): boolean {
  const full = join(dest, path);
  switch (goKind(stat.mode)) {
    case "dir":
      mkdirSync(full, { mode: 0o700 });
      dirs.set(path, stat);
      return false;
    case "symlink":
      symlinkSync(stat.linkname, full);
      return false;
    case "file":
      if (stat.linkname) {
        linkSync(join(dest, checkedPath(stat.linkname)), full);
        return false;
      }
      closeSync(openSync(full, "wx", goToUnixPerm(stat.mode)));
      chmodSync(full, goToUnixPerm(stat.mode));
      if (stat.size > 0n) return true;
      setTimes(full, stat);
      return false;
    default:
      // Devices, sockets and pipes carry no bytes and a build context has no use for them.
      return false;
  }
}

function setTimes(full: string, stat: Stat): void {
  const t = Number(stat.modTime) / 1e9;
  utimesSync(full, t, t);
}
