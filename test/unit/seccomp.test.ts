/**
 * The seccomp compiler, checked by running its BPF output in a small classic-BPF interpreter
 * written here (the kernel's semantics for the instructions we emit) over synthetic
 * seccomp_data; and the syscall tables checked against the kernel headers where installed.
 */
import { skipUnless } from "../helpers/env.ts";
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { defaultSeccompProfile } from "../../src/core/container/seccomp-default.ts";
import { SYSCALLS_AARCH64, SYSCALLS_I386, SYSCALLS_X86_64 } from "../../src/plugins/runtime-linux/seccomp-tables.ts";
import { actionValue, compileSeccomp } from "../../src/plugins/runtime-linux/seccomp.ts";
import type { SeccompSpec } from "../../src/core/runtime/oci.ts";
import { syscallNumbers } from "../../src/plugins/runtime-linux/syscalls.ts";

const AUDIT = { x86_64: 0xc000003e, i386: 0x40000003, aarch64: 0xc00000b7, arm: 0x40000028 };
const native = process.arch === "arm64" ? "aarch64" : "x86_64";
const table = process.arch === "arm64" ? SYSCALLS_AARCH64 : SYSCALLS_X86_64;

/** Run a classic BPF program over seccomp_data {nr, arch, ip, args[6]}. */
function runBpf(prog: Uint8Array, data: { nr: number; arch: number; args?: bigint[] }): number {
  const mem = new DataView(new ArrayBuffer(64));
  mem.setUint32(0, data.nr, true);
  mem.setUint32(4, data.arch, true);
  (data.args ?? []).forEach((a, i) => mem.setBigUint64(16 + i * 8, BigInt.asUintN(64, a), true));
  const v = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  let A = 0;
  for (let pc = 0, steps = 0; steps < 100_000; steps++) {
    const code = v.getUint16(pc * 8, true);
    const jt = v.getUint8(pc * 8 + 2);
    const jf = v.getUint8(pc * 8 + 3);
    const k = v.getUint32(pc * 8 + 4, true);
    pc++;
    switch (code) {
      case 0x20: A = mem.getUint32(k, true); break;
      case 0x54: A = (A & k) >>> 0; break;
      case 0x05: pc += k; break;
      case 0x15: pc += A === k ? jt : jf; break;
      case 0x25: pc += A > k ? jt : jf; break;
      case 0x35: pc += A >= k ? jt : jf; break;
      case 0x06: return k;
      default: throw new Error(`unknown opcode ${code.toString(16)}`);
    }
  }
  throw new Error("runaway program");
}

const ALLOW = 0x7fff0000;
const EPERM = 0x00050001;

describe("seccomp BPF compiler", () => {
  const nr = (n: string) => table[n]!;
  const profile: SeccompSpec = {
    defaultAction: "SCMP_ACT_ERRNO",
    syscalls: [
      { names: ["read", "write", "no_such_call"], action: "SCMP_ACT_ALLOW" },
      { names: ["kill"], action: "SCMP_ACT_ERRNO", errnoRet: 13 },
      { names: ["socket"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 1, op: "SCMP_CMP_EQ" }] },
      { names: ["mmap"], action: "SCMP_ACT_ALLOW", args: [{ index: 2, value: 4, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }] },
      { names: ["lseek"], action: "SCMP_ACT_ALLOW", args: [{ index: 1, value: 0x1_0000_0000, op: "SCMP_CMP_GE" }] },
      { names: ["dup3"], action: "SCMP_ACT_ALLOW", args: [{ index: 2, value: 5, op: "SCMP_CMP_LT" }, { index: 0, value: 7, op: "SCMP_CMP_NE" }] },
      { names: ["fcntl"], action: "SCMP_ACT_KILL_PROCESS", args: [{ index: 1, value: 10, op: "SCMP_CMP_GT" }] },
      { names: ["fcntl"], action: "SCMP_ACT_ALLOW", args: [{ index: 1, value: 10, op: "SCMP_CMP_LE" }] },
    ],
  };
  const { program } = compileSeccomp(profile);
  const run = (name: string, args: (number | bigint)[] = []) => runBpf(program, { nr: nr(name), arch: AUDIT[native], args: args.map(BigInt) });

  test("plain rules, errno actions and the default", () => {
    expect(run("read")).toBe(ALLOW);
    expect(run("write")).toBe(ALLOW);
    expect(run("kill")).toBe(0x0005000d);
    expect(run("getpid")).toBe(EPERM); // default: ERRNO(EPERM)
  });

  test("argument conditions on 64-bit values: EQ, MASKED_EQ, GE across the word boundary, LT with NE, GT/LE", () => {
    expect(run("socket", [1])).toBe(ALLOW);
    expect(run("socket", [2])).toBe(EPERM);
    expect(run("socket", [0x1_0000_0001n])).toBe(EPERM); // high word differs
    expect(run("mmap", [0, 0, 3])).toBe(ALLOW); // no PROT_EXEC bit
    expect(run("mmap", [0, 0, 7])).toBe(EPERM);
    expect(run("lseek", [0, 0xffff_ffff])).toBe(EPERM);
    expect(run("lseek", [0, 0x1_0000_0000n])).toBe(ALLOW);
    expect(run("lseek", [0, 0x2_0000_0000n])).toBe(ALLOW);
    expect(run("dup3", [3, 4, 4])).toBe(ALLOW);
    expect(run("dup3", [7, 4, 4])).toBe(EPERM); // arg0 == 7
    expect(run("dup3", [3, 4, 5])).toBe(EPERM); // arg2 not < 5
    expect(run("dup3", [3, 4, -1])).toBe(EPERM); // 0xffff… is large, not negative
    expect(run("fcntl", [0, 11])).toBe(0x80000000);
    expect(run("fcntl", [0, 10])).toBe(ALLOW);
  });

  test("a foreign architecture is killed; x32 calls get the default", () => {
    expect(runBpf(program, { nr: 0, arch: AUDIT.arm })).toBe(0x80000000);
    if (native === "x86_64") expect(runBpf(program, { nr: 0x40000000 + nr("read"), arch: AUDIT.x86_64 })).toBe(EPERM);
  });

  test("the default profile: ordinary calls pass, namespace and mount calls fail with EPERM, clone3 says ENOSYS", () => {
    const prof = defaultSeccompProfile(["CAP_CHOWN", "CAP_KILL"]);
    const { program: p, instructions } = compileSeccomp(prof);
    expect(instructions).toBeLessThan(4096);
    const r = (name: string, args: (number | bigint)[] = []) => runBpf(p, { nr: table[name]!, arch: AUDIT[native], args: args.map(BigInt) });
    for (const ok of ["read", "openat", "execve", "exit_group", "futex", "epoll_wait", "socket", "rt_sigaction", "wait4", "close_range"]) {
      if (table[ok] !== undefined) expect(r(ok)).toBe(ALLOW);
    }
    for (const denied of ["unshare", "mount", "setns", "pivot_root", "reboot", "init_module", "ptrace", "bpf"]) expect(r(denied)).toBe(EPERM);
    expect(r("clone", [0x11])).toBe(ALLOW); // SIGCHLD, a fork
    expect(r("clone", [0x20000000 | 0x11])).toBe(EPERM); // CLONE_NEWPID
    expect(r("clone3")).toBe(0x00050026); // ENOSYS
    expect(r("personality", [0])).toBe(ALLOW);
    expect(r("personality", [0x0040000])).toBe(EPERM); // ADDR_NO_RANDOMIZE
    // Granting CAP_SYS_ADMIN gives back what it allows.
    const admin = compileSeccomp(defaultSeccompProfile(["CAP_SYS_ADMIN"])).program;
    expect(runBpf(admin, { nr: table.mount!, arch: AUDIT[native] })).toBe(ALLOW);
    expect(runBpf(admin, { nr: table.clone!, arch: AUDIT[native], args: [0x20000000n] })).toBe(ALLOW);
  });

  test("bad profiles are refused naming the field", () => {
    expect(() => compileSeccomp({ defaultAction: "SCMP_ACT_NOTIFY" })).toThrow("action SCMP_ACT_NOTIFY is not supported");
    expect(() => compileSeccomp({ defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_VAX"] })).toThrow("linux.seccomp.architectures: unknown architecture SCMP_ARCH_VAX");
    expect(actionValue("SCMP_ACT_ERRNO", undefined)).toBe(EPERM);
  });
});

describe("system call tables", () => {
  const headers: [string, Record<string, number>, RegExp][] = [
    ["/usr/include/x86_64-linux-gnu/asm/unistd_64.h", SYSCALLS_X86_64, /#define __NR_(\w+) (\d+)/g],
    ["/usr/include/x86_64-linux-gnu/asm/unistd_32.h", SYSCALLS_I386, /#define __NR_(\w+) (\d+)/g],
  ];
  for (const [file, t, re] of headers) {
    test.skipIf(skipUnless(`match ${file}`, { "the kernel header (linux-libc-dev)": existsSync(file) }))(`match ${file}`, () => {
      for (const [, name, num] of readFileSync(file, "utf8").matchAll(re)) expect([name, t[name!]]).toEqual([name, Number(num)]);
    });
  }
  test("the stub's numbers agree with the full tables", () => {
    for (const [arch, t] of [["x64", SYSCALLS_X86_64], ["arm64", SYSCALLS_AARCH64]] as const) {
      for (const [name, num] of Object.entries(syscallNumbers(arch))) expect([arch, name, t[name]]).toEqual([arch, name, num]);
    }
  });
});
