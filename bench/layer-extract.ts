/**
 * Layer extraction throughput, side by side in one run: Bunker's layer apply (decompress +
 * secure extraction + one syncfs) against GNU tar (`-x`, `-xz`, `--zstd -x`, followed by `sync -f`
 * so both end with data on disk) and `umoci unpack`, on the same layer and the same filesystem.
 *
 * "bunker apply" is the extraction alone into a directory; "bunker register, <driver>" is the
 * engine's whole path for a pulled layer through that storage driver (decompress, sha256 of the
 * tar for the diff ID, apply, syncfs, commit). Filesystems: ext4 on disk, tmpfs, and btrfs on a
 * loop device (root only).
 *
 * The corpus is a real root filesystem: a Debian minbase made with debootstrap by
 * `bun bench/setup-minbase.ts` into bench/.cache/minbase (or BUNKER_BENCH_ROOTFS), otherwise
 * /usr/share/doc and /usr/lib/python3 of this machine, which have a similar mix of small text
 * files and larger binaries.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { applyLayer } from "../src/core/layer/apply.ts";
import { decompressStream } from "../src/core/layer/compression.ts";
import { linuxSys } from "../src/core/sys/sys.ts";
import type { Digest } from "../src/core/content/digest.ts";
import type { StorageDriver } from "../src/core/storage/driver.ts";
import { filesystemType } from "../src/core/storage/fs-info.ts";
import { LayerStore } from "../src/core/storage/layer-store.ts";
import { createBtrfsDriver } from "../src/plugins/storage-btrfs/index.ts";
import { createOverlayDriver } from "../src/plugins/storage-overlay/index.ts";
import { createVfsDriver } from "../src/plugins/storage-vfs/index.ts";
import { summary } from "./lib.ts";

const RUNS = 3;
const sh = (cmd: string) => {
  const r = Bun.spawnSync(["sh", "-c", cmd], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd}: ${r.stderr.toString()}`);
};

async function* fileStream(path: string): AsyncGenerator<Uint8Array> {
  for await (const c of Bun.file(path).stream()) yield c;
}

/** A filesystem to extract into, and the drivers that run on it. */
interface Target {
  base: string;
  drivers: string[];
  done?: () => void;
}

/** The corpus: BUNKER_BENCH_ROOTFS, else bench/.cache/minbase (made by `bun bench/setup-minbase.ts`). */
function corpus(): string | undefined {
  const cacheRootfs = resolve(import.meta.dir, ".cache/minbase");
  return process.env.BUNKER_BENCH_ROOTFS ?? (existsSync(join(cacheRootfs, "etc")) ? cacheRootfs : undefined);
}

/** A btrfs filesystem on a loop device under /var/tmp, for the btrfs driver and its peers. */
function btrfsTarget(): Target | undefined {
  if (process.getuid?.() !== 0 || !Bun.which("mkfs.btrfs")) return undefined;
  const dir = mkdtempSync("/var/tmp/bunker-bench-btrfs-");
  sh(`truncate -s 3G ${dir}/img && mkfs.btrfs -q ${dir}/img && mkdir ${dir}/mnt && mount -o loop ${dir}/img ${dir}/mnt`);
  return { base: `${dir}/mnt`, drivers: ["btrfs"], done: () => sh(`umount ${dir}/mnt && rm -rf ${dir}`) };
}

/** Run the suite on the disk (ext4 here), on tmpfs and on btrfs; returns the markdown section. */
export async function layerExtractSuite(): Promise<string> {
  const targets: Target[] = process.env.BUNKER_BENCH_DIR
    ? [{ base: process.env.BUNKER_BENCH_DIR, drivers: ["vfs", "overlay"] }]
    : [{ base: "/var/tmp", drivers: ["vfs", "overlay"] }, ...(existsSync("/dev/shm") ? [{ base: "/dev/shm", drivers: ["vfs", "overlay"] }] : [])];
  if (!process.env.BUNKER_BENCH_DIR) {
    const b = btrfsTarget();
    if (b) targets.push(b);
  }
  let md = "";
  for (const t of targets) {
    try {
      md += await extractOn(t);
    } finally {
      t.done?.();
    }
  }
  return md;
}

/** A storage driver of the given name rooted at `root`. */
function makeDriver(name: string, root: string): StorageDriver {
  const sys = linuxSys();
  if (name === "overlay") return createOverlayDriver(root);
  if (name === "btrfs") return createBtrfsDriver(sys, root);
  return createVfsDriver(sys, root);
}

async function extractOn(target: Target): Promise<string> {
  const { base } = target;
  const rootfs = corpus();
  const work = mkdtempSync(join(base, "bunker-bench-x-"));
  const sys = linuxSys();
  try {
    const tar = join(work, "layer.tar");
    if (rootfs) sh(`tar -C ${rootfs} -cf ${tar} .`);
    else sh(`tar -C / -cf ${tar} usr/share/doc usr/lib/python3 2>/dev/null || true`);
    sh(`gzip -6 -c ${tar} > ${tar}.gz && zstd -q -3 -c ${tar} > ${tar}.zst`);
    const bytes = statSync(tar).size;
    const diffId = `sha256:${new Bun.CryptoHasher("sha256").update(await Bun.file(tar).arrayBuffer()).digest("hex")}` as Digest;
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
      for (const driver of target.drivers) {
        // The engine's whole path: decompress, diff-ID digest, apply through the driver, syncfs, commit.
        methods.push([codec, `bunker register, ${driver} driver`, async (d) => {
          const layers = new LayerStore(sys, makeDriver(driver, d));
          const got = await layers.register(undefined, diffId, () => fileStream(file));
          if (got.chainId !== diffId) throw new Error("bad chain id");
          await layers.release(diffId);
        }]);
      }
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
    const fsType = filesystemType(work);
    let md = `## Layer extraction (${fsType} at ${base})\n\nSuite \`bench/layer-extract.ts\`: ${(bytes / 1e6).toFixed(0)} MB, ${entries} entries (${rootfs ? `rootfs ${rootfs}` : "/usr/share/doc + /usr/lib/python3 of this machine"}), extracted into ${fsType} at ${base}; median of ${RUNS}; every method ends with its data synced.\n\n`;
    md += `| layer | method | median ms | MB/s | entries/s | throughput ÷ GNU tar's (> 1: faster than tar) |\n|---|---|---|---|---|---|\n`;
    const med = (codec: string, name: string) => summary(results.filter((x) => x.codec === codec && x.name === name).map((x) => x.ms)).median;
    for (const codec of ["plain", "gzip", "zstd"]) {
      const names = [...new Set(results.filter((x) => x.codec === codec).map((x) => x.name))];
      const tarMs = med(codec, "GNU tar -x + sync -f (peer)");
      for (const n of names) {
        const m = med(codec, n);
        md += `| ${codec} | ${n} | ${m.toFixed(0)} | ${(bytes / 1e6 / (m / 1000)).toFixed(0)} | ${Math.round(entries / (m / 1000))} | ${(tarMs / m).toFixed(2)} |\n`;
      }
    }
    if (umoci) {
      const u = med("gzip", "umoci unpack (peer)");
      md += `\nAgainst umoci (gzip layer): bunker apply is ${(u / med("gzip", "bunker apply (syncfs)")).toFixed(2)}× umoci's throughput`;
      for (const d of target.drivers) md += `; register through ${d}: ${(u / med("gzip", `bunker register, ${d} driver`)).toFixed(2)}×`;
      md += ".\n";
    }
    return md + "\n";
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) console.log(await layerExtractSuite());
