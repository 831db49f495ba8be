/**
 * Device rules on cgroup v2: v2 has no devices.allow/deny files; access to device nodes is
 * decided by an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup. This
 * module compiles the spec's rules (linux.resources.devices, in order, the last matching rule
 * deciding, as with v1's files) to such a program and attaches it with bpf(2).
 *
 * The program sees struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor;}, where
 * access_type is (access << 16) | type, type 1 = block, 2 = char, access bits 1 = mknod,
 * 2 = read, 4 = write. It returns 1 to allow, 0 to deny. A rule matches when its type and
 * numbers match (wildcards match anything) and the requested access is a subset of the rule's.
 */
import { closeSync, openSync } from "node:fs";
import { EngineError } from "../../core/errors.ts";
import { addressOf } from "../../core/sys/cc.ts";
import { O_CLOEXEC, O_DIRECTORY, O_RDONLY, type Sys } from "../../core/sys/sys.ts";

/** One device rule as the runtime spec gives it. */
export interface DeviceRule {
  allow: boolean;
  type?: "a" | "b" | "c";
  major?: number | null;
  minor?: number | null;
  access?: string;
}

const BPF_PROG_LOAD = 5;
const BPF_PROG_ATTACH = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
const BPF_CGROUP_DEVICE = 6;
const BPF_F_ALLOW_MULTI = 2;

// Opcodes (linux/bpf.h, bpf_common.h).
const LDX_MEM_W = 0x61; // dst = *(u32 *)(src + off)
const ALU64_AND_K = 0x57;
const ALU64_RSH_K = 0x77;
const ALU64_MOV_K = 0xb7;
const ALU64_MOV_X = 0xbf;
const JMP_JNE_K = 0x55;
const JMP_EXIT = 0x95;

type Insn = [code: number, dst: number, src: number, off: number, imm: number];

function accessBits(access: string | undefined, what: string): number {
  let bits = 0;
  for (const ch of access ?? "rwm") {
    if (ch === "m") bits |= 1;
    else if (ch === "r") bits |= 2;
    else if (ch === "w") bits |= 4;
    else throw new EngineError("invalid-argument", `${what}: access ${JSON.stringify(access)}: only r, w and m are allowed`);
  }
  return bits;
}

/** The program's instructions for `rules` (the last matching rule wins; no match denies). */
export function deviceFilterInsns(rules: readonly DeviceRule[]): Insn[] {
  const out: Insn[] = [
    [LDX_MEM_W, 2, 1, 0, 0], // r2 = access_type
    [ALU64_AND_K, 2, 0, 0, 0xffff], // r2 = type
    [LDX_MEM_W, 3, 1, 0, 0],
    [ALU64_RSH_K, 3, 0, 0, 16], // r3 = access
    [LDX_MEM_W, 4, 1, 4, 0], // r4 = major
    [LDX_MEM_W, 5, 1, 8, 0], // r5 = minor
  ];
  // Checked from the last rule back: the first match in the program is the last in the list.
  // A rule that matches everything ends the program (the verifier refuses unreachable code).
  let decided = false;
  [...rules].reverse().forEach((rule, i) => {
    if (decided) return;
    const what = `linux.resources.devices[${rules.length - 1 - i}]`;
    const checks: Insn[][] = [];
    const type = rule.type ?? "a";
    if (type !== "a") checks.push([[JMP_JNE_K, 2, 0, -1, type === "b" ? 1 : 2]]);
    const bits = accessBits(rule.access, what);
    if (bits !== 7) {
      // r1 = access & ~bits: any requested bit the rule lacks means no match.
      checks.push([
        [ALU64_MOV_X, 1, 3, 0, 0],
        [ALU64_AND_K, 1, 0, 0, ~bits & 7],
        [JMP_JNE_K, 1, 0, -1, 0],
      ]);
    }
    if (rule.major !== undefined && rule.major !== null && rule.major >= 0) checks.push([[JMP_JNE_K, 4, 0, -1, rule.major]]);
    if (rule.minor !== undefined && rule.minor !== null && rule.minor >= 0) checks.push([[JMP_JNE_K, 5, 0, -1, rule.minor]]);
    const body = checks.flat();
    const tail: Insn[] = [
      [ALU64_MOV_K, 0, 0, 0, rule.allow ? 1 : 0],
      [JMP_EXIT, 0, 0, 0, 0],
    ];
    // Every "no match" jump goes past this rule's body and tail.
    body.forEach((insn, k) => {
      if (insn[3] === -1) insn[3] = body.length - k - 1 + tail.length;
    });
    out.push(...body, ...tail);
    decided = body.length === 0;
  });
  if (!decided) out.push([ALU64_MOV_K, 0, 0, 0, 0], [JMP_EXIT, 0, 0, 0, 0]);
  return out;
}

/** Encode instructions as struct bpf_insn (8 bytes each). */
export function encodeInsns(insns: Insn[]): Uint8Array {
  const b = new Uint8Array(insns.length * 8);
  const v = new DataView(b.buffer);
  insns.forEach(([code, dst, src, off, imm], i) => {
    v.setUint8(i * 8, code);
    v.setUint8(i * 8 + 1, (dst & 0xf) | ((src & 0xf) << 4));
    v.setInt16(i * 8 + 2, off, true);
    v.setInt32(i * 8 + 4, imm, true);
  });
  return b;
}

/**
 * Load the program for `rules` and attach it to the cgroup v2 directory `cgroupDir`. The
 * attachment keeps the program alive; it goes with the cgroup.
 */
export function attachDeviceFilter(sys: Sys, cgroupDir: string, rules: readonly DeviceRule[]): void {
  const insns = encodeInsns(deviceFilterInsns(rules));
  const license = new TextEncoder().encode("Apache\0");
  const log = new Uint8Array(65536);
  const attr = new Uint8Array(128);
  const v = new DataView(attr.buffer);
  v.setUint32(0, BPF_PROG_TYPE_CGROUP_DEVICE, true);
  v.setUint32(4, insns.length / 8, true);
  v.setBigUint64(8, BigInt(addressOf(insns)), true);
  v.setBigUint64(16, BigInt(addressOf(license)), true);
  v.setUint32(24, 1, true); // log_level
  v.setUint32(28, log.length, true);
  v.setBigUint64(32, BigInt(addressOf(log)), true);
  let prog: number;
  try {
    prog = sys.bpf(BPF_PROG_LOAD, attr, "load the device filter");
  } catch (err) {
    const verifier = new TextDecoder().decode(log.subarray(0, log.indexOf(0))).trim();
    throw new EngineError("failed-precondition", `linux.resources.devices: ${(err as Error).message}${verifier ? `: ${verifier}` : ""}`);
  }
  try {
    const dir = openSync(cgroupDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    try {
      const a = new Uint8Array(20);
      const av = new DataView(a.buffer);
      av.setUint32(0, dir, true); // target_fd
      av.setUint32(4, prog, true); // attach_bpf_fd
      av.setUint32(8, BPF_CGROUP_DEVICE, true);
      av.setUint32(12, BPF_F_ALLOW_MULTI, true);
      sys.bpf(BPF_PROG_ATTACH, a, `attach the device filter to ${cgroupDir}`);
    } finally {
      closeSync(dir);
    }
  } finally {
    closeSync(prog);
  }
}
