/**
 * Layer application on a real filesystem: every entry kind and its metadata, whiteouts in both
 * native forms, and hostile archives (traversal, absolute names, symlink and hardlink breakouts,
 * whiteout escapes, symlink loops, truncated huge files) that must change nothing outside the root
 * while legitimate archives of the same shapes still extract inside it.
 */
import { ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { applyLayer, cleanEntryPath, type WhiteoutMode } from "../../src/core/layer/apply.ts";
import { fullHeader, type TarInput, writeTar } from "../../src/core/layer/tar-stream.ts";
import { linuxSys } from "../../src/core/sys/sys.ts";
import { cleanup, run, tempDir } from "../helpers/daemon.ts";

const sys = linuxSys();
const dirs: string[] = [];
afterAll(() => dirs.forEach(cleanup));

type Spec = Partial<TarInput["header"]> & { name: string; data?: string };
/** A tar stream from short entry specs (files by default). */
function layer(specs: Spec[]): AsyncIterable<Uint8Array> {
  return writeTar(
    specs.map(({ data, ...h }) => {
      const body = data === undefined ? undefined : new TextEncoder().encode(data);
      return {
        header: fullHeader({ type: "file", mode: 0o644, uid: 0, gid: 0, mtime: 1_600_000_000, size: body?.length ?? 0, ...h }),
        ...(body ? { body } : {}),
      };
    }),
  );
}

let base: string;
let root: string;
let outside: string;
beforeEach(() => {
  base = tempDir();
  dirs.push(base);
  root = join(base, "root");
  outside = join(base, "outside");
  mkdirSync(root);
  mkdirSync(outside);
  writeFileSync(join(outside, "victim"), "original");
});
const apply = (specs: Spec[], whiteouts: WhiteoutMode = "remove") => applyLayer(sys, root, layer(specs), { whiteouts });
/** Nothing outside the root changed. */
function outsideUntouched() {
  expect(readdirSync(outside)).toEqual(["victim"]);
  expect(readFileSync(join(outside, "victim"), "utf8")).toBe("original");
  expect(lstatSync(join(outside, "victim")).nlink).toBe(1);
  expect(readdirSync(base).sort()).toEqual(["outside", "root"]);
}
async function fails(p: Promise<unknown>, text: RegExp) {
  try {
    await p;
  } catch (e) {
    expect((e as Error).message).toMatch(text);
    return;
  }
  throw new Error("expected the layer to be refused");
}

test("entry paths are cleaned lexically inside the root", () => {
  expect(cleanEntryPath("./a/b/")).toBe("a/b");
  expect(cleanEntryPath("../../etc/passwd")).toBe("etc/passwd");
  expect(cleanEntryPath("/abs/x")).toBe("abs/x");
  expect(cleanEntryPath("a/../../b")).toBe("b");
  expect(cleanEntryPath("./")).toBe("");
});

describe.skipIf(skipUnless("applying layers (root)", { "root": ROOT }))("applying layers (root)", () => {
  test("every entry kind with ownership, modes, times and xattrs", async () => {
    const r = await apply([
      { name: "./", type: "directory", mode: 0o755 },
      { name: "etc/", type: "directory", mode: 0o750, uid: 5, gid: 6 },
      { name: "etc/passwd", data: "root:x:0:0\n", mode: 0o4755, uid: 7, gid: 8, xattrs: { "user.k": new TextEncoder().encode("v") } },
      { name: "etc/link", type: "symlink", linkname: "passwd", uid: 9, gid: 9 },
      { name: "etc/hard", type: "hardlink", linkname: "etc/passwd" },
      { name: "dev/null", type: "chardev", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "dev/fifo", type: "fifo", mode: 0o600 },
      { name: "deep/auto/created/file", data: "x" },
    ]);
    expect(r).toEqual({ size: 12, entries: 8 });
    const st = lstatSync(join(root, "etc/passwd"));
    expect([st.mode & 0o7777, st.uid, st.gid, st.mtimeMs / 1000, st.nlink]).toEqual([0o4755, 7, 8, 1_600_000_000, 2]);
    expect(lstatSync(join(root, "etc")).mode & 0o7777).toBe(0o750);
    expect(lstatSync(join(root, "etc")).mtimeMs / 1000).toBe(1_600_000_000);
    expect(readlinkSync(join(root, "etc/link"))).toBe("passwd");
    expect(lstatSync(join(root, "etc/link")).uid).toBe(9);
    expect(lstatSync(join(root, "dev/null")).rdev).toBe(lstatSync("/dev/null").rdev);
    expect(lstatSync(join(root, "dev/fifo")).isFIFO()).toBe(true);
    expect(lstatSync(join(root, "deep/auto/created")).mode & 0o777).toBe(0o755);
    const x = await run(["python3", "-c", `import os; print(os.getxattr(${JSON.stringify(join(root, "etc/passwd"))}, "user.k"))`]);
    expect(x.stdout.trim()).toBe("b'v'");
  });

  test("whiteouts removed from a merged tree; opaque keeps what this layer added", async () => {
    await apply([{ name: "a/x", data: "1" }, { name: "a/y", data: "2" }, { name: "b/c", data: "3" }, { name: "keep", data: "4" }]);
    await apply([{ name: "a/z", data: "new" }, { name: "a/.wh..wh..opq" }, { name: ".wh.b" }, { name: "a/w", data: "after" }]);
    expect(readdirSync(join(root, "a")).sort()).toEqual(["w", "z"]);
    expect(existsSync(join(root, "b"))).toBe(false);
    expect(readdirSync(root).sort()).toEqual(["a", "keep"]);
  });

  test("whiteouts in overlayfs form: 0/0 character device and the opaque xattr", async () => {
    await apply([{ name: "a/", type: "directory", mode: 0o755 }, { name: "a/.wh..wh..opq" }, { name: ".wh.gone" }], "overlay");
    const wh = lstatSync(join(root, "gone"));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    const x = await run(["python3", "-c", `import os; print(os.getxattr(${JSON.stringify(join(root, "a"))}, "trusted.overlay.opaque"))`]);
    expect(x.stdout.trim()).toBe("b'y'");
  });

  test("a later entry replaces a file, a symlink or a directory of another kind", async () => {
    await apply([{ name: "f", data: "old" }, { name: "s", type: "symlink", linkname: "/etc/passwd" }, { name: "d/x", data: "1" }]);
    await apply([{ name: "f", type: "directory", mode: 0o755 }, { name: "s", data: "now a file" }, { name: "d", data: "now a file too" }]);
    expect(lstatSync(join(root, "f")).isDirectory()).toBe(true);
    expect(readFileSync(join(root, "s"), "utf8")).toBe("now a file");
    expect(readFileSync(join(root, "d"), "utf8")).toBe("now a file too");
  });
});

describe.skipIf(skipUnless("hostile layers change nothing outside the root", { "root": ROOT }))("hostile layers change nothing outside the root", () => {
  test("`..` traversal lands inside the root", async () => {
    await apply([{ name: "../outside/evil", data: "x" }, { name: "../../../../../../tmp/evil2", data: "x" }]);
    outsideUntouched();
    expect(readFileSync(join(root, "outside/evil"), "utf8")).toBe("x");
    expect(existsSync(join(root, "tmp/evil2"))).toBe(true);
  });

  test("absolute names land inside the root", async () => {
    await apply([{ name: `${outside}/evil`, data: "x" }]);
    outsideUntouched();
    expect(existsSync(join(root, outside, "evil"))).toBe(true);
  });

  test("a symlink to an absolute outside path, then a file through it", async () => {
    await fails(apply([{ name: "link", type: "symlink", linkname: outside }, { name: "link/evil", data: "x" }]), /dangling symlink/);
    outsideUntouched();
  });

  test("a symlink climbing with `..`, then a file through it, stays in the root", async () => {
    await apply([{ name: "up", type: "symlink", linkname: "../../../../.." }, { name: "up/evil", data: "x" }]);
    outsideUntouched();
    expect(readFileSync(join(root, "evil"), "utf8")).toBe("x");
  });

  test("legitimate symlinked directories inside the root still work", async () => {
    await apply([{ name: "real/", type: "directory", mode: 0o755 }, { name: "alias", type: "symlink", linkname: "/real" }, { name: "alias/file", data: "in" }]);
    expect(readFileSync(join(root, "real/file"), "utf8")).toBe("in");
  });

  test("hardlinks to outside files are refused, directly or through a symlink", async () => {
    await fails(apply([{ name: "h", type: "hardlink", linkname: "../outside/victim" }]), /linkat|ENOENT/);
    await fails(apply([{ name: "s", type: "symlink", linkname: outside }, { name: "h2", type: "hardlink", linkname: "s/victim" }]), /ENOENT/);
    outsideUntouched();
  });

  test("whiteouts that point outside remove nothing there", async () => {
    await apply([{ name: "../outside/.wh.victim" }, { name: "../.wh.outside" }]);
    await fails(apply([{ name: "s", type: "symlink", linkname: outside }, { name: "s/.wh.victim" }]), /dangling symlink/);
    outsideUntouched();
  });

  test("a directory replaced by a symlink mid-layer is not written through by a stale handle", async () => {
    await fails(apply([{ name: "d/f1", data: "1" }, { name: "d", type: "symlink", linkname: outside }, { name: "d/f2", data: "2" }]), /dangling symlink/);
    outsideUntouched();
    await apply([{ name: "e/f1", data: "1" }, { name: ".wh.e" }, { name: "e", type: "symlink", linkname: "/real2" }, { name: "real2/", type: "directory", mode: 0o755 }, { name: "e/f2", data: "2" }]);
    expect(readFileSync(join(root, "real2/f2"), "utf8")).toBe("2");
    expect(existsSync(join(root, "e/f1"))).toBe(false);
    outsideUntouched();
  });

  test("symlink loops are refused", async () => {
    await fails(apply([{ name: "a", type: "symlink", linkname: "b" }, { name: "b", type: "symlink", linkname: "a" }, { name: "a/file", data: "x" }]), /ELOOP|dangling/);
    outsideUntouched();
  });

  test("a file replacing a symlink to an outside file does not write through it", async () => {
    await apply([{ name: "f", type: "symlink", linkname: join(outside, "victim") }, { name: "f", data: "replaced" }]);
    outsideUntouched();
    expect(lstatSync(join(root, "f")).isFile()).toBe(true);
  });

  test("metadata of a symlinked directory entry is not applied through the link", async () => {
    await apply([{ name: "m", type: "symlink", linkname: outside }, { name: "m/", type: "directory", mode: 0o777, uid: 1234 }]);
    outsideUntouched();
    expect(lstatSync(outside).uid).toBe(0);
    expect(lstatSync(join(root, "m")).isDirectory()).toBe(true);
  });

  test("a huge declared size with a short body is an error, not a hang or a write outside", async () => {
    const full = Buffer.concat(await Array.fromAsync(layer([{ name: "big", data: "x".repeat(10) }])));
    full.write("77777777777\0", 124, "latin1");
    full.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of full.subarray(0, 512)) sum += b;
    full.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "latin1");
    await fails(applyLayer(sys, root, [full.subarray(0, 1024)] as unknown as AsyncIterable<Uint8Array>, { whiteouts: "remove" }), /unexpected end of archive/);
    outsideUntouched();
  });
});
