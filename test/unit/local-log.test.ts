/**
 * The `local` log driver's files: Docker's framed LogEntry protobufs (round trip, partial lines,
 * a frame cut by a crash), rotation at max-size into gzip-compressed files, and reading back.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LogEntry } from "../../src/core/container/json-log.ts";
import { decodeLocalFrames, encodeLocalEntry, LocalLogWriter, readLocalLog } from "../../src/core/container/local-log.ts";

const dir = mkdtempSync(join(tmpdir(), "bunker-local-log-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const enc = new TextEncoder();
const entry = (text: string, stream: LogEntry["stream"] = "stdout", timeNs = 1_700_000_000_123_456_789n): LogEntry => ({ stream, timeNs, text: enc.encode(text) });

describe("local log driver", () => {
  test("a frame is size, LogEntry, size; the newline is dropped and a line without one is partial", () => {
    const f = encodeLocalEntry(entry("hi\n"));
    const v = new DataView(f.buffer);
    const size = v.getUint32(0);
    expect(f.length).toBe(size + 8);
    expect(v.getUint32(4 + size)).toBe(size);
    // field 1 "stdout", field 2 varint time, field 3 "hi" (no newline), no field 4
    expect([...f.subarray(4, 12)]).toEqual([0x0a, 6, ...enc.encode("stdout")]);
    expect([...f.subarray(4 + size - 4, 4 + size)]).toEqual([0x1a, 2, ...enc.encode("hi")]);
    const partial = encodeLocalEntry(entry("no newline", "stderr"));
    expect([...partial.subarray(-6, -4)]).toEqual([0x20, 1]);
    const back = decodeLocalFrames(new Uint8Array([...f, ...partial]));
    expect(back.map((e) => [e.stream, new TextDecoder().decode(e.text), e.timeNs])).toEqual([
      ["stdout", "hi\n", 1_700_000_000_123_456_789n],
      ["stderr", "no newline", 1_700_000_000_123_456_789n],
    ]);
    // A frame cut short by a crash ends the file; what came before stays readable.
    expect(decodeLocalFrames(new Uint8Array([...f, ...partial.subarray(0, 10)])).length).toBe(1);
  });

  test("rotation at max-size keeps max-file files, older ones gzip-compressed, and all read back in order", () => {
    const file = join(dir, "a", "container.log");
    const w = new LocalLogWriter(file, { maxSize: 400, maxFile: 3 });
    for (let i = 0; i < 100; i++) w.write([entry(`line-${i}\n`, "stdout", BigInt(i))]);
    w.close();
    expect(readdirSync(join(dir, "a")).sort()).toEqual(["container.log", "container.log.1.gz", "container.log.2.gz"]);
    const lines = readLocalLog(file, 3).map((e) => new TextDecoder().decode(e.text));
    expect(lines.at(-1)).toBe("line-99\n");
    expect(lines.length).toBeGreaterThan(10);
    expect(lines.length).toBeLessThan(100); // the oldest were rotated away
    expect(lines).toEqual([...lines].sort((a, b) => Number(a.slice(5, -1)) - Number(b.slice(5, -1)))); // oldest first
  });

  test("compress=false keeps rotated files as they are", () => {
    const file = join(dir, "b", "container.log");
    const w = new LocalLogWriter(file, { maxSize: 200, maxFile: 2, compress: false });
    for (let i = 0; i < 10; i++) w.write([entry(`x-${i}\n`)]);
    w.close();
    expect(existsSync(`${file}.1`)).toBe(true);
    expect(readLocalLog(file, 2).at(-1)!.text).toEqual(enc.encode("x-9\n"));
    writeFileSync(`${file}.1`, "garbage that is not a frame");
    expect(readLocalLog(file, 2).length).toBeGreaterThan(0); // a damaged old file does not hide the current one
  });
});
