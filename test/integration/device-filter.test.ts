/**
 * Device rules on cgroup v2 (an eBPF program attached to the cgroup), on the real kernel: a
 * process in the cgroup gets exactly the device access the rules give, the last matching rule
 * deciding. Runs on this hybrid host's v2 hierarchy (or on a pure v2 host's).
 */
import { ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { linuxSys } from "../../src/core/sys/sys.ts";
import { attachDeviceFilter, deviceFilterInsns } from "../../src/plugins/runtime-linux/device-filter.ts";

const v2Mount = (() => {
  try {
    const line = readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.includes(" - cgroup2 "));
    return line?.split(" ")[4];
  } catch {
    return undefined;
  }
})();

describe.skipIf(skipUnless("cgroup v2 device filter", { "root": ROOT, "a cgroup v2 mount": v2Mount }))("cgroup v2 device filter", () => {
  const dir = join(v2Mount ?? "/nonexistent", `bunker-devtest-${process.pid}`);
  afterAll(() => {
    try {
      rmdirSync(dir);
    } catch {
      /* still busy or gone */
    }
  });

  test("only the allowed access to the allowed devices; later rules override earlier ones", async () => {
    mkdirSync(dir);
    attachDeviceFilter(linuxSys(), dir, [
      { allow: false, access: "rwm" }, // deny everything…
      { allow: true, type: "c", major: 1, minor: 3, access: "rw" }, // …but /dev/null
      { allow: true, type: "c", major: 1, minor: 5, access: "rwm" }, // /dev/zero, then
      { allow: false, type: "c", major: 1, minor: 5, access: "w" }, // not for writing
      { allow: true, type: "c", major: 1, access: "r" }, // any 1:x for reading (so /dev/full too)
      { allow: false, type: "c", major: 1, minor: 7, access: "r" }, // except /dev/full
    ]);
    const script = [
      `echo $$ > ${dir}/cgroup.procs`,
      "echo x > /dev/null && echo null-w-ok",
      "head -c 1 /dev/zero | wc -c",
      "(echo x > /dev/zero) 2>/dev/null || echo zero-w-denied",
      "(head -c 1 /dev/full) 2>/dev/null || echo full-r-denied",
      "head -c 1 /dev/urandom | wc -c", // 1:9, by the "any 1:x for reading" rule
      "(: < /dev/ptmx) 2>/dev/null || echo ptmx-denied", // 5:2, by the first rule
    ].join("; ");
    const p = Bun.spawnSync(["/bin/sh", "-c", script]);
    expect(p.stdout.toString().trim().split("\n")).toEqual(["null-w-ok", "1", "zero-w-denied", "full-r-denied", "1", "ptmx-denied"]);
  });

  test("the program checks the last rule first and ends in deny", () => {
    const insns = deviceFilterInsns([{ allow: true, type: "c", major: 1, minor: 3, access: "rwm" }]);
    // 6 loads, then for the rule: type, major, minor checks, r0 = 1, exit; then r0 = 0, exit.
    expect(insns.length).toBe(6 + 3 + 2 + 2);
    expect(insns.at(-2)).toEqual([0xb7, 0, 0, 0, 0]);
    expect(() => deviceFilterInsns([{ allow: true, access: "rx" }])).toThrow("only r, w and m are allowed");
  });
});
