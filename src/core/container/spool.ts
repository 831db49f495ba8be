/**
 * The output spool: what a container's monitor appends, one record per read of its stdout,
 * stderr or pty (runtime-linux's relay): a 24-byte header {u8 stream (1 stdout, 2 stderr),
 * 3 zero bytes, u32 length, i64 seconds, i64 nanoseconds (CLOCK_REALTIME), little-endian}, then
 * the bytes. The engine reads it to write the container's log and to feed attached clients; it
 * never rewrites it, so a crash of either side loses nothing already written. A record cut short
 * at the end (the monitor is mid-write, or a power cut) is left for a later read.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** One spooled chunk of output. */
export interface SpoolRecord {
  stream: 1 | 2;
  /** Nanoseconds since the epoch. */
  timeNs: bigint;
  data: Uint8Array;
  /** Offset of the record after this one. */
  next: number;
}

export const SPOOL_HEADER = 24;

/** Decode the complete records in `buf` (which starts at file offset `base`); returns them and the bytes used. */
export function decodeSpool(buf: Uint8Array, base = 0): { records: SpoolRecord[]; used: number } {
  const records: SpoolRecord[] = [];
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off + SPOOL_HEADER <= buf.length) {
    const stream = buf[off]!;
    const len = v.getUint32(off + 4, true);
    if (stream !== 1 && stream !== 2) throw new Error(`spool: bad record at offset ${base + off} (stream ${stream})`);
    if (off + SPOOL_HEADER + len > buf.length) break;
    const timeNs = v.getBigInt64(off + 8, true) * 1_000_000_000n + v.getBigInt64(off + 16, true);
    records.push({ stream, timeNs, data: buf.slice(off + SPOOL_HEADER, off + SPOOL_HEADER + len), next: base + off + SPOOL_HEADER + len });
    off += SPOOL_HEADER + len;
  }
  return { records, used: off };
}

/** Read the complete records of the spool at `path` from `offset` (at most about `maxBytes` of them). */
export function readSpool(path: string, offset: number, maxBytes = 1 << 20): { records: SpoolRecord[]; next: number } {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    if ((err as { code?: string }).code === "ENOENT") return { records: [], next: offset };
    throw err;
  }
  try {
    const size = fstatSync(fd).size;
    if (size <= offset) return { records: [], next: offset };
    let want = Math.min(size - offset, maxBytes);
    for (;;) {
      const buf = new Uint8Array(want);
      const got = readSync(fd, buf, 0, want, offset);
      const { records, used } = decodeSpool(buf.subarray(0, got), offset);
      // One record bigger than the window: widen it (records are at most 16 kB plus the header).
      if (records.length === 0 && got === want && size - offset > want) {
        want *= 2;
        continue;
      }
      return { records, next: offset + used };
    }
  } finally {
    closeSync(fd);
  }
}
