/**
 * The crash-point harness (issue 15): each operation of the image and volume stores runs once
 * with every side effect counted (each call through the `Sys` seam and each engine failpoint:
 * metadata files replaced, blobs placed, snapshot directories made or removed, journal records,
 * volumes renamed out of the list), giving its N points. Then it runs N more times from the same
 * starting state, crashing at point k: that point and every later one throw, so nothing after
 * the instant reaches the disk, as with a process killed there. The stores are then reopened
 * from disk as a daemon start does (driver, records, the start-up sweep) and must hold: the old
 * or the new state, every listed image and volume whole, nothing on disk that no record owns,
 * and a retry of the operation succeeds. The vfs driver on a real directory tree (as root).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ContentStore } from "../../src/core/content/content-store.ts";
import { sweepDataRoot } from "../../src/core/daemon/store-gc.ts";
import { EventBus } from "../../src/core/events/bus.ts";
import { armFailpoints } from "../../src/core/failpoints.ts";
import { ImageService } from "../../src/core/image/image-service.ts";
import { ImageStore } from "../../src/core/image/image-store.ts";
import { createLogger } from "../../src/core/log.ts";
import { TokenCache } from "../../src/core/registry/auth.ts";
import { LayerStore } from "../../src/core/storage/layer-store.ts";
import { linuxSys, type Sys } from "../../src/core/sys/sys.ts";
import { VolumeService } from "../../src/core/volume/volume-service.ts";
import { createVfsDriver } from "../../src/plugins/storage-vfs/index.ts";
import { cleanup, tempDir } from "../helpers/daemon.ts";
import { ROOT, skipUnless } from "../helpers/env.ts";
import { BUSYBOX, busyboxLayer, dockerArchive, filesLayer } from "../helpers/images.ts";

class Crash extends Error {
  constructor(readonly at: string) {
    super(`crashed at ${at}`);
  }
}

/** Sys calls that change nothing (not counted as points). */
const READS = new Set(["fstat", "lgetxattrs", "lgetxattr", "readlinkat", "statx", "fstatfs", "getdents", "flock", "close", "pipe", "socketpair"]);

/** The armed harness: counts points, or crashes at point `crashAt` (1-based) and every one after. */
class Points {
  n = 0;
  crashAt = 0;
  where = "";
  hit(what: string): void {
    this.n++;
    if (this.crashAt && this.n >= this.crashAt) {
      if (this.n === this.crashAt) this.where = what;
      throw new Crash(what);
    }
  }
}

/** `sys` with every changing call a point. */
function countingSys(sys: Sys, points: Points): Sys {
  return new Proxy(sys, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv);
      if (typeof v !== "function" || READS.has(String(prop))) return v;
      return (...args: unknown[]) => {
        // An open without O_CREAT/O_WRONLY/O_RDWR reads only.
        if (prop === "openat2" && ((args[2] as number) & 0o1103) === 0) return v.apply(target, args);
        points.hit(`sys.${String(prop)}`);
        return v.apply(target, args);
      };
    },
  });
}

/** The stores of one data root, opened from disk. */
function open(dataRoot: string, sys: Sys) {
  const content = new ContentStore(join(dataRoot, "content"));
  const images = new ImageStore(join(dataRoot, "image"), content);
  const driver = createVfsDriver(sys, join(dataRoot, "storage.v1.vfs"));
  const layers = new LayerStore(sys, driver);
  const events = new EventBus();
  const registry = { insecure: ["127.0.0.0/8"], mirrors: [], certsDir: join(dataRoot, "certs.d"), tokens: new TokenCache(), stallMs: 10_000, attempts: 1 };
  const service = new ImageService({ sys, content, images, layers, events, tmpRoot: join(dataRoot, "tmp"), registry, log: createLogger({ level: "fatal", sink: () => {} }) });
  const volumes = new VolumeService(join(dataRoot, "volumes"), events);
  return { content, images, driver, layers, service, volumes };
}
type Stores = ReturnType<typeof open>;

/** What must hold after a reopen (and the sweep): problems, empty when all hold. */
function problems(s: Stores, dataRoot: string): string[] {
  const out: string[] = [];
  const chains = new Set<string>();
  for (const img of s.images.list()) {
    for (const c of img.chainIds) {
      chains.add(c);
      if (!s.layers.has(c)) out.push(`image ${img.id.slice(7, 19)}: layer ${c.slice(7, 19)} missing`);
    }
    for (const l of img.layers) if (!s.content.has(l.blob)) out.push(`image ${img.id.slice(7, 19)}: blob ${l.blob.slice(7, 19)} missing`);
  }
  for (const snap of s.driver.list()) if (snap.kind !== "committed" || !chains.has(snap.key)) out.push(`snapshot ${snap.key.slice(0, 40)} (${snap.kind}) owned by nothing`);
  const snaps = join(dataRoot, "storage.v1.vfs", "snapshots");
  if (readdirSync(snaps).length !== s.driver.list().length) out.push(`snapshot directories ${readdirSync(snaps).length}, records ${s.driver.list().length}`);
  const tmp = join(dataRoot, "tmp");
  if (existsSync(tmp) && readdirSync(tmp).length) out.push(`staging left: ${readdirSync(tmp).join(", ")}`);
  const listed = new Set(s.volumes.list().map((v) => v.Name));
  for (const v of s.volumes.list()) if (!existsSync(v.Mountpoint)) out.push(`volume ${v.Name} has no directory`);
  for (const d of readdirSync(join(dataRoot, "volumes"))) {
    if (d.startsWith(".") ? readdirSync(join(dataRoot, "volumes", d)).length : !listed.has(d)) out.push(`volume directory ${d} listed by nothing`);
  }
  return out;
}

/** One operation: its starting state, the operation, what its result must look like, its retry. */
interface Op {
  name: string;
  setup(s: Stores): Promise<void>;
  run(s: Stores): Promise<unknown>;
  /** The old or the new state (problems). */
  check(s: Stores): string[];
}

describe.skipIf(skipUnless("crash points of the image and volume stores", { root: ROOT, "busybox-static": BUSYBOX }))("crash points: every point of every operation leaves the old or the new state", () => {
  const top = tempDir("bunker-crashpoints-");
  afterAll(() => {
    armFailpoints(undefined);
    cleanup(top);
  });
  const real = linuxSys();
  // Work an operation left running in the background (a pull's parallel downloads) meets the
  // crash too: in a killed process it would simply not exist, so its Crash is not an error.
  const swallow = (err: unknown) => {
    if (!(err instanceof Crash)) throw err;
  };
  process.on("unhandledRejection", swallow);
  process.on("uncaughtException", swallow);
  afterAll(() => {
    process.off("unhandledRejection", swallow);
    process.off("uncaughtException", swallow);
  });
  const fixtures = (async () => {
    const base = await busyboxLayer();
    const extra = await filesLayer({ "data/a": new Uint8Array(40_000).fill(7), "data/b": new TextEncoder().encode("b\n") });
    return {
      base: new Uint8Array(await dockerArchive({ tags: ["base:1"], layers: [base] })),
      load: new Uint8Array(await dockerArchive({ tags: ["loaded:1"], layers: [base, extra] })),
      rootfs: new Uint8Array(extra),
      diff: new Uint8Array(await filesLayer({ "srv/new": new TextEncoder().encode("committed\n") })),
    };
  })();
  const drain = async (g: AsyncIterable<unknown>) => {
    for await (const _ of g) void _;
  };
  // A registry on loopback holding "pullme:1" (two layers), pushed from a store of its own.
  const registry = (async () => {
    const { startRegistryServer } = await import("../../src/core/registry/server.ts");
    const server = await startRegistryServer({ root: join(top, "registry"), addr: "127.0.0.1:0", log: createLogger({ level: "fatal", sink: () => {} }) });
    const src = open(join(top, "registry-source"), real);
    await drain(src.service.load(once((await fixtures).load)));
    const ref = `127.0.0.1:${server.port}/pullme:1`;
    src.service.tag("loaded:1", `127.0.0.1:${server.port}/pullme`, "1");
    await src.service.push(ref, { progress: () => {} });
    return { server, ref };
  })();
  afterAll(async () => (await registry).server.stop());
  const withBase = async (s: Stores) => drain(s.service.load(once((await fixtures).base)));
  const has = (s: Stores, ref: string) => {
    try {
      s.images.resolve(ref);
      return true;
    } catch {
      return false;
    }
  };

  const ops: Op[] = [
    { name: "volume create", setup: async () => {}, run: async (s) => s.volumes.create({ Name: "v1" }), check: () => [] },
    {
      name: "volume rm",
      setup: async (s) => {
        const v = await s.volumes.create({ Name: "v1" });
        for (let i = 0; i < 50; i++) writeFileSync(join(v.Mountpoint, `f${i}`), "x");
      },
      run: (s) => s.volumes.remove("v1"),
      check: (s) => (s.volumes.list().some((v) => v.Name === "v1") && readdirSync(s.volumes.get("v1").Mountpoint).length !== 50 ? ["v1 listed with some of its files gone"] : []),
    },
    { name: "load", setup: withBase, run: async (s) => drain(s.service.load(once((await fixtures).load))), check: (s) => (has(s, "base:1") ? [] : ["base:1 lost"]) },
    {
      name: "pull",
      setup: withBase,
      run: async (s) => s.service.pull((await registry).ref, { progress: () => {} }),
      check: (s) => (has(s, "base:1") ? [] : ["base:1 lost"]),
    },
    { name: "import", setup: withBase, run: async (s) => s.service.importRootfs(once((await fixtures).rootfs), { repo: "imp", tag: "1", changes: [] }), check: (s) => (has(s, "base:1") ? [] : ["base:1 lost"]) },
    {
      name: "commit",
      setup: withBase,
      run: async (s) => s.service.commit(s.images.resolve("base:1"), once((await fixtures).diff), { config: {}, containerId: "c".repeat(64), repo: "committed", tag: "1" }),
      check: (s) => (has(s, "base:1") ? [] : ["base:1 lost"]),
    },
    { name: "tag", setup: withBase, run: async (s) => s.service.tag("base:1", "other", "2"), check: (s) => (has(s, "base:1") ? [] : ["base:1 lost"]) },
    {
      name: "rmi",
      setup: async (s) => {
        await withBase(s);
        await drain(s.service.load(once((await fixtures).load)));
      },
      run: (s) => s.service.remove("loaded:1", false),
      check: (s) => (has(s, "base:1") ? [] : ["base:1 lost"]),
    },
    {
      name: "image prune -a",
      setup: async (s) => {
        await withBase(s);
        await drain(s.service.load(once((await fixtures).load)));
      },
      run: async (s) => s.service.prune(new (await import("../../src/core/filters.ts")).Filters(new Map([["dangling", new Set(["false"])]]))),
      check: () => [],
    },
  ];

  for (const op of ops) {
    test(`${op.name}: every crash point holds, and the retry succeeds`, async () => {
      const start = join(top, op.name.replace(/\W+/g, "-"), "start");
      mkdirSync(start, { recursive: true });
      await op.setup(open(start, real));
      // Count the points.
      const points = new Points();
      armFailpoints((w) => points.hit(`failpoint ${w}`));
      const counted = join(top, op.name.replace(/\W+/g, "-"), "count");
      copyTree(start, counted);
      try {
        await op.run(open(counted, countingSys(real, points)));
      } finally {
        armFailpoints(undefined);
      }
      const n = points.n;
      expect(n).toBeGreaterThan(0);
      const failed: string[] = [];
      for (let k = 1; k <= n; k++) {
        const dir = join(top, op.name.replace(/\W+/g, "-"), `cut-${k}`);
        copyTree(start, dir);
        const p = new Points();
        p.crashAt = k;
        armFailpoints((w) => p.hit(`failpoint ${w}`));
        let outcome: unknown;
        try {
          await op.run(open(dir, countingSys(real, p)));
          outcome = "finished";
        } catch (err) {
          outcome = err;
        } finally {
          // Work the operation left running (a pull's parallel downloads) meets the dead points
          // too before they are disarmed, as it would not exist in a killed process.
          if (op.name === "pull") await Bun.sleep(50);
          armFailpoints(undefined);
        }
        // A crash the operation wrapped in its own error (a pull's "gave up after 1 attempts") is still the crash.
        if (!(outcome instanceof Crash) && !/crashed at/.test(String(outcome)) && outcome !== "finished") failed.push(`point ${k} (${p.where}): the operation failed without a crash: ${outcome}`);
        // Reopen as a daemon start does, sweep, check, retry.
        const s = open(dir, real);
        await sweepDataRoot({ sys: real, dataRoot: dir, driver: s.driver, images: s.images, content: s.content, log: createLogger({ level: "fatal", sink: () => {} }) });
        const bad = [...problems(s, dir), ...op.check(s)];
        try {
          await op.run(s);
        } catch (err) {
          // A deletion that reached its commit point is done: the retry's "no such" is its success.
          if (!/No such image|no such volume/.test(String(err))) bad.push(`retry: ${err}`);
        }
        bad.push(...problems(s, dir).map((x) => `after the retry: ${x}`));
        if (bad.length) failed.push(`point ${k} of ${n} (${p.where}): ${bad.join("; ")}`);
        cleanup(dir);
      }
      console.log(`crash points: ${op.name}: ${n} points, ${n - failed.length} held`);
      expect(failed).toEqual([]);
    }, 120_000);
  }
});

/** One pass over `bytes` as a stream. */
async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** `cp -a` of a tree (xattrs, owners and links kept). */
function copyTree(from: string, to: string): void {
  mkdirSync(join(to, ".."), { recursive: true });
  const r = Bun.spawnSync(["cp", "-a", from, to]);
  if (r.exitCode !== 0) throw new Error(`cp -a ${from} ${to}: ${r.stderr}`);
}
