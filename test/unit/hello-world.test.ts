import { describe, expect, test } from "bun:test";
import { skipUnless } from "../helpers/env.ts";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HELLO_MESSAGE, helloElf } from "../../src/core/image/hello-world.ts";
import { cleanup, run, tempDir } from "../helpers/daemon.ts";

const native = process.arch === "arm64" ? "arm64" : "amd64";
const other = native === "amd64" ? "arm64" : "amd64";
const QEMU = Bun.which(other === "arm64" ? "qemu-aarch64" : "qemu-x86_64");

describe("the generated hello-world program", () => {
  test(`runs natively (${native}) and prints the greeting`, async () => {
    const d = tempDir();
    const p = join(d, "hello");
    writeFileSync(p, helloElf(native));
    chmodSync(p, 0o755);
    const r = await run([p]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(HELLO_MESSAGE);
    expect(helloElf(native).length).toBeLessThan(512);
    cleanup(d);
  });

  test.skipIf(skipUnless(`runs as ${other} under qemu user-mode emulation`, { "qemu-user": QEMU }))(`runs as ${other} under qemu user-mode emulation`, async () => {
    const d = tempDir();
    const p = join(d, "hello");
    writeFileSync(p, helloElf(other));
    chmodSync(p, 0o755);
    const r = await run([QEMU!, p]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(HELLO_MESSAGE);
    cleanup(d);
  });
});
