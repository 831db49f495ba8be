import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, writeFileSync, appendFileSync } from "node:fs";
import { join } from "node:path";
import { ContentStore } from "../../src/core/content/content-store.ts";
import { asDigest, digestOf, isDigest, parseDigest } from "../../src/core/content/digest.ts";
import type { EngineError } from "../../src/core/errors.ts";
import { cleanup, tempDir } from "../helpers/daemon.ts";

let dir: string;
let store: ContentStore;
beforeEach(() => {
  dir = tempDir();
  store = new ContentStore(join(dir, "content"));
});
afterEach(() => cleanup(dir));

const bytes = (s: string) => new TextEncoder().encode(s);
/** Every file under the store, to prove nothing partial stays. */
const files = () => {
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
  return walk(store.root).map((p) => p.slice(store.root.length));
};
async function rejects(p: Promise<unknown>, code: EngineError["code"], text: string) {
  try {
    await p;
  } catch (e) {
    expect((e as EngineError).code).toBe(code);
    expect((e as Error).message).toContain(text);
    return;
  }
  throw new Error("expected a rejection");
}

describe("digests", () => {
  test("sha256 and sha512 parse; everything else is a clear error", () => {
    const d = digestOf("hello");
    expect(d as string).toBe("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    expect(parseDigest(digestOf("x", "sha512")).algorithm).toBe("sha512");
    for (const bad of ["sha256:abc", "sha256:" + "A".repeat(64), "md5:" + "a".repeat(32), "nocolon", "sha256:" + "g".repeat(64)]) {
      expect(isDigest(bad)).toBe(false);
      expect(() => asDigest(bad)).toThrow(/invalid digest|unsupported digest algorithm/);
    }
  });
});

describe("content store", () => {
  test("ingest verifies and places the blob; reads and lists it", async () => {
    const data = bytes("layer data");
    const d = digestOf(data);
    const info = await store.ingest([data.subarray(0, 3), data.subarray(3)], { digest: d, size: data.length });
    expect(info).toEqual({ digest: d, size: data.length });
    expect(new TextDecoder().decode(store.readBytes(d))).toBe("layer data");
    expect(store.list()).toEqual([info]);
    expect(await store.verify(d)).toBe(true);
    expect(files()).toEqual([`/blobs/sha256/${d.slice(7)}`]);
  });

  test("a tampered blob is rejected and nothing of it stays", async () => {
    const d = digestOf("the real content");
    await rejects(store.ingest([bytes("the fake content")], { digest: d }), "failed-precondition", "digest mismatch");
    expect(store.has(d)).toBe(false);
    expect(files()).toEqual([]);
  });

  test("size is checked before the digest: short and long content are rejected", async () => {
    const data = bytes("12345");
    const d = digestOf(data);
    await rejects(store.ingest([bytes("1234")], { digest: d, size: 5 }), "failed-precondition", "unexpected size 4, expected 5");
    await rejects(store.ingest([bytes("123456")], { digest: d, size: 5 }), "failed-precondition", "exceeds the expected size");
    expect(files()).toEqual([]);
  });

  test("an interrupted ingest resumes at its offset", async () => {
    const data = bytes("0123456789abcdef");
    const d = digestOf(data);
    const w1 = await store.writer(d, { digest: d, size: data.length });
    await w1.write(data.subarray(0, 10));
    await w1.suspend(); // connection dropped
    expect(store.ingests()).toEqual([expect.objectContaining({ ref: d, offset: 10 })]);
    const w2 = await store.writer(d, { digest: d, size: data.length });
    expect(w2.offset).toBe(10);
    await w2.write(data.subarray(10));
    expect(await w2.commit()).toEqual({ digest: d, size: 16 });
    expect(store.ingests()).toEqual([]);
  });

  test("a resumed ingest whose partial data was corrupted fails verification", async () => {
    const data = bytes("0123456789abcdef");
    const d = digestOf(data);
    const w1 = await store.writer(d, { digest: d });
    await w1.write(data.subarray(0, 8));
    await w1.suspend();
    const [ingestDir] = readdirSync(join(store.root, "ingest"));
    writeFileSync(join(store.root, "ingest", ingestDir!, "data"), "XXXXXXXX");
    const w2 = await store.writer(d, { digest: d });
    await w2.write(data.subarray(8));
    await rejects(w2.commit(), "failed-precondition", "digest mismatch");
    expect(files()).toEqual([]);
  });

  test("a different expectation for the same ref starts over", async () => {
    const w1 = await store.writer("ref-1", { size: 3 });
    await w1.write(bytes("ab"));
    await w1.suspend();
    const w2 = await store.writer("ref-1", { size: 4 });
    expect(w2.offset).toBe(0);
    await w2.abort();
  });

  test("two writers on one ref conflict; the lock is released after commit", async () => {
    const w = await store.writer("same");
    await rejects(store.writer("same"), "conflict", "locked");
    await w.write(bytes("x"));
    await w.commit();
    const again = await store.writer("same");
    await again.abort();
  });

  test("committing content that is already present is fine and leaves one copy", async () => {
    const a = await store.put("dup");
    const b = await store.put("dup");
    expect(a).toEqual(b);
    expect(store.list().length).toBe(1);
  });

  test("sha512 content verifies with sha512", async () => {
    const d = digestOf("five twelve", "sha512");
    expect((await store.put("five twelve", { digest: d })).digest).toBe(d);
    expect(existsSync(join(store.root, "blobs", "sha512", d.slice(7)))).toBe(true);
  });

  test("mark-and-sweep removes only unreferenced blobs", async () => {
    const keep = await store.put("keep");
    const drop = await store.put("drop");
    expect(store.sweep(new Set([keep.digest]))).toEqual([drop.digest]);
    expect(store.has(keep.digest)).toBe(true);
    expect(store.has(drop.digest)).toBe(false);
  });

  test("stale interrupted ingests are cleaned; recent ones are kept for resuming", async () => {
    const w = await store.writer("old");
    await w.write(bytes("partial"));
    await w.suspend();
    expect(store.cleanIngests(60_000)).toEqual([]);
    expect(store.cleanIngests(60_000, Date.now() + 120_000)).toEqual(["old"]);
    expect(files()).toEqual([]);
  });

  test("a malformed expected digest is invalid-argument; unknown blobs are not-found", async () => {
    await rejects(store.writer("x", { digest: "sha256:nothex" as never }), "invalid-argument", "invalid digest");
    expect(() => store.info(digestOf("absent"))).toThrow("not found");
    expect(() => store.readBytes(digestOf("absent"))).toThrow("not found");
  });

  test("streams in and out", async () => {
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
    const d = digestOf(big);
    await store.ingest(new Blob([big]).stream(), { digest: d, size: big.length });
    let n = 0;
    for await (const c of store.readStream(d, 1024)) n += c.length;
    expect(n).toBe(big.length - 1024);
    appendFileSync(store.blobPath(d), "rot");
    expect(await store.verify(d)).toBe(false);
  });
});
