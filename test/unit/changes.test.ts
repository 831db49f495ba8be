/**
 * Layer diffs: the changes between two trees (moby's naive differ rules), turned into a layer
 * tar that, applied onto the lower tree, reproduces the upper one.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, linkSync, mkdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { applyLayer } from "../../src/core/layer/apply.ts";
import { archiveDirectory } from "../../src/core/layer/archive-dir.ts";
import { ChangeKind, changesBetween, changesToEntries } from "../../src/core/layer/changes.ts";
import { readTar, writeTar } from "../../src/core/layer/tar-stream.ts";
import { linuxSys } from "../../src/core/sys/sys.ts";
import { cleanup, tempDir } from "../helpers/daemon.ts";
import { treeListing } from "../helpers/tree.ts";

const sys = linuxSys();

/** Copy a tree (with times) through the layer code. */
async function copyTree(from: string, to: string) {
  mkdirSync(to);
  await applyLayer(sys, to, writeTar(archiveDirectory(sys, from)), { whiteouts: "remove", sync: false });
}

describe("changes between two trees", () => {
  let dir: string;
  let lower: string;
  let upper: string;
  beforeAll(async () => {
    dir = tempDir("bunker-changes-");
    lower = join(dir, "lower");
    mkdirSync(lower);
    for (const d of ["etc", "gone", "keep", "swap", "var/lib"]) mkdirSync(join(lower, d), { recursive: true });
    writeFileSync(join(lower, "etc/passwd"), "root:x:0:0\n");
    writeFileSync(join(lower, "etc/same"), "same");
    writeFileSync(join(lower, "gone/file"), "x");
    writeFileSync(join(lower, "keep/mode"), "m");
    writeFileSync(join(lower, "swap/was-file"), "f");
    writeFileSync(join(lower, "var/lib/db"), "v1");
    symlinkSync("passwd", join(lower, "etc/link"));
    for (const f of ["etc/passwd", "etc/same", "keep/mode", "var/lib/db"]) utimesSync(join(lower, f), 1_000_000, 1_000_000);
    upper = join(dir, "upper");
    await copyTree(lower, upper);
    writeFileSync(join(upper, "etc/passwd"), "root:x:0:0\nme:x:1:1\n"); // modified (size)
    writeFileSync(join(upper, "var/lib/db"), "v2"); // same size, new mtime
    chmodSync(join(upper, "keep/mode"), 0o600); // mode only
    rmSync(join(upper, "gone"), { recursive: true }); // deleted dir
    rmSync(join(upper, "swap/was-file"));
    mkdirSync(join(upper, "swap/was-file")); // file → directory
    writeFileSync(join(upper, "swap/was-file/inner"), "i");
    rmSync(join(upper, "etc/link"));
    symlinkSync("same", join(upper, "etc/link")); // new target (and time)
    mkdirSync(join(upper, "new/deep"), { recursive: true });
    writeFileSync(join(upper, "new/deep/a"), "a");
    linkSync(join(upper, "new/deep/a"), join(upper, "new/hard"));
  });
  afterAll(() => cleanup(dir));

  test("added, modified and deleted paths, and nothing for untouched ones", () => {
    const got = changesBetween(sys, upper, lower).map((c) => `${c.kind} ${c.path}`);
    expect(got).toEqual([
      `${ChangeKind.Modify} /etc/link`,
      `${ChangeKind.Modify} /etc/passwd`,
      `${ChangeKind.Delete} /gone`,
      `${ChangeKind.Modify} /keep/mode`,
      `${ChangeKind.Add} /new`,
      `${ChangeKind.Add} /new/deep`,
      `${ChangeKind.Add} /new/deep/a`,
      `${ChangeKind.Add} /new/hard`,
      `${ChangeKind.Modify} /swap/was-file`,
      `${ChangeKind.Add} /swap/was-file/inner`,
      `${ChangeKind.Modify} /var/lib/db`,
    ]);
  });

  test("the diff tar applied onto the lower tree gives the upper tree", async () => {
    const chunks: Uint8Array[] = [];
    for await (const c of writeTar(changesToEntries(sys, upper, changesBetween(sys, upper, lower)))) chunks.push(c);
    const names: string[] = [];
    for await (const e of readTar(chunks)) names.push(`${e.header.type} ${e.header.name}`);
    expect(names).toContain("file .wh.gone");
    expect(names).toContain("hardlink new/hard");
    const target = join(dir, "target");
    await copyTree(lower, target);
    await applyLayer(sys, target, chunks, { whiteouts: "remove", sync: false });
    expect(treeListing(target, { mtime: true })).toEqual(treeListing(upper, { mtime: true }));
  });

  test("identical trees have no changes", async () => {
    const copy = join(dir, "copy");
    await copyTree(lower, copy);
    expect(changesBetween(sys, copy, lower)).toEqual([]);
  });
});
