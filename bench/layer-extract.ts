/**
 * Layer extraction throughput, side by side in one run: Bunker's layer apply (decompress +
 * secure extraction + one syncfs) against GNU tar (`-x`, `-xz`, `--zstd -x`, followed by `sync -f`
 * so both end with data on disk) and `umoci unpack`, on the same layer and the same filesystem.
 *
 * The corpus is a real root filesystem: a Debian minbase made with debootstrap when
 * BUNKER_BENCH_ROOTFS points at one (or debootstrap has been run into bench/.cache/minbase),
 * otherwise /usr/share/doc and /usr/lib/python3 of this machine, which have a similar mix of small
 * text files and larger binaries.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { applyLayer } from "../src/core/layer/apply.ts";
import { decompressStream } from "../src/core/layer/compression.ts";
import { linuxSys } from "../src/core/sys/sys.ts";
import { summary } from "./lib.ts";

const RUNS = 3;
const sh = (cmd: string) => {
  const r = Bun.spawnSync(["sh", "-c", cmd], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd}: ${r.stderr.toString()}`);
};

async function* fileStream(path: string): AsyncGenerator<Uint8Array> {
  for await (const c of Bun.file(path).stream()) yield c;
}

/** Run the suite on the disk (ext4 here) and on tmpfs; returns the markdown section. */
export async function layerExtractSuite(): Promise<string> {
  const bases = process.env.BUNKER_BENCH_DIR ? [process.env.BUNKER_BENCH_DIR] : ["/var/tmp", ...(existsSync("/dev/shm") ? ["/dev/shm"] : [])];
  let md = "";
  for (const base of bases) md += await extractOn(base);
  return md;
}

async function extractOn(base: string): Promise<string> {
  const cacheRootfs = resolve(import.meta.dir, ".cache/minbase");
  const rootfs = process.env.BUNKER_BENCH_ROOTFS ?? (existsSync(cacheRootfs) ? cacheRootfs : undefined);
  const work = mkdtempSync(join(base, "bunker-bench-x-"));
  const sys = linuxSys();
  try {
    const tar = join(work, "layer.tar");
    if (rootfs) sh(`tar -C ${rootfs} -cf ${tar} .`);
    else sh(`tar -C / -cf ${tar} usr/share/doc usr/lib/python3 2>/dev/null || true`);
    sh(`gzip -6 -c ${tar} > ${tar}.gz && zstd -q -3 -c ${tar} > ${tar}.zst`);
    const bytes = statSync(tar).size;
    const entries = Number(Bun.spawnSync(["sh", "-c", `tar -tf ${tar} | wc -l`]).stdout.toString().trim());
    const umoci = Bun.which("umoci") && Bun.which("skopeo");
    if (umoci) {
      // An OCI layout holding the gzip layer, for umoci.
      const { dockerArchiveFromLayer } = await import("./oci-fixture.ts");
      await dockerArchiveFromLayer(`${tar}.gz`, tar, join(work, "img.tar"));
      sh(`skopeo copy -q docker-archive:${join(work, "img.tar")} oci:${join(work, "oci")}:x`);
    }
    const out = () => {
      const d = join(work, `out-${Math.random().toString(36).slice(2)}`);
      mkdirSync(d);
      return d;
    };
    const methods: [string, string, (dest: string) => Promise<void> | void][] = [];
    for (const [codec, file, tarFlag] of [["plain", tar, ""], ["gzip", `${tar}.gz`, "-z"], ["zstd", `${tar}.zst`, "--zstd"]] as const) {
      methods.push([codec, "GNU tar -x + sync -f (peer)", (d) => sh(`tar ${tarFlag} -xf ${file} -C ${d} && sync -f ${d}`)]);
      methods.push([codec, "bunker apply (syncfs)", async (d) => {
        const { stream } = await decompressStream(fileStream(file));
        await applyLayer(sys, d, stream, { whiteouts: "remove" });
      }]);
    }
    if (umoci) methods.push(["gzip", "umoci unpack (peer)", (d) => sh(`umoci unpack --image ${join(work, "oci")}:x ${d}/b >/dev/null && sync -f ${d}`)]);
    const results: { codec: string; name: string; ms: number }[] = [];
    for (let r = 0; r < RUNS; r++) {
      for (const [codec, name, fn] of methods) {
        const d = out();
        sh("sync");
        const t0 = performance.now();
        await fn(d);
        results.push({ codec, name, ms: performance.now() - t0 });
        rmSync(d, { recursive: true, force: true });
      }
    }
    const fsType = Bun.spawnSync(["stat", "-f", "-c", "%T", work]).stdout.toString().trim();
    let md = `## Layer extraction (${base})\n\nSuite \`bench/layer-extract.ts\`: ${(bytes / 1e6).toFixed(0)} MB, ${entries} entries (${rootfs ? `rootfs ${rootfs}` : "/usr/share/doc + /usr/lib/python3 of this machine"}), extracted into ${fsType} at ${base}; median of ${RUNS}; every method ends with its data synced.\n\n`;
    md += `| layer | method | median ms | MB/s | entries/s | bunker time ÷ peer time (< 1: bunker faster) |\n|---|---|---|---|---|---|\n`;
    const med = (codec: string, name: string) => summary(results.filter((x) => x.codec === codec && x.name === name).map((x) => x.ms)).median;
    for (const codec of ["plain", "gzip", "zstd"]) {
      const names = [...new Set(results.filter((x) => x.codec === codec).map((x) => x.name))];
      const ours = med(codec, "bunker apply (syncfs)");
      for (const n of names) {
        const m = med(codec, n);
        md += `| ${codec} | ${n} | ${m.toFixed(0)} | ${(bytes / 1e6 / (m / 1000)).toFixed(0)} | ${Math.round(entries / (m / 1000))} | ${n.startsWith("bunker") ? "" : (ours / m).toFixed(2)} |\n`;
      }
    }
    return md + "\n";
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) console.log(await layerExtractSuite());
