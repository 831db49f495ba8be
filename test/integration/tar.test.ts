/**
 * The streaming tar reader and writer against GNU tar, both directions, in the pax, gnu and ustar
 * formats: long names and link targets, non-ASCII names, hardlinks, symlinks, fifos, devices
 * (root), big ids (root), xattrs, modes and times; plus corrupt and truncated archives.
 */
import { ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { type TarEntry, readTar, writeTar, type TarInput } from "../../src/core/layer/tar-stream.ts";
import type { TarHeader } from "../../src/core/layer/tar-header.ts";
import { cleanup, run, tempDir } from "../helpers/daemon.ts";

const HAVE_TAR = Bun.which("tar") !== null;
let dir: string;
let tree: string;

const LONG_DIR = "deep/" + Array.from({ length: 8 }, (_, i) => `directory-level-${i}`).join("/");
const LONG_COMPONENT = "n".repeat(120) + ".txt";
const LONG_TARGET = "../".repeat(3) + "t".repeat(140);
const UNICODE = "ünïcødé-文件.txt";

beforeAll(async () => {
  dir = tempDir();
  tree = join(dir, "tree");
  mkdirSync(join(tree, LONG_DIR), { recursive: true });
  writeFileSync(join(tree, "a.txt"), "hello\n", { mode: 0o640 });
  writeFileSync(join(tree, LONG_DIR, "file-at-depth.bin"), new Uint8Array(70_000).map((_, i) => i % 256));
  writeFileSync(join(tree, LONG_COMPONENT), "long name\n");
  writeFileSync(join(tree, UNICODE), "unicode\n");
  writeFileSync(join(tree, "empty"), "");
  symlinkSync("a.txt", join(tree, "link"));
  symlinkSync(LONG_TARGET, join(tree, "longlink"));
  linkSync(join(tree, "a.txt"), join(tree, "hard"));
  await run(["mkfifo", join(tree, "fifo")]);
  const py = `import os; os.setxattr(${JSON.stringify(join(tree, "a.txt"))}, "user.bunker", bytes([0, 1, 2, 255, 61, 10]))`;
  await run(["python3", "-c", py]);
  if (ROOT) {
    await run(["mknod", join(tree, "null"), "c", "1", "3"]);
    writeFileSync(join(tree, "bigid"), "x");
    chownSync(join(tree, "bigid"), 3_000_000, 3_000_001);
  }
  for (const p of ["a.txt", LONG_COMPONENT, UNICODE]) utimesSync(join(tree, p), 1_700_000_000, 1_700_000_000);
});
afterAll(() => cleanup(dir));

/** What lstat says each path should look like in an archive. */
function expectedEntries(base = tree): Map<string, Partial<TarHeader>> {
  const out = new Map<string, Partial<TarHeader>>();
  const seenInodes = new Map<number, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const rel = relative(base, p);
      const st = lstatSync(p);
      let e: Partial<TarHeader>;
      if (st.isDirectory()) e = { type: "directory" };
      else if (st.isSymbolicLink()) e = { type: "symlink", linkname: readlinkSync(p) };
      else if (st.isFIFO()) e = { type: "fifo" };
      else if (st.isCharacterDevice()) e = { type: "chardev", devmajor: 1, devminor: 3 };
      else if (st.nlink > 1 && seenInodes.has(st.ino)) e = { type: "hardlink", linkname: seenInodes.get(st.ino)! };
      else {
        e = { type: "file", size: st.size };
        seenInodes.set(st.ino, rel);
      }
      out.set(rel + (st.isDirectory() ? "/" : ""), { ...e, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) });
      if (st.isDirectory()) walk(p);
    }
  };
  walk(base);
  return out;
}

async function collect(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Map<string, TarHeader & { data: Uint8Array }>> {
  const out = new Map<string, TarHeader & { data: Uint8Array }>();
  for await (const e of readTar(source) as AsyncIterable<TarEntry>) {
    const parts: Uint8Array[] = [];
    for await (const c of e.body) parts.push(c.slice());
    out.set(e.header.name.replace(/^\.\//, ""), { ...e.header, mtime: Math.floor(e.header.mtime), data: Buffer.concat(parts) });
  }
  return out;
}

const fileSource = (path: string) => Bun.file(path).stream() as unknown as AsyncIterable<Uint8Array>;

describe.skipIf(skipUnless("reading GNU tar's archives", { "GNU tar": HAVE_TAR }))("reading GNU tar's archives", () => {
  for (const format of ["pax", "gnu"] as const) {
    test(`--format=${format}`, async () => {
      const archive = join(dir, `t-${format}.tar`);
      const r = await run(["tar", `--format=${format}`, ...(format === "pax" ? ["--xattrs"] : []), "-C", tree, "-cf", archive, "."]);
      expect(r.stderr).toBe("");
      const got = await collect(fileSource(archive));
      const want = expectedEntries();
      for (const [name, fields] of want) {
        const e = got.get(name);
        expect(e ? name : `missing ${name}`).toBe(name);
        if (name === "a.txt" || name === "hard") continue; // which one is the link depends on readdir order
        expect(e).toMatchObject(fields);
      }
      const pair = [got.get("a.txt")!, got.get("hard")!].sort((x) => (x.type === "file" ? -1 : 1));
      expect(pair.map((p) => p.type)).toEqual(["file", "hardlink"]);
      expect(pair[1]!.linkname.replace(/^\.\//, "")).toBe(pair[0]!.name.replace(/^\.\//, ""));
      expect(new TextDecoder().decode(pair[0]!.data)).toBe("hello\n");
      const deep = got.get(`${LONG_DIR}/file-at-depth.bin`)!.data;
      expect(deep.length).toBe(70_000);
      expect(deep[69_999]).toBe(69_999 % 256);
      if (format === "pax") expect([...pair[0]!.xattrs["user.bunker"]!]).toEqual([0, 1, 2, 255, 61, 10]);
    });
  }

  test("--format=ustar (names that fit ustar's prefix split)", async () => {
    const archive = join(dir, "t-ustar.tar");
    await run(["tar", "--format=ustar", "-C", tree, "-cf", archive, "a.txt", LONG_DIR, "link", "fifo"]);
    const got = await collect(fileSource(archive));
    expect(got.get(`${LONG_DIR}/file-at-depth.bin`)!.size).toBe(70_000);
    expect(got.get("link")).toMatchObject({ type: "symlink", linkname: "a.txt" });
  });
});

describe("writing archives", () => {
  /** Turn the fixture tree into writer input, as a layer differ would. */
  async function* fromTree(): AsyncGenerator<TarInput> {
    const want = expectedEntries();
    for (const [name, f] of want) {
      const st = lstatSync(join(tree, name));
      yield {
        header: { name, type: f.type!, mode: f.mode!, uid: f.uid!, gid: f.gid!, size: f.size ?? 0, mtime: st.mtimeMs / 1000, linkname: f.linkname ?? "", devmajor: f.devmajor ?? 0, devminor: f.devminor ?? 0, xattrs: name === "a.txt" ? { "user.bunker": new Uint8Array([0, 1, 2, 255, 61, 10]) } : {} },
        ...(f.type === "file" ? { body: readFileSync(join(tree, name)) } : {}),
      };
    }
  }

  test("our archive round-trips through our reader", async () => {
    const got = await collect(writeTar(fromTree()));
    for (const [name, fields] of expectedEntries()) expect(got.get(name)).toMatchObject(fields);
    expect([...got.get("a.txt")!.xattrs["user.bunker"]!]).toEqual([0, 1, 2, 255, 61, 10]);
  });

  test.skipIf(skipUnless("GNU tar lists and extracts our archive identically", { "GNU tar": HAVE_TAR }))("GNU tar lists and extracts our archive identically", async () => {
    const archive = join(dir, "ours.tar");
    await Bun.write(archive, new Blob(await Array.fromAsync(writeTar(fromTree()))));
    const out = join(dir, "extracted");
    mkdirSync(out);
    const r = await run(["tar", "--xattrs", "--xattrs-include=user.*", "--same-owner", "-C", out, "-xpf", archive]);
    expect(r.stderr).toBe("");
    const diff = await run(["diff", "-r", "--no-dereference", tree, out]);
    // diff cannot compare special files and says so; anything else is a real difference.
    const real = (diff.stdout + diff.stderr).split("\n").filter((l) => l && !/is a (fifo|character special file) while file .* is a \1$/.test(l));
    expect(real).toEqual([]);
    const meta = (root: string) => [...expectedEntries(root)].map(([n, e]) => [n, { ...e, mtime: n.endsWith("/") ? 0 : e.mtime }]);
    expect(meta(out)).toEqual(meta(tree));
    expect(readlinkSync(join(out, "longlink"))).toBe(LONG_TARGET);
    expect(lstatSync(join(out, "hard")).ino).toBe(lstatSync(join(out, "a.txt")).ino);
    expect(lstatSync(join(out, "a.txt")).mode & 0o7777).toBe(0o640);
    expect(Math.floor(lstatSync(join(out, UNICODE)).mtimeMs / 1000)).toBe(1_700_000_000);
    const x = await run(["python3", "-c", `import os; print(list(os.getxattr(${JSON.stringify(join(out, "a.txt"))}, "user.bunker")))`]);
    expect(x.stdout.trim()).toBe("[0, 1, 2, 255, 61, 10]");
    if (ROOT) expect(lstatSync(join(out, "bigid")).uid).toBe(3_000_000);
  });

  test("a body that disagrees with its declared size is an error", async () => {
    const bad = writeTar([{ header: { name: "f", type: "file", mode: 0o644, uid: 0, gid: 0, size: 5, mtime: 0 }, body: new Uint8Array(3) }]);
    expect(Array.fromAsync(bad)).rejects.toThrow("body is 3 bytes, header says 5");
  });
});

describe("bad archives", () => {
  const one = async () => Buffer.concat(await Array.fromAsync(writeTar([{ header: { name: "f", type: "file", mode: 0o644, uid: 0, gid: 0, size: 1000, mtime: 0 }, body: new Uint8Array(1000) }])));

  test("a truncated archive is an error, not a short file", async () => {
    const full = await one();
    await expect(collect([full.subarray(0, 700)])).rejects.toThrow("unexpected end of archive");
  });

  test("a corrupt header fails its checksum", async () => {
    const full = await one();
    full[10] = 0x41;
    await expect(collect([full])).rejects.toThrow("checksum mismatch");
  });

  test("non-tar input is refused", async () => {
    await expect(collect([new TextEncoder().encode("this is not a tar archive".repeat(40))])).rejects.toThrow("checksum mismatch");
  });

  test("a huge declared PAX header is refused before it is buffered", async () => {
    const h = (await one()).subarray(0, 512);
    const pax = Buffer.from(h);
    pax[156] = "x".charCodeAt(0);
    pax.write("77777777777\0", 124, "latin1"); // 8 GiB
    pax.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of pax) sum += b;
    pax.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "latin1");
    await expect(collect([pax])).rejects.toThrow("exceeds");
  });
});
