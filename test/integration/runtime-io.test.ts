/**
 * Output capture by the monitor (runtime-linux, the engine's path): stdout and stderr spooled
 * apart, stdin through a pipe the caller closes, a terminal whose master the monitor holds (input,
 * resize), and stdin held open by the monitor when the caller lets go.
 */
import { ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, writeSync } from "node:fs";
import { join } from "node:path";
import { readSpool } from "../../src/core/container/spool.ts";
import { linuxSys } from "../../src/core/sys/sys.ts";
import { LinuxRuntime } from "../../src/plugins/runtime-linux/runtime.ts";
import type { Spec } from "../../src/core/runtime/oci.ts";
import { busyboxRootfs, testSpec, writeBundle } from "../helpers/bundle.ts";
import { cleanup, tempDir } from "../helpers/daemon.ts";
import { BUSYBOX } from "../helpers/images.ts";


describe.skipIf(skipUnless("monitor output capture", { "root": ROOT, "busybox-static": BUSYBOX }))("monitor output capture", () => {
  let dir: string;
  let rootfs: string;
  let rt: LinuxRuntime;
  const text = (spool: string, stream?: number) =>
    readSpool(spool, 0)
      .records.filter((r) => stream === undefined || r.stream === stream)
      .map((r) => new TextDecoder().decode(r.data))
      .join("");
  async function exitOf(id: string): Promise<number> {
    for (let i = 0; i < 200 && rt.exitCode(id) === undefined; i++) await Bun.sleep(20);
    return rt.exitCode(id)!;
  }
  function bundle(id: string, args: string[], edit?: (s: Spec) => void) {
    return writeBundle(join(dir, id), rootfs, testSpec(args, edit));
  }

  beforeAll(async () => {
    dir = tempDir("bunker-rtio-");
    rootfs = await busyboxRootfs(dir);
    rt = new LinuxRuntime(linuxSys(), join(dir, "state"));
  });
  afterAll(() => cleanup(dir));

  test("stdout and stderr are spooled apart; stdin is a pipe whose end of file the container sees", async () => {
    const spool = join(dir, "a.spool");
    const c = await rt.create("a", { bundle: bundle("a", ["sh", "-c", "cat; echo err >&2; exit 4"]), monitor: true, io: { spool, stdin: "pipe" } });
    expect(c.stdin).toBeNumber();
    await rt.start("a");
    writeSync(c.stdin!, "hello\n");
    closeSync(c.stdin!);
    expect(await exitOf("a")).toBe(4);
    expect(text(spool, 1)).toBe("hello\n");
    expect(text(spool, 2)).toBe("err\n");
    await rt.delete("a");
  });

  test("a terminal: the monitor holds the master; input, resize and output go through it", async () => {
    const spool = join(dir, "t.spool");
    await rt.create("t", { bundle: bundle("t", ["sh"], (s) => void (s.process!.terminal = true)), monitor: true, io: { spool, stdin: "null" } });
    await rt.start("t");
    const master = rt.monitorFd("t", "output");
    const ws = new Uint8Array(8);
    new DataView(ws.buffer).setUint16(0, 33, true);
    new DataView(ws.buffer).setUint16(2, 101, true);
    linuxSys().ioctl(master, 0x5414 /* TIOCSWINSZ */, ws, "pty master");
    writeSync(master, "stty size; tty; exit 3\n");
    closeSync(master);
    expect(await exitOf("t")).toBe(3);
    const out = text(spool);
    expect(out).toContain("33 101");
    expect(out).toContain("/dev/pts/0");
    expect(readSpool(spool, 0).records.every((r) => r.stream === 1)).toBe(true);
    await rt.delete("t");
  });

  test("stdin held by the monitor stays open when the caller lets go; a later caller fetches it", async () => {
    const spool = join(dir, "h.spool");
    const c = await rt.create("h", { bundle: bundle("h", ["cat"]), monitor: true, io: { spool, stdin: "hold" } });
    await rt.start("h");
    closeSync(c.stdin!); // as a daemon that goes away
    await Bun.sleep(200);
    expect(rt.state("h").status).toBe("running"); // no end of file
    const again = rt.monitorFd("h", "stdinHold");
    writeSync(again, "still here\n");
    closeSync(again);
    for (let i = 0; i < 100 && !text(spool).includes("still here"); i++) await Bun.sleep(20);
    expect(text(spool)).toBe("still here\n");
    await rt.kill("h", "SIGKILL");
    expect(await exitOf("h")).toBe(137);
    await rt.delete("h");
  });
});
