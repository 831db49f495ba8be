import { describe, expect, test } from "bun:test";
import { gzipSync } from "node:zlib";
import { compressStream, decompressStream, detectCompression } from "../../src/core/layer/compression.ts";

const data = new Uint8Array(300_000).map((_, i) => (i * 7) % 251);
async function* chunked(b: Uint8Array, size = 1000) {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}
const concat = async (s: AsyncIterable<Uint8Array>) => Buffer.concat(await Array.fromAsync(s));

describe("layer compression", () => {
  test("detected from content", () => {
    expect(detectCompression(new Uint8Array([0x1f, 0x8b, 8]))).toBe("gzip");
    expect(detectCompression(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd]))).toBe("zstd");
    expect(detectCompression(new TextEncoder().encode("file.txt\0\0\0"))).toBe("none");
    expect(() => detectCompression(new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]))).toThrow("unsupported layer compression: xz");
    expect(() => detectCompression(new TextEncoder().encode("BZh91AY"))).toThrow("unsupported layer compression: bzip2");
  });

  for (const c of ["gzip", "zstd"] as const) {
    test(`${c} round trip, streamed in small chunks`, async () => {
      const packed = await concat(compressStream(chunked(data), c));
      expect(packed.length).toBeLessThan(data.length);
      const { compression, stream } = await decompressStream(chunked(packed, 7));
      expect(compression).toBe(c);
      expect(Buffer.compare(await concat(stream), Buffer.from(data))).toBe(0);
    });
  }

  test("plain passes through untouched", async () => {
    const { compression, stream } = await decompressStream(chunked(data, 3));
    expect(compression).toBe("none");
    expect((await concat(stream)).length).toBe(data.length);
  });

  test("a corrupt or truncated gzip layer is a clear error", async () => {
    const gz = gzipSync(data);
    const corrupt = Buffer.from(gz);
    corrupt[Math.floor(gz.length / 2)]! ^= 0xff;
    await expect(decompressStream(chunked(corrupt)).then((r) => concat(r.stream))).rejects.toThrow("corrupt gzip layer");
    await expect(decompressStream(chunked(gz.subarray(0, gz.length - 100))).then((r) => concat(r.stream))).rejects.toThrow("corrupt gzip layer");
  });
});
