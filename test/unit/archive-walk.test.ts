/**
 * The directory walk behind `docker cp`, `export`, commit of vfs snapshots and build's COPY goes
 * by descriptor: a directory swapped for a symlink to elsewhere at the worst instant (after the
 * walk has stat'ed it as a directory, before it reads it) can make the walk fail, never make it
 * read outside the tree. The swap is made deterministic by doing it from inside the walk: when
 * the walk reads the directory's extended attributes (right after its lstat), as a container
 * sharing the volume could at that instant.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { archiveDirectory } from "../../src/core/layer/archive-dir.ts";
import { linuxSys, type Sys } from "../../src/core/sys/sys.ts";

const top = mkdtempSync(join(tmpdir(), "bunker-walk-"));
afterAll(() => rmSync(top, { recursive: true, force: true }));

/** The real Sys, with `swap` run once, right after the walk reads the xattrs of a path ending in `suffix` (just after its lstat). */
function swappingAfter(suffix: string, swap: () => void): { sys: Sys; swapped: () => boolean } {
  let swapped = false;
  const real = linuxSys();
  const sys: Sys = new Proxy(real, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv);
      if (prop !== "lgetxattrs") return v;
      return (path: string) => {
        const got = (v as Sys["lgetxattrs"]).call(target, path);
        if (!swapped && path.endsWith(suffix)) {
          swapped = true;
          swap();
        }
        return got;
      };
    },
  });
  return { sys, swapped: () => swapped };
}

describe("the archive walk cannot be led out of its tree", () => {
  test("a subdirectory swapped for a symlink between its stat and its read: no file from outside is archived", async () => {
    const tree = join(top, "tree");
    mkdirSync(join(tree, "dir", "sub"), { recursive: true });
    writeFileSync(join(tree, "dir", "sub", "inside"), "in\n");
    mkdirSync(join(top, "outside"));
    writeFileSync(join(top, "outside", "host-secret"), "host only\n");
    const { sys: racing, swapped } = swappingAfter("/sub", () => {
      renameSync(join(tree, "dir", "sub"), join(tree, "dir", "sub.real"));
      symlinkSync(join(top, "outside"), join(tree, "dir", "sub"));
    });
    const names: string[] = [];
    let failure: unknown;
    try {
      for await (const e of archiveDirectory(racing, join(tree, "dir"))) {
        names.push(e.header.name);
        for await (const _ of (e.body ?? []) as AsyncIterable<Uint8Array>) void _;
      }
    } catch (err) {
      failure = err;
    }
    expect(swapped()).toBe(true);
    expect(names.filter((n) => n.includes("host-secret"))).toEqual([]);
    // The walk stops at the swapped directory (ELOOP from openat2 RESOLVE_NO_SYMLINKS) rather than follow it.
    expect(String(failure)).toMatch(/ELOOP|ENOTDIR/);
  });

  test("a file swapped for a symlink after its stat: its body is not read through the link", async () => {
    const tree = join(top, "tree2");
    mkdirSync(tree, { recursive: true });
    writeFileSync(join(tree, "f"), "0123456789");
    writeFileSync(join(top, "outside-file"), "host only");
    const { sys: racing, swapped } = swappingAfter("/f", () => {
      rmSync(join(tree, "f"));
      symlinkSync(join(top, "outside-file"), join(tree, "f"));
    });
    const bodies: string[] = [];
    let failure: unknown;
    try {
      for await (const e of archiveDirectory(racing, tree)) {
        const chunks: Uint8Array[] = [];
        for await (const c of (e.body ?? []) as AsyncIterable<Uint8Array>) chunks.push(c);
        bodies.push(Buffer.concat(chunks).toString());
      }
    } catch (err) {
      failure = err;
    }
    expect(swapped()).toBe(true);
    expect(bodies.some((b) => b.includes("host only"))).toBe(false);
    expect(String(failure)).toMatch(/ELOOP/);
  });
});
