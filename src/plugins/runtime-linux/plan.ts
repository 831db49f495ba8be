/**
 * Plans for the C stub (stub-source.ts): TypeScript decides every step a new container process
 * takes between clone and exec and writes it down as a list of operations over one buffer; the
 * stub only interprets it. Strings and structures live in the same buffer; operation arguments
 * refer to them by offset, to registers (results of earlier calls), or are plain numbers.
 * Pointer arrays (argv, envp) and pointers inside structures are absolute, fixed when the plan is
 * finished, so the buffer must stay alive and unmoved until the child has exec'd.
 */
import { addressOf } from "../../core/sys/cc.ts";
import { type Arch, type SyscallName, syscallNumbers } from "./syscalls.ts";

/** Operation kinds (OP_* in the C source). */
export const OpKind = { Syscall: 1, FdPath: 2, FsType: 3, CwdCheck: 4, Fork: 5, JumpIfZero: 6, Set: 7, Fail: 8, Clone: 9, Wait: 10, Store32: 11, Trim: 12, Load32: 13, Relay: 14, Init: 15 } as const;

/** Custom failure codes the stub reports instead of an errno. */
export const StubError = { End: -1, FsType: -2, Cwd: -3, NotFound: -4 } as const;

/** Something placed in the plan's data area, by offset. */
export class DataRef {
  constructor(readonly offset: number) {}
}

/** The address of a register's slot in the plan (to write a result out with `write`). */
export class RegSlot {
  constructor(readonly reg: Reg) {}
}

/** A register (result of an earlier op). */
export class Reg {
  constructor(readonly index: number) {}
}

/** An operation argument. */
export type Arg = number | bigint | DataRef | Reg | RegSlot;

/** A jump target, resolved when the plan is finished. */
export class Label {
  index = -1;
}

interface Op {
  kind: number;
  nr: number;
  args: Arg[];
  store: Reg | undefined;
  ok: number[];
  /** What this step does, for error messages (`mount proc on /proc`). */
  what: string;
  target?: Label;
  /** The failure code is a wait status (of a hook), not an errno. */
  waitStatus?: boolean;
}

const MAGIC = 0x424e4b5250304c31n;
const HEADER = 352; // struct plan: 12 longs + 32 registers
const OP_SIZE = 80;
const REGS_OFF = 96; // offset of regs[0] in struct plan

/** A finished plan: the buffer to hand to the stub, and the descriptions of its steps. */
export interface BuiltPlan {
  buffer: Uint8Array;
  steps: string[];
  /** Steps whose failure code is a wait status rather than an errno. */
  waitStatusSteps: Set<number>;
}

/** Builds one plan. */
export class PlanBuilder {
  readonly nr: Record<SyscallName, number>;
  private readonly ops: Op[] = [];
  private dataLen = 0;
  private readonly chunks: { offset: number; bytes: Uint8Array }[] = [];
  private readonly fixups: { at: number; target: number }[] = [];
  private nextReg = 0;

  constructor(readonly arch: Arch = process.arch as Arch) {
    this.nr = syscallNumbers(arch);
  }

  /** A fresh register. */
  reg(): Reg {
    if (this.nextReg >= 32) throw new Error("plan: out of registers");
    return new Reg(this.nextReg++);
  }

  /** Bytes in the data area (8-byte aligned). */
  bytes(b: Uint8Array): DataRef {
    const offset = this.dataLen;
    this.chunks.push({ offset, bytes: b });
    this.dataLen += (b.length + 7) & ~7;
    return new DataRef(offset);
  }

  /** A NUL-terminated string. */
  str(s: string): DataRef {
    const enc = new TextEncoder().encode(s);
    const b = new Uint8Array(enc.length + 1);
    b.set(enc);
    return this.bytes(b);
  }

  /** Zeroed scratch space. */
  scratch(size: number): DataRef {
    return this.bytes(new Uint8Array(size));
  }

  /** A NULL-terminated array of pointers to `refs` (argv, envp). */
  pointerArray(refs: DataRef[]): DataRef {
    const arr = this.bytes(new Uint8Array((refs.length + 1) * 8));
    refs.forEach((r, i) => this.fixups.push({ at: arr.offset + i * 8, target: r.offset }));
    return arr;
  }

  /** Bytes with pointer fields: `pointers` maps a byte offset within `b` to a DataRef. */
  struct(b: Uint8Array, pointers: [number, DataRef][]): DataRef {
    const ref = this.bytes(b);
    for (const [at, target] of pointers) this.fixups.push({ at: ref.offset + at, target: target.offset });
    return ref;
  }

  /** A system call. `ok` lists errnos that yield -errno instead of failing. */
  call(name: SyscallName, args: Arg[], what: string, opts: { store?: Reg; ok?: number[] } = {}): this {
    if (args.length > 6) throw new Error(`plan: ${name} with ${args.length} arguments`);
    this.ops.push({ kind: OpKind.Syscall, nr: this.nr[name], args, store: opts.store, ok: opts.ok ?? [], what });
    return this;
  }

  /** Write "/proc/self/fd/<value of reg>" into `into` (32 bytes). */
  fdPath(fd: Reg, into: DataRef, what: string): this {
    this.ops.push({ kind: OpKind.FdPath, nr: 0, args: [fd, into], store: undefined, ok: [], what });
    return this;
  }

  /** Fail unless the file behind fd `fd` is on a filesystem whose magic is `magic`. */
  fsType(fd: Reg, magic: number, what: string): this {
    this.ops.push({ kind: OpKind.FsType, nr: this.nr.fstatfs, args: [fd, magic], store: undefined, ok: [], what });
    return this;
  }

  /** Fail unless the working directory is reachable from the root. */
  cwdCheck(what: string): this {
    this.ops.push({ kind: OpKind.CwdCheck, nr: this.nr.getcwd, args: [], store: undefined, ok: [], what });
    return this;
  }

  /**
   * Fork once more; the parent reports the child's pid ({-2, pid} on the status pipe) and then,
   * with `wait`, waits for it and exits with its status (so whoever waits for the parent learns
   * the child's exit); without, exits at once (the child goes to the caller's subreaper, as a
   * containerd shim expects for `exec --detach`).
   */
  fork(what: string, wait: boolean): this {
    this.ops.push({ kind: OpKind.Fork, nr: this.nr.wait4, args: [wait ? 1 : 0, this.nr.close_range], store: undefined, ok: [], what });
    return this;
  }

  /** Clone with `flags`; the child continues at `child`, the parent gets its pid in `pid`. */
  clone(flags: number | bigint, child: Label, pid: Reg, what: string): this {
    this.ops.push({ kind: OpKind.Clone, nr: 0, args: [flags, 0], store: pid, ok: [], what, target: child });
    return this;
  }

  /** Reap children until `pid` exits; its wait status goes to `status`. */
  wait(pid: Reg, status: Reg, what: string): this {
    this.ops.push({ kind: OpKind.Wait, nr: this.nr.wait4, args: [pid], store: status, ok: [], what });
    return this;
  }

  /**
   * Unmap everything of the forked address space but the stack, the stub's code and data and a
   * private copy of the plan (its absolute pointers relocated) (for a long-lived monitor). Later steps may
   * use plan-relative arguments only (no pointer arrays or structures with pointers).
   */
  trim(what: string): this {
    const n = this.nr;
    this.ops.push({ kind: OpKind.Trim, nr: 0, args: [n.openat, n.read, n.munmap, n.mmap, n.close], store: undefined, ok: [], what });
    return this;
  }

  /** Write the 32-bit `value` (a register) at `at` (inside a structure of the plan). */
  store32(value: Reg, at: DataRef, what: string): this {
    this.ops.push({ kind: OpKind.Store32, nr: 0, args: [value, at], store: undefined, ok: [], what });
    return this;
  }

  /** Read the 32-bit value at `at` (inside the plan) into `reg`. */
  load32(at: DataRef, reg: Reg, what: string): this {
    this.ops.push({ kind: OpKind.Load32, nr: 0, args: [at], store: reg, ok: [], what });
    return this;
  }

  /**
   * The monitor's output relay: copy what arrives on `a` and `b` (fds or registers; -1 for none)
   * to `out` as spool records tagged `streamA`/`streamB`, until `pidfd` polls readable (the
   * container exited), then drain. Never fails (see relay() in the stub).
   */
  relay(a: Arg, streamA: number, b: Arg, streamB: number, pidfd: Arg, out: Arg, what: string): this {
    const n = this.nr;
    const numbers = new Uint8Array(56);
    const v = new DataView(numbers.buffer);
    [n.ppoll, n.read, n.write, n.clock_gettime, n.close, streamA, streamB].forEach((x, i) => v.setBigInt64(i * 8, BigInt(x), true));
    this.ops.push({ kind: OpKind.Relay, nr: 0, args: [this.bytes(numbers), a, b, pidfd, out], store: undefined, ok: [], what });
    return this;
  }

  /**
   * Become a minimal init: fork; the child goes on with the next op, this process forwards
   * signals to it, reaps everything and exits as the child does (init_loop in the stub).
   */
  init(what: string): this {
    const n = this.nr;
    const numbers = new Uint8Array(56);
    const v = new DataView(numbers.buffer);
    [n.rt_sigprocmask, n.clone, n.rt_sigtimedwait, n.wait4, n.kill, n.exit_group, n.close_range].forEach((x, i) => v.setBigInt64(i * 8, BigInt(x), true));
    this.ops.push({ kind: OpKind.Init, nr: 0, args: [this.bytes(numbers)], store: undefined, ok: [], what });
    return this;
  }

  /** Continue at `label` when `value` is zero. */
  jumpIfZero(value: Arg, label: Label): this {
    this.ops.push({ kind: OpKind.JumpIfZero, nr: 0, args: [value, 0], store: undefined, ok: [], what: "jump", target: label });
    return this;
  }

  /** Continue at `label`. */
  jump(label: Label): this {
    return this.jumpIfZero(0, label);
  }

  /** Put `value` (a number or the address of a DataRef) in `reg`. */
  set(reg: Reg, value: Arg): this {
    this.ops.push({ kind: OpKind.Set, nr: 0, args: [value], store: reg, ok: [], what: "set" });
    return this;
  }

  /** Stop with `code` (an errno or a StubError). */
  fail(code: number, what: string): this {
    this.ops.push({ kind: OpKind.Fail, nr: 0, args: [code], store: undefined, ok: [], what });
    return this;
  }

  /** Stop, reporting the wait status in `status` (of a process the plan ran and waited for). */
  failWithStatus(status: Reg, what: string): this {
    this.ops.push({ kind: OpKind.Fail, nr: 0, args: [status], store: undefined, ok: [], what, waitStatus: true });
    return this;
  }

  /** Mark the next op as `label`'s target. */
  here(label: Label): this {
    label.index = this.ops.length;
    return this;
  }

  /** Number of ops so far. */
  get length(): number {
    return this.ops.length;
  }

  /**
   * Lay out the buffer: header (system call numbers, clone flags, error fd), ops, data; then fix
   * absolute pointers.
   */
  finish(opts: { cloneFlags: number | bigint; errFd: number }): BuiltPlan {
    const opsOff = HEADER;
    const dataOff = opsOff + this.ops.length * OP_SIZE;
    // After the data: the table of absolute pointers {count, plan offsets…}, so that a trim,
    // which moves the plan, can relocate them.
    const fixOff = dataOff + this.dataLen;
    const total = fixOff + 8 * (1 + this.fixups.length);
    const buffer = new Uint8Array(total);
    const v = new DataView(buffer.buffer);
    const base = BigInt(addressOf(buffer));
    v.setBigInt64(fixOff, BigInt(this.fixups.length), true);
    this.fixups.forEach((f, i) => v.setBigInt64(fixOff + 8 * (1 + i), BigInt(dataOff + f.at), true));
    const header = [
      MAGIC,
      0n,
      BigInt(fixOff),
      BigInt(this.nr.clone),
      BigInt(this.nr.write),
      BigInt(this.nr.exit_group),
      BigInt(this.nr.close),
      BigInt(opts.cloneFlags),
      BigInt(opts.errFd),
      BigInt(this.ops.length),
      BigInt(opsOff),
      BigInt(total),
    ];
    header.forEach((x, i) => v.setBigUint64(i * 8, BigInt.asUintN(64, x), true));
    this.ops.forEach((op, i) => {
      const o = opsOff + i * OP_SIZE;
      let relmask = 0;
      let regmask = 0;
      v.setUint32(o, op.kind, true);
      v.setInt32(o + 12, op.store ? op.store.index : -1, true);
      v.setBigInt64(o + 16, BigInt(op.nr), true);
      const args = [...op.args];
      if (op.target) {
        if (op.target.index < 0) throw new Error("plan: jump to an unplaced label");
        args[1] = op.target.index;
      }
      args.forEach((a, k) => {
        let val: bigint;
        if (a instanceof DataRef) {
          relmask |= 1 << k;
          val = BigInt(dataOff + a.offset);
        } else if (a instanceof RegSlot) {
          relmask |= 1 << k;
          val = BigInt(REGS_OFF + a.reg.index * 8);
        } else if (a instanceof Reg) {
          regmask |= 1 << k;
          val = BigInt(a.index);
        } else val = BigInt(a);
        v.setBigInt64(o + 24 + k * 8, BigInt.asIntN(64, val), true);
      });
      v.setUint32(o + 4, relmask, true);
      v.setUint32(o + 8, regmask, true);
      v.setInt32(o + 72, op.ok[0] ?? 0, true);
      v.setInt32(o + 76, op.ok[1] ?? 0, true);
      if (op.ok.length > 2) throw new Error(`plan: ${op.what}: at most two accepted errnos`);
    });
    for (const c of this.chunks) buffer.set(c.bytes, dataOff + c.offset);
    for (const f of this.fixups) v.setBigUint64(dataOff + f.at, base + BigInt(dataOff + f.target), true);
    const waitStatusSteps = new Set(this.ops.flatMap((o, i) => (o.waitStatus ? [i] : [])));
    return { buffer, steps: this.ops.map((o) => o.what), waitStatusSteps };
  }
}
