/**
 * Log rotation as Docker's writer does it (moby's loggerutils.LogFile): a line is written whole,
 * and the file is rotated before the next line once it holds max-size or more. So each rotated
 * file holds at least max-size, and `docker logs` shows as many lines as Docker's would. The
 * oracle below is that rule, applied to the encoded sizes of the same entries.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeEntry, JsonLogWriter, type LogEntry, readJsonLog } from "../../src/core/container/json-log.ts";
import { encodeLocalEntry, LocalLogWriter, readLocalLog } from "../../src/core/container/local-log.ts";

const dir = mkdtempSync(join(tmpdir(), "bunker-log-rotation-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const enc = new TextEncoder();
const lines = Array.from({ length: 100 }, (_, i): LogEntry => ({ stream: "stdout", timeNs: 1_700_000_000_123_456_789n + BigInt(i) * 1000n, text: enc.encode(`line-${String(i).padStart(3, "0")}-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n`) }));

/** The lines Docker keeps: files filled until they reach maxSize, the newest maxFile of them. */
function dockerKeeps(sizes: number[], maxSize: number, maxFile: number): number {
  const files: number[] = [0];
  let size = 0;
  for (const s of sizes) {
    if (size >= maxSize) {
      files.push(0);
      size = 0;
    }
    files[files.length - 1]!++;
    size += s;
  }
  return files.slice(-maxFile).reduce((a, b) => a + b, 0);
}

describe("log rotation keeps what max-size × max-file allows, as Docker's writer", () => {
  for (const [maxSize, maxFile] of [
    [1024, 3],
    [1000, 2],
    [1500, 1],
  ] as const) {
    test(`json-file, max-size ${maxSize}, max-file ${maxFile}`, () => {
      const file = join(dir, `json-${maxSize}-${maxFile}`, "c-json.log");
      require("node:fs").mkdirSync(join(dir, `json-${maxSize}-${maxFile}`));
      const w = new JsonLogWriter(file, { maxSize, maxFile });
      for (let i = 0; i < lines.length; i += 7) w.write(lines.slice(i, i + 7)); // batches, as the pump writes
      w.close();
      const kept = readJsonLog(file, maxFile);
      const want = dockerKeeps(
        lines.map((e) => enc.encode(encodeEntry(e)).length),
        maxSize,
        maxFile,
      );
      expect(kept.length).toBe(want);
      expect(new TextDecoder().decode(kept.at(-1)!.text)).toBe(new TextDecoder().decode(lines.at(-1)!.text));
    });
    test(`local, max-size ${maxSize}, max-file ${maxFile}`, () => {
      const file = join(dir, `local-${maxSize}-${maxFile}`, "container.log");
      const w = new LocalLogWriter(file, { maxSize, maxFile, compress: false });
      for (let i = 0; i < lines.length; i += 7) w.write(lines.slice(i, i + 7));
      w.close();
      expect(readLocalLog(file, maxFile).length).toBe(dockerKeeps(lines.map((e) => encodeLocalEntry(e).length), maxSize, maxFile));
    });
  }
});
