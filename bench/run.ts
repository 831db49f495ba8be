/**
 * Run every benchmark suite and write bench/RESULTS.md. Suites return markdown sections; ratios
 * against peers measured in the same run are the numbers to compare, since absolute times on
 * shared machines are noisy.
 *   bun bench/run.ts            all suites
 *   bun bench/run.ts daemon     one suite (the other suites' last sections are kept)
 * Each suite's section is kept in bench/results/<suite>.md; RESULTS.md is all of them in order.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { daemonSuite } from "./daemon.ts";
import { decompressSuite } from "./decompress.ts";
import { layerExtractSuite } from "./layer-extract.ts";
import { networkSuite } from "./network.ts";
import { networkScaleSuite } from "./network-scale.ts";
import { pullSuite } from "./pull.ts";
import { buildSuite } from "./build.ts";
import { buildkitSuite } from "./buildkit.ts";
import { journalSuite } from "./journal.ts";
import { runLatencySuite } from "./run-latency.ts";
import { startLatencySuite } from "./start-latency.ts";
import { machineLine } from "./lib.ts";

const suites: Record<string, () => Promise<string>> = { daemon: daemonSuite, decompress: decompressSuite, "layer-extract": layerExtractSuite, "start-latency": startLatencySuite, "run-latency": runLatencySuite, network: networkSuite, "network-scale": networkScaleSuite, pull: pullSuite, build: buildSuite, buildkit: buildkitSuite, journal: journalSuite };
const wanted = process.argv.slice(2);
const chosen = wanted.length ? wanted : Object.keys(suites);

const sections = join(import.meta.dir, "results");
mkdirSync(sections, { recursive: true });
for (const name of chosen) {
  const suite = suites[name];
  if (!suite) throw new Error(`unknown suite ${name}; known: ${Object.keys(suites).join(", ")}`);
  console.error(`running ${name}…`);
  const section = await suite();
  writeFileSync(join(sections, `${name}.md`), `<!-- ${name}: ${new Date().toISOString()} on ${machineLine()} -->\n${section}`);
  console.log(section);
}
let md = `# Benchmark results\n\nWritten by \`npm run bench\` (\`bench/run.ts\`); each section says when it was last run.\nMachine: ${machineLine()}.\n\n`;
for (const name of Object.keys(suites)) {
  const file = join(sections, `${name}.md`);
  if (!existsSync(file)) continue;
  const text = readFileSync(file, "utf8");
  const stamp = /^<!-- [^:]+: (\S+) on (.*) -->\n/.exec(text);
  md += stamp ? `${text.slice(stamp[0].length).replace(/\n*$/, "")}\n\n_(suite \`${name}\` run ${stamp[1]})_\n\n` : text;
}
writeFileSync(join(import.meta.dir, "RESULTS.md"), md);
