/**
 * The json-file log driver, in Docker's on-disk format: one JSON object per line,
 * `{"log":"<text>","stream":"stdout"|"stderr","time":"<RFC 3339 with nanoseconds>"}`, a line per
 * output line (its "\n" kept), lines longer than 16 kB cut into several entries, the file rotated
 * at `max-size` into `<file>.1` … `<file>.<max-file − 1>`. Written from the monitor's spool
 * records, with the times the monitor took when the bytes arrived.
 */
import { ignored } from "../log.ts";
import { closeSync, existsSync, fstatSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { concatBytes } from "../bytes.ts";
import type { SpoolRecord } from "./spool.ts";

/** Docker's cap on one log entry (bufio's 16 kB in the copier). */
export const MAX_ENTRY = 16 * 1024;

/** One log entry. */
export interface LogEntry {
  stream: "stdout" | "stderr";
  /** Nanoseconds since the epoch. */
  timeNs: bigint;
  text: Uint8Array;
}

import { parseRfc3339Nano, rfc3339Nano } from "../format/time.ts";

export { parseRfc3339Nano, rfc3339Nano };

/** Splits spool records into log entries: at newlines, at MAX_ENTRY, per stream. */
export class LineSplitter {
  private readonly pending: Record<1 | 2, { bytes: Uint8Array[]; length: number; timeNs: bigint }> = {
    1: { bytes: [], length: 0, timeNs: 0n },
    2: { bytes: [], length: 0, timeNs: 0n },
  };

  /** The complete entries `rec` finishes. */
  push(rec: SpoolRecord): LogEntry[] {
    const out: LogEntry[] = [];
    const p = this.pending[rec.stream];
    const stream = rec.stream === 1 ? "stdout" : "stderr";
    let data = rec.data;
    while (data.length) {
      if (p.length === 0) p.timeNs = rec.timeNs;
      const nl = data.indexOf(10);
      const room = MAX_ENTRY - p.length;
      const take = nl >= 0 && nl < room ? nl + 1 : Math.min(room, data.length);
      p.bytes.push(data.subarray(0, take));
      p.length += take;
      data = data.subarray(take);
      if ((nl >= 0 && take === nl + 1) || p.length >= MAX_ENTRY) out.push(this.take(rec.stream, stream));
    }
    return out;
  }

  /** What is left without a newline (at the end of the output). */
  flush(): LogEntry[] {
    return ([1, 2] as const).filter((s) => this.pending[s].length).map((s) => this.take(s, s === 1 ? "stdout" : "stderr"));
  }

  private take(s: 1 | 2, stream: "stdout" | "stderr"): LogEntry {
    const p = this.pending[s];
    const text = new Uint8Array(p.length);
    let off = 0;
    for (const b of p.bytes) {
      text.set(b, off);
      off += b.length;
    }
    p.bytes = [];
    p.length = 0;
    return { stream, timeNs: p.timeNs, text };
  }
}

const decoder = new TextDecoder(); // invalid UTF-8 becomes U+FFFD, as Go's encoder writes it

/** One entry as a line of the log file. */
export function encodeEntry(e: LogEntry): string {
  return `${JSON.stringify({ log: decoder.decode(e.text), stream: e.stream, time: rfc3339Nano(e.timeNs) })}\n`;
}

/** Where a log driver writes entries (json-file, local). */
export interface LogWriter {
  write(entries: LogEntry[]): void;
  close(): void;
}

/** A json-file log being written (by the engine, from the spool). */
export class JsonLogWriter implements LogWriter {
  private fd: number;
  private size: number;

  constructor(
    readonly file: string,
    private readonly opts: { maxSize?: number; maxFile?: number } = {},
  ) {
    this.fd = openSync(file, "a", 0o640);
    this.size = fstatSync(this.fd).size;
  }

  write(entries: LogEntry[]): void {
    if (!entries.length) return;
    const enc = new TextEncoder();
    // Lines are batched into one write, cut where Docker's writer would rotate: before a line,
    // once the file has reached max-size (so a file holds at least max-size, the last line whole).
    let batch: Uint8Array[] = [];
    let batchLen = 0;
    const flush = () => {
      if (!batchLen) return;
      writeSync(this.fd, concatBytes(batch));
      this.size += batchLen;
      batch = [];
      batchLen = 0;
    };
    for (const e of entries) {
      const line = enc.encode(encodeEntry(e));
      if (this.opts.maxSize && this.size + batchLen >= this.opts.maxSize) {
        flush();
        this.rotate();
      }
      batch.push(line);
      batchLen += line.length;
    }
    flush();
  }

  private rotate(): void {
    closeSync(this.fd);
    const keep = Math.max(1, this.opts.maxFile ?? 1);
    if (keep === 1) rmSync(this.file, { force: true });
    else {
      rmSync(`${this.file}.${keep - 1}`, { force: true });
      for (let i = keep - 2; i >= 1; i--) if (existsSync(`${this.file}.${i}`)) renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
      renameSync(this.file, `${this.file}.1`);
    }
    this.fd = openSync(this.file, "a", 0o640);
    this.size = 0;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Every entry of the log, oldest first (rotated files included). */
export function readJsonLog(file: string, maxFile = 1): LogEntry[] {
  const files: string[] = [];
  for (let i = Math.max(1, maxFile) - 1; i >= 1; i--) if (existsSync(`${file}.${i}`)) files.push(`${file}.${i}`);
  if (existsSync(file)) files.push(file);
  const out: LogEntry[] = [];
  const enc = new TextEncoder();
  for (const f of files) {
    for (const line of readFileSync(f, "utf8").split("\n")) {
      if (!line) continue;
      try {
        const o = JSON.parse(line) as { log: string; stream: string; time: string };
        out.push({ stream: o.stream === "stderr" ? "stderr" : "stdout", timeNs: parseRfc3339Nano(o.time), text: enc.encode(o.log) });
      } catch (err) {
        ignored("a line cut by a crash: skipped, as Docker's reader does", err);
      }
    }
  }
  return out;
}
