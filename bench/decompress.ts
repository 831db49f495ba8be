/**
 * Layer decompression throughput: Bun's native zlib/zstd (node:zlib streams, as the layer code
 * uses them), Bun's whole-buffer calls, the web DecompressionStream and fflate's streaming
 * Gunzip, beside the `gzip -dc` and `zstd -dc` programs, on the same ~150 MB corpus in one run.
 * The faster of native and fflate is what `src/core/layer/compression.ts` uses.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Gunzip } from "fflate";
import { decompressStream } from "../src/core/layer/compression.ts";
import { summary } from "./lib.ts";

const CORPUS_BYTES = 150 * 1024 * 1024;
const RUNS = 3;

async function timed(fn: () => Promise<number> | number): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  const bytes = await fn();
  return { ms: performance.now() - t0, bytes };
}

function chunks(buf: Uint8Array, size = 256 * 1024): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

async function count(s: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const c of s) n += c.length;
  return n;
}

async function* fileChunks(path: string): AsyncGenerator<Uint8Array> {
  for await (const c of Bun.file(path).stream()) yield c;
}

/** Run the suite; returns the markdown section. */
export async function decompressSuite(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "bunker-bench-z-"));
  try {
    const src = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"].find(existsSync)!;
    const tar = join(dir, "corpus.tar");
    Bun.spawnSync(["sh", "-c", `tar -cf - ${src} 2>/dev/null | head -c ${CORPUS_BYTES} > ${tar}`]);
    Bun.spawnSync(["sh", "-c", `gzip -6 -c ${tar} > ${tar}.gz && zstd -q -3 -c ${tar} > ${tar}.zst`]);
    const raw = statSync(tar).size;
    const gz = readFileSync(`${tar}.gz`);
    const zst = readFileSync(`${tar}.zst`);
    const methods: [string, string, () => Promise<number> | number][] = [
      ["gzip", "`gzip -dc` (peer)", () => { Bun.spawnSync(["sh", "-c", `gzip -dc ${tar}.gz > /dev/null`]); return raw; }],
      ["gzip", "node:zlib stream (Bun native; used)", async () => count((await decompressStream(fileChunks(`${tar}.gz`))).stream)],
      ["gzip", "Bun.gunzipSync (whole buffer)", () => Bun.gunzipSync(gz).length],
      ["gzip", "DecompressionStream('gzip')", () => count(new Blob([gz]).stream().pipeThrough(new DecompressionStream("gzip")) as unknown as AsyncIterable<Uint8Array>)],
      ["gzip", "fflate Gunzip (streaming)", () => {
        let n = 0;
        const g = new Gunzip((d) => { n += d.length; });
        const cs = chunks(gz);
        cs.forEach((c, i) => g.push(c, i === cs.length - 1));
        return n;
      }],
      ["zstd", "`zstd -dc` (peer)", () => { Bun.spawnSync(["sh", "-c", `zstd -q -dc ${tar}.zst > /dev/null`]); return raw; }],
      ["zstd", "node:zlib stream (Bun native; used)", async () => count((await decompressStream(fileChunks(`${tar}.zst`))).stream)],
      ["zstd", "Bun.zstdDecompressSync (whole buffer)", () => Bun.zstdDecompressSync(zst).length],
    ];
    const results: { codec: string; name: string; ms: number }[] = [];
    for (let r = 0; r < RUNS; r++) {
      for (const [codec, name, fn] of methods) {
        const t = await timed(fn);
        if (t.bytes !== raw) throw new Error(`${name}: produced ${t.bytes} bytes, expected ${raw}`);
        results.push({ codec, name, ms: t.ms });
      }
    }
    const mb = raw / 1e6;
    let md = `## Layer decompression\n\nSuite \`bench/decompress.ts\`: ${mb.toFixed(0)} MB tar of \`${src}\` (gzip -6: ${(gz.length / 1e6).toFixed(0)} MB, zstd -3: ${(zst.length / 1e6).toFixed(0)} MB); median of ${RUNS} runs; MB/s of decompressed output; ratio against the command-line peer.\n\n`;
    md += `| codec | method | median ms | MB/s | ratio vs CLI |\n|---|---|---|---|---|\n`;
    for (const codec of ["gzip", "zstd"]) {
      const names = [...new Set(results.filter((x) => x.codec === codec).map((x) => x.name))];
      const med = (n: string) => summary(results.filter((x) => x.codec === codec && x.name === n).map((x) => x.ms)).median;
      const peer = med(names[0]!);
      for (const n of names) md += `| ${codec} | ${n} | ${med(n).toFixed(0)} | ${(mb / (med(n) / 1000)).toFixed(0)} | ${(peer / med(n)).toFixed(2)}× |\n`;
    }
    return md + "\n";
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) console.log(await decompressSuite());
