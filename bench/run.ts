/**
 * Run every benchmark suite and write bench/RESULTS.md. Suites return markdown sections; ratios
 * against peers measured in the same run are the numbers to compare, since absolute times on
 * shared machines are noisy.
 *   bun bench/run.ts            all suites
 *   bun bench/run.ts daemon     one suite
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { daemonSuite } from "./daemon.ts";
import { decompressSuite } from "./decompress.ts";
import { layerExtractSuite } from "./layer-extract.ts";
import { machineLine } from "./lib.ts";

const suites: Record<string, () => Promise<string>> = { daemon: daemonSuite, decompress: decompressSuite, "layer-extract": layerExtractSuite };
const wanted = process.argv.slice(2);
const chosen = wanted.length ? wanted : Object.keys(suites);

let md = `# Benchmark results\n\nWritten by \`npm run bench\` (\`bench/run.ts\`) on ${new Date().toISOString()}.\nMachine: ${machineLine()}.\n\n`;
for (const name of chosen) {
  const suite = suites[name];
  if (!suite) throw new Error(`unknown suite ${name}; known: ${Object.keys(suites).join(", ")}`);
  console.error(`running ${name}…`);
  md += await suite();
}
writeFileSync(join(import.meta.dir, "RESULTS.md"), md);
console.log(md);
