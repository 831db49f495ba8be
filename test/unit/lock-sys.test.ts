import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { lockDataRoot } from "../../src/core/daemon/lock.ts";
import { EngineError, SyscallError } from "../../src/core/errors.ts";
import { createFakeSys } from "../../src/core/sys/fake-sys.ts";
import { EWOULDBLOCK, LOCK_EX, LOCK_NB, LOCK_UN, linuxSys } from "../../src/core/sys/sys.ts";
import { cleanup, tempDir } from "../helpers/daemon.ts";

describe("data-root lock through the Sys seam", () => {
  test("asks for an exclusive non-blocking flock and unlocks on release", () => {
    const dir = tempDir();
    const sys = createFakeSys();
    const lock = lockDataRoot(sys, dir);
    expect(readFileSync(join(dir, "bunker.lock"), "utf8")).toBe(`${process.pid}\n`);
    lock.release();
    expect(sys.calls.map((c) => [c.name, c.args[1]])).toEqual([["flock", LOCK_EX | LOCK_NB], ["flock", LOCK_UN]]);
    cleanup(dir);
  });

  test("EWOULDBLOCK becomes 'unavailable' naming the data root", () => {
    const dir = tempDir();
    const sys = createFakeSys();
    sys.failNext("flock", EWOULDBLOCK);
    try {
      lockDataRoot(sys, dir);
      throw new Error("locked twice");
    } catch (e) {
      expect((e as EngineError).code).toBe("unavailable");
      expect((e as Error).message).toContain(`is already using data root ${dir}`);
    }
    cleanup(dir);
  });

  test("other errors pass through with syscall, errno and path", () => {
    const dir = tempDir();
    const sys = createFakeSys();
    sys.failNext("flock", 9);
    expect(() => lockDataRoot(sys, dir)).toThrow(`flock ${join(dir, "bunker.lock")}: EBADF`);
    cleanup(dir);
  });

  test("the real flock excludes a second holder until release", () => {
    const dir = tempDir();
    const a = lockDataRoot(linuxSys(), dir);
    expect(() => lockDataRoot(linuxSys(), dir)).toThrow("already using data root");
    a.release();
    lockDataRoot(linuxSys(), dir).release();
    cleanup(dir);
  });

  test("the real flock reports errno for a bad descriptor", () => {
    try {
      linuxSys().flock(987654, LOCK_EX, "/nowhere");
      throw new Error("flock on a bad fd succeeded");
    } catch (e) {
      expect(e).toBeInstanceOf(SyscallError);
      expect((e as SyscallError).errno).toBe(9);
      expect((e as SyscallError).syscall).toBe("flock");
    }
  });
});
