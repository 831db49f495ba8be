/**
 * One conformance suite for every storage driver (after containerd's snapshotter tests and
 * moby's graphtest): create, mount, commit, views read-only, chains with deleted and changed
 * files, a 128-layer chain, layer apply round trips with whiteouts, removal rules, usage, and
 * metadata that survives a restart. Real mounts: root only.
 */
import { ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fullHeader, readTar, writeTar } from "../../src/core/layer/tar-stream.ts";
import { hasDirectApply, type StorageDriver } from "../../src/core/storage/driver.ts";
import { mountAll, unmount } from "../../src/core/storage/mount.ts";
import { linuxSys } from "../../src/core/sys/sys.ts";
import { createBtrfsDriver } from "../../src/plugins/storage-btrfs/index.ts";
import { createOverlayDriver, overlayUnsupportedReason } from "../../src/plugins/storage-overlay/index.ts";
import { connectGraphDriverPlugin } from "../../src/core/plugin/graphdriver-proxy.ts";
import { createDevicemapperDriver, DevicemapperOptions, devicemapperUnsupportedReason } from "../../src/plugins/storage-devicemapper/index.ts";
import * as v from "valibot";
import { createVfsDriver } from "../../src/plugins/storage-vfs/index.ts";
import { LayerStore } from "../../src/core/storage/layer-store.ts";
import { cleanup, run, tempDir } from "../helpers/daemon.ts";
import { treeListing } from "../helpers/tree.ts";

const sys = linuxSys();

/** A btrfs filesystem on a loop device, made in the test; returns its mount point. */
async function mountBtrfs(dir: string): Promise<string> {
  const img = join(dir, "btrfs.img");
  const mp = join(dir, "btrfs");
  mkdirSync(mp);
  for (const cmd of [["truncate", "-s", "256M", img], ["mkfs.btrfs", "-q", img], ["mount", "-o", "loop", img, mp]]) {
    const r = await run(cmd);
    if (r.code !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
  }
  return mp;
}

/** The GraphDriver test plugin (test/fixtures/graphdriver-plugin.ts) as its own process; its call log. */
const pluginCalls: string[] = [];
let pluginProc: ReturnType<typeof Bun.spawn> | undefined;
async function graphDriverPlugin(root: string): Promise<StorageDriver> {
  const sockDir = join(root, "..", "plugins");
  mkdirSync(sockDir, { recursive: true });
  if (!pluginProc) {
    pluginProc = Bun.spawn([process.execPath, join(import.meta.dir, "../fixtures/graphdriver-plugin.ts"), join(sockDir, "testgd.sock")], { stdout: "pipe", stderr: "inherit" });
    (async () => {
      const dec = new TextDecoder();
      for await (const chunk of pluginProc.stdout as ReadableStream<Uint8Array>) pluginCalls.push(...dec.decode(chunk).split("\n").filter(Boolean));
    })();
  }
  // No wait for the socket: the client retries an unreachable plugin, as moby's does.
  return connectGraphDriverPlugin("testgd", root, { dirs: [sockDir], retryFor: 10_000 });
}

const drivers: { name: string; make: (root: string) => StorageDriver | Promise<StorageDriver>; skip?: string; fs?: (dir: string) => Promise<string> }[] = [
  { name: "vfs", make: (r) => createVfsDriver(sys, r) },
  { name: "overlay", make: (r) => createOverlayDriver(r), skip: overlayUnsupportedReason(tempDir()) },
  {
    name: "btrfs",
    make: (r) => createBtrfsDriver(sys, r),
    fs: mountBtrfs,
    ...(Bun.which("mkfs.btrfs") ? {} : { skip: "mkfs.btrfs is not installed (package btrfs-progs)" }),
  },
  { name: "graphdriver-plugin", make: graphDriverPlugin },
  {
    // A loop-file pool in the test's directory, small enough for a test machine.
    name: "devicemapper",
    make: (r) => createDevicemapperDriver(r, v.parse(DevicemapperOptions, { loopdatasize: 2 * 1024 ** 3, loopmetadatasize: 64 * 1024 ** 2, basesize: 256 * 1024 ** 2 }), { sys }),
    ...(devicemapperUnsupportedReason() ? { skip: devicemapperUnsupportedReason() } : {}),
  },
];

afterAll(() => pluginProc?.kill());

for (const { name, make, skip, fs } of drivers) {
  const reason = !ROOT ? "needs root for mounts" : skip;
  if (reason) console.log(`conformance ${name}: skipped: ${reason}`);
  describe.skipIf(skipUnless(`storage conformance: ${name}`, { [reason ?? ""]: !reason }))(`storage conformance: ${name}`, () => {
    let dir: string;
    let driver: StorageDriver;
    let layers: LayerStore;
    let mnt: string;
    let droot: string;
    beforeAll(async () => {
      dir = tempDir(`bunker-${name}-`);
      droot = join(fs ? await fs(dir) : dir, "driver");
      driver = await make(droot);
      layers = new LayerStore(sys, driver);
      mnt = join(dir, "mnt");
      mkdirSync(mnt);
    });
    afterAll(async () => {
      await driver.close?.();
      if (fs) await run(["umount", "-l", join(dir, name)]);
      cleanup(dir);
    });

    /** Mount `key`, run `fn` on the mount point, unmount. */
    async function withMount<T>(key: string, fn: (root: string) => T | Promise<T>): Promise<T> {
      mountAll(sys, await driver.mounts(key), mnt);
      try {
        return await fn(mnt);
      } finally {
        unmount(sys, mnt);
      }
    }
    /** Commit a layer made by `fn` on top of `parent`. */
    async function layer(nameOf: string, parent: string | undefined, fn: (root: string) => void) {
      await driver.prepare(`${nameOf}-active`, parent);
      await withMount(`${nameOf}-active`, fn);
      await driver.commit(nameOf, `${nameOf}-active`);
    }

    test("prepare, write, commit; a view sees the files and is read-only", async () => {
      await layer("base", undefined, (r) => {
        writeFileSync(join(r, "a"), "A");
        mkdirSync(join(r, "d"));
        writeFileSync(join(r, "d", "b"), "B");
      });
      expect(driver.stat("base").kind).toBe("committed");
      await driver.view("base-view", "base");
      await withMount("base-view", (r) => {
        expect(readFileSync(join(r, "a"), "utf8")).toBe("A");
        expect(() => writeFileSync(join(r, "x"), "no")).toThrow(/EROFS|read-only/);
      });
      await driver.remove("base-view");
    });

    test("a child sees deletions, changes and additions; the parent is unchanged", async () => {
      await layer("child", "base", (r) => {
        writeFileSync(join(r, "a"), "A2");
        writeFileSync(join(r, "c"), "C");
        require("node:fs").rmSync(join(r, "d"), { recursive: true });
      });
      await driver.view("child-view", "child");
      await withMount("child-view", (r) => expect(readdirSync(r).sort()).toEqual(["a", "c"]));
      await driver.view("base-view2", "base");
      await withMount("base-view2", (r) => {
        expect(readdirSync(r).sort()).toEqual(["a", "d"]);
        expect(readFileSync(join(r, "a"), "utf8")).toBe("A");
      });
      await driver.remove("child-view");
      await driver.remove("base-view2");
    });

    test("a layer tar applied through the driver, with whiteouts, round-trips", async () => {
      await driver.prepare("applied-active", "child");
      const tar = writeTar([
        { header: fullHeader({ name: ".wh.a", type: "file", mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0 }) },
        { header: fullHeader({ name: "e/f", type: "file", mode: 0o640, uid: 0, gid: 0, size: 2, mtime: 1_000 }), body: new TextEncoder().encode("EF") },
      ]);
      await layers.applyTo("applied-active", tar);
      await driver.commit("applied", "applied-active");
      await driver.view("applied-view", "applied");
      await withMount("applied-view", (r) => {
        expect(readdirSync(r).sort()).toEqual(["c", "e"]);
        expect(readFileSync(join(r, "e/f"), "utf8")).toBe("EF");
      });
      await driver.remove("applied-view");
    });

    test("the diff of a writable layer, applied on its parent, reproduces it (deletes, replaced dirs, modes)", async () => {
      await driver.prepare("changed", "base");
      await withMount("changed", (r) => {
        writeFileSync(join(r, "a"), "A-changed");
        rmSync(join(r, "d"), { recursive: true });
        mkdirSync(join(r, "d")); // a directory deleted and made again: opaque in overlay's form
        writeFileSync(join(r, "d", "z"), "Z");
        mkdirSync(join(r, "n", "m"), { recursive: true, mode: 0o750 });
        writeFileSync(join(r, "n", "m", "f"), "F", { mode: 0o600 });
        symlinkSync("../a", join(r, "n", "link"));
      });
      const tar: Uint8Array[] = [];
      for await (const c of layers.diff("changed")) tar.push(c);
      const names: string[] = [];
      for await (const e of readTar(tar)) names.push(e.header.name);
      expect(names).toContain("n/m/f");
      expect(names).not.toContain("d/b"); // deleted, not carried
      if (name === "overlay") expect(names).toContain("d/.wh..wh..opq"); // read from the upper dir
      await driver.prepare("replayed", "base");
      await layers.applyTo("replayed", (async function* () {
        yield* tar;
      })());
      const want = await withMount("changed", (r) => treeListing(r));
      const got = await withMount("replayed", (r) => treeListing(r));
      expect(got).toEqual(want);
      expect(got.some((l) => l.startsWith("d/b "))).toBe(false);
      await driver.remove("changed");
      await driver.remove("replayed");
    });

    test("a snapshot with children cannot be removed; leaves can", async () => {
      await expect(driver.remove("base")).rejects.toThrow("depends on it");
      await driver.prepare("leaf", "applied");
      await driver.remove("leaf");
      expect(driver.list().map((s) => s.key).sort()).toEqual(["applied", "base", "child"]);
    });

    test("bad requests: existing key, unknown or uncommitted parent, committing a view", async () => {
      await expect(driver.prepare("base")).rejects.toThrow("already exists");
      await expect(driver.prepare("x", "no-such")).rejects.toThrow("not found");
      await driver.prepare("act", "base");
      await expect(driver.prepare("y", "act")).rejects.toThrow("not committed");
      await driver.view("v", "base");
      await expect(driver.commit("z", "v")).rejects.toThrow("only active snapshots can be committed");
      await expect(driver.mounts("base")).rejects.toThrow("committed");
      await driver.remove("v");
      await driver.remove("act");
    });

    test("usage counts the snapshot's own bytes", async () => {
      await driver.prepare("u", "base");
      await withMount("u", (r) => writeFileSync(join(r, "big"), new Uint8Array(100_000)));
      const u = await driver.usage("u");
      expect(u.size).toBeGreaterThanOrEqual(100_000);
      if (name === "overlay") expect(u.size).toBeLessThan(100_100); // only the upper layer
      await driver.remove("u");
    });

    test("a chain of 128 layers mounts in one piece", async () => {
      let parent: string | undefined = undefined;
      for (let i = 0; i < 128; i++) {
        const key = `deep-${i}`;
        await driver.prepare(`${key}-a`, parent);
        const t = hasDirectApply(driver) ? driver.applyTarget(`${key}-a`).path : undefined;
        if (t) writeFileSync(join(t, `layer-${i}`), String(i));
        else await withMount(`${key}-a`, (r) => writeFileSync(join(r, `layer-${i}`), String(i)));
        await driver.commit(key, `${key}-a`);
        parent = key;
      }
      await driver.prepare("deep-top", parent);
      await withMount("deep-top", (r) => {
        const files = readdirSync(r).filter((f) => f.startsWith("layer-"));
        expect(files.length).toBe(128);
        expect(readFileSync(join(r, "layer-0"), "utf8")).toBe("0");
        writeFileSync(join(r, "on-top"), "rw");
      });
    }, 120_000);

    test.if(name === "btrfs")("committed btrfs layers are read-only subvolumes", async () => {
      const t = (driver as unknown as { applyTarget(k: string): { path: string } });
      await driver.prepare("ro-a", "base");
      const path = t.applyTarget("ro-a").path;
      await driver.commit("ro", "ro-a");
      expect(() => writeFileSync(join(path, "x"), "no")).toThrow(/EROFS|read-only/);
    });

    test.if(name === "graphdriver-plugin")("the plugin did the work: ApplyDiff, Diff, DiffSize, Get and Put were called", () => {
      for (const m of ["Plugin.Activate", "GraphDriver.Init", "GraphDriver.CreateReadWrite", "GraphDriver.Create", "GraphDriver.ApplyDiff", "GraphDriver.Diff", "GraphDriver.DiffSize", "GraphDriver.Get", "GraphDriver.Put", "GraphDriver.Remove"]) {
        expect(pluginCalls).toContain(m);
      }
      expect(driver.status()).toEqual([["Test Plugin", "directories"]]);
    });

    test("metadata survives a restart of the driver", async () => {
      const again = await make(droot);
      expect(again.stat("deep-127").parent).toBe("deep-126");
      expect(again.stat("deep-top").kind).toBe("active");
      expect(existsSync(join(droot, "metadata.json"))).toBe(true);
    });
  });
}
