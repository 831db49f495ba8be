/**
 * The `local` log driver, in Docker's on-disk format: `<container dir>/local-logs/container.log`
 * holds frames `{u32 size (big-endian), LogEntry protobuf, u32 size}`, where LogEntry is moby's
 * `api/types/plugins/logdriver` message (1: source, 2: time_nano, 3: line without its newline,
 * 4: partial). The file rotates at `max-size` (default 20 MB) into `container.log.1` …
 * `container.log.<max-file − 1>` (default 5 files), rotated files gzip-compressed
 * (`container.log.1.gz`) unless `compress=false`. The compression runs at rotation, on the
 * caller's time: level 1, about 0.1 s per 20 MB here.
 */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { concatBytes } from "../bytes.ts";
import type { LogEntry, LogWriter } from "./json-log.ts";

/** Docker's defaults for the local driver. */
export const LOCAL_DEFAULTS = { maxSize: 20 * 1024 * 1024, maxFile: 5, compress: true };

/** Where the local driver keeps a container's log, given the container's directory. */
export function localLogFile(containerDir: string): string {
  return join(containerDir, "local-logs", "container.log");
}

function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}

/** One entry as a frame: size, LogEntry protobuf, size. */
export function encodeLocalEntry(e: LogEntry): Uint8Array {
  const partial = e.text.length === 0 || e.text[e.text.length - 1] !== 10;
  const line = partial ? e.text : e.text.subarray(0, e.text.length - 1);
  const source = new TextEncoder().encode(e.stream);
  const head = [0x0a, ...varint(BigInt(source.length)), ...source, 0x10, ...varint(e.timeNs), 0x1a, ...varint(BigInt(line.length))];
  const tail = partial ? [0x20, 1] : [];
  const size = head.length + line.length + tail.length;
  const out = new Uint8Array(size + 8);
  const v = new DataView(out.buffer);
  v.setUint32(0, size);
  out.set(head, 4);
  out.set(line, 4 + head.length);
  out.set(tail, 4 + head.length + line.length);
  v.setUint32(4 + size, size);
  return out;
}

/** The entries of one file's frames; a frame cut short (a crash mid-write) ends the file. */
export function decodeLocalFrames(buf: Uint8Array): LogEntry[] {
  const out: LogEntry[] = [];
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off + 8 <= buf.length) {
    const size = v.getUint32(off);
    if (off + 8 + size > buf.length || v.getUint32(off + 4 + size) !== size) break;
    const e = decodeEntry(buf.subarray(off + 4, off + 4 + size));
    if (e) out.push(e);
    off += size + 8;
  }
  return out;
}

function decodeEntry(b: Uint8Array): LogEntry | undefined {
  let i = 0;
  const readVarint = (): bigint => {
    let n = 0n;
    let shift = 0n;
    for (;;) {
      const x = b[i++];
      if (x === undefined) throw new Error("truncated varint");
      n |= BigInt(x & 0x7f) << shift;
      if (!(x & 0x80)) return n;
      shift += 7n;
    }
  };
  let stream: LogEntry["stream"] = "stdout";
  let timeNs = 0n;
  let line: Uint8Array = new Uint8Array(0);
  let partial = false;
  try {
    while (i < b.length) {
      const key = Number(readVarint());
      const field = key >> 3;
      const wire = key & 7;
      if (wire === 0) {
        const val = readVarint();
        if (field === 2) timeNs = BigInt.asIntN(64, val);
        else if (field === 4) partial = val !== 0n;
      } else if (wire === 2) {
        const len = Number(readVarint());
        const data = b.subarray(i, i + len);
        i += len;
        if (field === 1) stream = new TextDecoder().decode(data) === "stderr" ? "stderr" : "stdout";
        else if (field === 3) line = data;
      } else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else return undefined;
    }
  } catch {
    return undefined;
  }
  const text = new Uint8Array(line.length + (partial ? 0 : 1));
  text.set(line);
  if (!partial) text[line.length] = 10;
  return { stream, timeNs, text };
}

/** A local-driver log being written (by the engine, from the spool). */
export class LocalLogWriter implements LogWriter {
  private fd: number;
  private size: number;
  private readonly opts: typeof LOCAL_DEFAULTS;

  constructor(
    readonly file: string,
    opts: { maxSize?: number; maxFile?: number; compress?: boolean } = {},
  ) {
    this.opts = { ...LOCAL_DEFAULTS, ...opts };
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.fd = openSync(file, "a", 0o640);
    this.size = fstatSync(this.fd).size;
  }

  write(entries: LogEntry[]): void {
    const frames: Uint8Array[] = [];
    let len = 0;
    const flush = () => {
      if (!len) return;
      writeSync(this.fd, concatBytes(frames));
      this.size += len;
      frames.length = 0;
      len = 0;
    };
    for (const e of entries) {
      const f = encodeLocalEntry(e);
      if (this.size + len >= this.opts.maxSize) {
        flush();
        this.rotate();
      }
      frames.push(f);
      len += f.length;
    }
    flush();
  }

  private rotate(): void {
    closeSync(this.fd);
    const keep = Math.max(1, this.opts.maxFile);
    const name = (i: number) => `${this.file}.${i}${this.opts.compress ? ".gz" : ""}`;
    if (keep === 1) rmSync(this.file, { force: true });
    else {
      rmSync(name(keep - 1), { force: true });
      for (let i = keep - 2; i >= 1; i--) if (existsSync(name(i))) renameSync(name(i), name(i + 1));
      if (this.opts.compress) {
        // Written whole to a temporary name, then renamed: a crash leaves the old or the new file.
        writeFileSync(`${name(1)}.tmp`, Bun.gzipSync(readFileSync(this.file), { level: 1 }));
        renameSync(`${name(1)}.tmp`, name(1));
        rmSync(this.file, { force: true });
      } else renameSync(this.file, name(1));
    }
    this.fd = openSync(this.file, "a", 0o640);
    this.size = 0;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Every entry of a local-driver log, oldest first (rotated files, compressed or not, included). */
export function readLocalLog(file: string, maxFile = LOCAL_DEFAULTS.maxFile): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = Math.max(1, maxFile) - 1; i >= 1; i--) {
    if (existsSync(`${file}.${i}.gz`)) out.push(...decodeLocalFrames(Bun.gunzipSync(readFileSync(`${file}.${i}.gz`))));
    else if (existsSync(`${file}.${i}`)) out.push(...decodeLocalFrames(readFileSync(`${file}.${i}`)));
  }
  if (existsSync(file)) out.push(...decodeLocalFrames(readFileSync(file)));
  return out;
}
