/**
 * OCI seccomp profiles compiled to classic BPF, in TypeScript (no libseccomp).
 *
 * The program checks the architecture first (an architecture the profile does not name gets
 * SECCOMP_RET_KILL_PROCESS, as libseccomp's default "bad arch" action), then, per architecture,
 * tries the profile's rules in order: a rule matches when the syscall number is one of its names
 * and every argument condition holds; the first match returns the rule's action, and no match
 * returns the default action. Arguments are compared as 64-bit values (high word, then low word).
 * Syscall names the architecture does not have are skipped, as libseccomp does.
 *
 * Conditional jumps in classic BPF reach at most 255 instructions ahead, so the code is laid
 * out in blocks that never need more: runs of plain "allow these syscalls" names become chunks
 * of at most 200 comparisons followed by their return, and rules with argument conditions are
 * small self-contained blocks.
 */
import { invalidArgument } from "../../core/errors.ts";
import { SYSCALLS_AARCH64, SYSCALLS_I386, SYSCALLS_X86_64 } from "./seccomp-tables.ts";
import type { SeccompSpec } from "../../core/runtime/oci.ts";

// BPF opcodes (linux/filter.h).
const BPF_LD_W_ABS = 0x20;
const BPF_JMP_JA = 0x05;
const BPF_JEQ_K = 0x15;
const BPF_JGT_K = 0x25;
const BPF_JGE_K = 0x35;
const BPF_ALU_AND_K = 0x54;
const BPF_RET_K = 0x06;

// seccomp return values.
const RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
};

/** AUDIT_ARCH_* values and tables of the architectures supported. */
const ARCHES: Record<string, { audit: number; table: Record<string, number> }> = {
  SCMP_ARCH_X86_64: { audit: 0xc000003e, table: SYSCALLS_X86_64 },
  SCMP_ARCH_X86: { audit: 0x40000003, table: SYSCALLS_I386 },
  SCMP_ARCH_AARCH64: { audit: 0xc00000b7, table: SYSCALLS_AARCH64 },
};
/** Architectures a profile may name that this compiler ignores (no table: those programs get the bad-arch action). */
const IGNORED_ARCHES = new Set([
  "SCMP_ARCH_X32",
  "SCMP_ARCH_ARM",
  "SCMP_ARCH_MIPS",
  "SCMP_ARCH_MIPS64",
  "SCMP_ARCH_MIPS64N32",
  "SCMP_ARCH_MIPSEL",
  "SCMP_ARCH_MIPSEL64",
  "SCMP_ARCH_MIPSEL64N32",
  "SCMP_ARCH_PPC",
  "SCMP_ARCH_PPC64",
  "SCMP_ARCH_PPC64LE",
  "SCMP_ARCH_S390",
  "SCMP_ARCH_S390X",
  "SCMP_ARCH_RISCV64",
  "SCMP_ARCH_LOONGARCH64",
]);

/** The architecture of the running kernel. */
export function nativeArch(): string {
  return process.arch === "arm64" ? "SCMP_ARCH_AARCH64" : "SCMP_ARCH_X86_64";
}

/** One BPF instruction. */
interface Insn {
  code: number;
  jt: number | Label;
  jf: number | Label;
  k: number | Label;
}

class Label {
  at = -1;
}

/** The return value for an OCI action. */
export function actionValue(action: string, errnoRet: number | undefined, defaultErrno = 1): number {
  switch (action) {
    case "SCMP_ACT_KILL":
    case "SCMP_ACT_KILL_THREAD":
      return RET.KILL_THREAD;
    case "SCMP_ACT_KILL_PROCESS":
      return RET.KILL_PROCESS;
    case "SCMP_ACT_TRAP":
      return RET.TRAP;
    case "SCMP_ACT_ERRNO":
      return (RET.ERRNO | ((errnoRet ?? defaultErrno) & 0xffff)) >>> 0;
    case "SCMP_ACT_TRACE":
      return (RET.TRACE | ((errnoRet ?? 0) & 0xffff)) >>> 0;
    case "SCMP_ACT_LOG":
      return RET.LOG;
    case "SCMP_ACT_ALLOW":
      return RET.ALLOW;
    default:
      throw invalidArgument(`linux.seccomp: action ${action} is not supported by this runtime`);
  }
}

/** A small assembler with labels; offsets are checked to fit the 8-bit fields. */
class Program {
  readonly insns: Insn[] = [];
  emit(code: number, k: number | Label = 0, jt: number | Label = 0, jf: number | Label = 0): void {
    this.insns.push({ code, jt, jf, k });
  }
  label(l: Label): void {
    l.at = this.insns.length;
  }
  /** Encode to struct sock_filter[] bytes. */
  encode(): Uint8Array {
    const out = new Uint8Array(this.insns.length * 8);
    const v = new DataView(out.buffer);
    this.insns.forEach((ins, i) => {
      const rel = (t: number | Label, long: boolean) => {
        if (typeof t === "number") return t;
        if (t.at < 0) throw new Error("seccomp: unplaced label");
        const d = t.at - i - 1;
        if (d < 0 || (!long && d > 255)) throw new Error(`seccomp: jump of ${d} at ${i} does not fit`);
        return d;
      };
      v.setUint16(i * 8, ins.code, true);
      v.setUint8(i * 8 + 2, rel(ins.jt, false));
      v.setUint8(i * 8 + 3, rel(ins.jf, false));
      v.setUint32(i * 8 + 4, (ins.code === BPF_JMP_JA ? rel(ins.k, true) : (ins.k as number)) >>> 0, true);
    });
    return out;
  }
}

const ARGS_OFF = 16;
const hi = (x: number | bigint) => Number((BigInt(x) >> 32n) & 0xffffffffn);
const lo = (x: number | bigint) => Number(BigInt(x) & 0xffffffffn);

/** Emit the checks of one argument condition: falls through when it holds, jumps to `fail` when not. */
function argCheck(p: Program, a: NonNullable<NonNullable<SeccompSpec["syscalls"]>[number]["args"]>[number], fail: Label): void {
  const hiOff = ARGS_OFF + a.index * 8 + 4;
  const loOff = ARGS_OFF + a.index * 8;
  const v = a.value;
  const pass = new Label();
  switch (a.op) {
    case "SCMP_CMP_EQ":
      p.emit(BPF_LD_W_ABS, hiOff);
      p.emit(BPF_JEQ_K, hi(v), 0, fail);
      p.emit(BPF_LD_W_ABS, loOff);
      p.emit(BPF_JEQ_K, lo(v), 0, fail);
      break;
    case "SCMP_CMP_NE":
      p.emit(BPF_LD_W_ABS, hiOff);
      p.emit(BPF_JEQ_K, hi(v), 0, pass);
      p.emit(BPF_LD_W_ABS, loOff);
      p.emit(BPF_JEQ_K, lo(v), fail, 0);
      break;
    case "SCMP_CMP_MASKED_EQ": {
      const want = a.valueTwo ?? 0;
      p.emit(BPF_LD_W_ABS, hiOff);
      p.emit(BPF_ALU_AND_K, hi(v));
      p.emit(BPF_JEQ_K, hi(want), 0, fail);
      p.emit(BPF_LD_W_ABS, loOff);
      p.emit(BPF_ALU_AND_K, lo(v));
      p.emit(BPF_JEQ_K, lo(want), 0, fail);
      break;
    }
    case "SCMP_CMP_GT":
    case "SCMP_CMP_GE":
      p.emit(BPF_LD_W_ABS, hiOff);
      p.emit(BPF_JGT_K, hi(v), pass, 0);
      p.emit(BPF_JEQ_K, hi(v), 0, fail);
      p.emit(BPF_LD_W_ABS, loOff);
      p.emit(a.op === "SCMP_CMP_GT" ? BPF_JGT_K : BPF_JGE_K, lo(v), pass, fail);
      break;
    case "SCMP_CMP_LT":
    case "SCMP_CMP_LE":
      p.emit(BPF_LD_W_ABS, hiOff);
      p.emit(BPF_JGT_K, hi(v), fail, 0);
      p.emit(BPF_JEQ_K, hi(v), 0, pass);
      p.emit(BPF_LD_W_ABS, loOff);
      p.emit(a.op === "SCMP_CMP_LT" ? BPF_JGE_K : BPF_JGT_K, lo(v), fail, pass);
      break;
  }
  p.label(pass);
}

/** Compile `profile` to a BPF program (struct sock_filter[]). */
export function compileSeccomp(profile: SeccompSpec): { program: Uint8Array; instructions: number } {
  const defaultRet = actionValue(profile.defaultAction, profile.defaultErrnoRet);
  const named = profile.architectures?.length ? profile.architectures : [nativeArch()];
  for (const a of named) {
    if (!(a in ARCHES) && !IGNORED_ARCHES.has(a)) throw invalidArgument(`linux.seccomp.architectures: unknown architecture ${a}`);
  }
  // The native architecture is always filtered, as libseccomp does.
  const arches = [...new Set([nativeArch(), ...named.filter((a) => a in ARCHES)])];
  for (const f of profile.flags ?? []) {
    if (!["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"].includes(f)) throw invalidArgument(`linux.seccomp.flags: ${f} is not supported`);
  }
  if (profile.listenerPath) throw invalidArgument("linux.seccomp.listenerPath: seccomp notification is not supported by this runtime");

  const p = new Program();
  const archBlocks = arches.map(() => new Label());
  p.emit(BPF_LD_W_ABS, 4); // seccomp_data.arch
  arches.forEach((a, i) => {
    const next = new Label();
    p.emit(BPF_JEQ_K, ARCHES[a]!.audit, 0, next);
    p.emit(BPF_JMP_JA, archBlocks[i]!);
    p.label(next);
  });
  p.emit(BPF_RET_K, RET.KILL_PROCESS);

  arches.forEach((a, ai) => {
    p.label(archBlocks[ai]!);
    const table = ARCHES[a]!.table;
    p.emit(BPF_LD_W_ABS, 0); // seccomp_data.nr
    if (a === "SCMP_ARCH_X86_64") {
      // x32 system calls (bit 30) are not in the profile's x86-64 table: default action.
      const native = new Label();
      p.emit(BPF_JGE_K, 0x40000000, 0, native);
      p.emit(BPF_RET_K, defaultRet);
      p.label(native);
    }
    // Pending plain names (no argument conditions) with one action, flushed as chunks.
    let pending: { nrs: number[]; ret: number } | undefined;
    const flush = () => {
      if (!pending) return;
      const { nrs, ret } = pending;
      for (let start = 0; start < nrs.length; start += 200) {
        const chunk = nrs.slice(start, start + 200);
        const hit = new Label();
        const after = new Label();
        for (const nr of chunk) p.emit(BPF_JEQ_K, nr, hit, 0);
        p.emit(BPF_JMP_JA, after);
        p.label(hit);
        p.emit(BPF_RET_K, ret);
        p.label(after);
        p.emit(BPF_LD_W_ABS, 0);
      }
      pending = undefined;
    };
    for (const [ri, rule] of (profile.syscalls ?? []).entries()) {
      const ret = actionValue(rule.action, rule.errnoRet, profile.defaultErrnoRet ?? 1);
      const nrs = [...new Set(rule.names.map((n) => table[n]).filter((n): n is number => n !== undefined))];
      if (nrs.length === 0) continue;
      if (ret === defaultRet) continue; // same as no rule
      if (!rule.args?.length) {
        if (pending && pending.ret !== ret) flush();
        pending ??= { nrs: [], ret };
        pending.nrs.push(...nrs);
        continue;
      }
      flush();
      const args = rule.args;
      if (args.length > 6) throw invalidArgument(`linux.seccomp.syscalls[${ri}].args: at most 6 conditions`);
      for (const nr of nrs) {
        const skip = new Label();
        p.emit(BPF_JEQ_K, nr, 0, skip);
        for (const a of args) argCheck(p, a, skip);
        p.emit(BPF_RET_K, ret);
        p.label(skip);
        p.emit(BPF_LD_W_ABS, 0);
      }
    }
    flush();
    p.emit(BPF_RET_K, defaultRet);
  });
  if (p.insns.length > 4096) throw invalidArgument(`linux.seccomp: the profile compiles to ${p.insns.length} instructions, above the kernel's limit of 4096`);
  return { program: p.encode(), instructions: p.insns.length };
}

/** SECCOMP_FILTER_FLAG_* bits for the profile's flags. */
export function seccompFlags(profile: SeccompSpec): number {
  let f = 0;
  for (const x of profile.flags ?? []) {
    if (x === "SECCOMP_FILTER_FLAG_TSYNC") f |= 1;
    else if (x === "SECCOMP_FILTER_FLAG_LOG") f |= 2;
    else if (x === "SECCOMP_FILTER_FLAG_SPEC_ALLOW") f |= 4;
  }
  return f;
}
