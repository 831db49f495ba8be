/**
 * Starting a planned process: the stub (compiled once per process) clones, the child runs the
 * plan, and the parent learns how it went from a close-on-exec pipe carrying 8-byte records
 * `{int32 step, int32 code}`:
 * - step >= 0: that step failed with errno `code` (or a StubError); the child has exited 127;
 * - step -1: "ready" (setup done, the child now waits to be started: runc's create);
 * - step -2: the child forked into a joined PID namespace; `code` is the new pid;
 * - step -3: a sync point: the child waits for a byte on its sync pipe;
 * - end of file: the final execve succeeded (the pipe closed on exec), or the child is gone.
 */
import { ignore } from "../../core/log.ts";
import { closeSync } from "node:fs";
import { errnoName, strerror, SyscallError } from "../../core/errors.ts";
import { compileC, FFIType } from "../../core/sys/cc.ts";
import type { Sys } from "../../core/sys/sys.ts";
import { type PlanBuilder, StubError } from "./plan.ts";
import { STUB_SOURCE } from "./stub-source.ts";

type StubSymbols = { bunker_spawn: (plan: Uint8Array) => number | bigint };
let stub: StubSymbols | undefined;

/** Compile the stub on first use (a few milliseconds) and keep it for the life of the process. */
export function loadStub(): StubSymbols {
  stub ??= compileC("bunker-runtime-stub", STUB_SOURCE, { bunker_spawn: { args: [FFIType.ptr], returns: FFIType.i64 } }) as unknown as StubSymbols;
  return stub;
}

const SIGCHLD = 17;

/** A step of the plan failed in the child. */
export class StepError extends Error {
  override name = "StepError";
  constructor(
    readonly step: string,
    readonly code: number,
    /** `code` is a wait status (a hook's), not an errno. */
    readonly isWaitStatus = false,
  ) {
    super(`${step}: ${isWaitStatus ? describeWaitStatus(code) : describeCode(code)}`);
  }
}

function describeWaitStatus(status: number): string {
  return (status & 0x7f) === 0 ? `exited with status ${(status >> 8) & 0xff}` : `killed by signal ${status & 0x7f}`;
}

function describeCode(code: number): string {
  if (code === StubError.FsType) return "not on the expected filesystem";
  if (code === StubError.Cwd) return "the working directory is outside the container's root";
  if (code === StubError.NotFound) return "executable file not found in $PATH";
  if (code === StubError.End) return "the plan ended without exec";
  return `${errnoName(code)} (${strerror(code)})`;
}

/**
 * Fixed-size records from a pipe, read through Bun's event loop (epoll) rather than a pool thread:
 * a status pipe can stay silent for as long as a container's setup takes, and the daemon's file
 * I/O has only a few pool threads.
 */
export class RecordReader {
  private readonly reader: { read(): Promise<{ value?: Uint8Array; done?: boolean }>; cancel(): Promise<void> };
  private buf = new Uint8Array(0);
  private ended = false;

  constructor(fd: number) {
    this.reader = Bun.file(fd).stream().getReader() as unknown as RecordReader["reader"];
  }

  /** The next `n` bytes, or fewer at end of file. */
  async read(n = 8): Promise<Uint8Array> {
    while (this.buf.length < n && !this.ended) {
      const { value, done } = await this.reader.read();
      if (done) this.ended = true;
      else if (value?.length) {
        const b = new Uint8Array(this.buf.length + value.length);
        b.set(this.buf);
        b.set(value, this.buf.length);
        this.buf = b;
      }
    }
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  cancel(): void {
    this.reader.cancel().catch(ignore("status pipe: cancelling the reader failed"));
  }
}

/** A record from the status pipe. */
export type StatusRecord = { kind: "exec" } | { kind: "ready" } | { kind: "sync" } | { kind: "pid"; pid: number } | { kind: "error"; error: StepError };

/** A process started from a plan, and its status pipe. */
export class Spawned {
  private closed = false;
  /** The process this one cloned (the one to wait for, even after a fork into a PID namespace). */
  readonly childPid: number;
  constructor(
    /** The container process's pid (updated when it forks into a joined PID namespace). */
    public pid: number,
    readonly statusFd: number,
    private readonly steps: string[],
    private readonly waitStatusSteps: Set<number> = new Set(),
  ) {
    this.childPid = pid;
    this.records = new RecordReader(statusFd);
  }

  private readonly records: RecordReader;

  /** The next record; "exec" (end of file) when the child exec'd or exited. */
  async next(): Promise<StatusRecord> {
    if (this.closed) return { kind: "exec" };
    const rec = await this.records.read(8);
    if (rec.length === 0) {
      this.close();
      return { kind: "exec" };
    }
    if (rec.length < 8) throw new Error(`runtime: short status record (${rec.length} bytes)`);
    const v = new DataView(rec.buffer, rec.byteOffset, 8);
    const step = v.getInt32(0, true);
    const code = v.getInt32(4, true);
    if (step === -1) return { kind: "ready" };
    if (step === -2) {
      this.pid = code;
      return { kind: "pid", pid: code };
    }
    if (step === -3) return { kind: "sync" };
    return { kind: "error", error: new StepError(this.steps[step] ?? `step ${step}`, code, this.waitStatusSteps.has(step)) };
  }

  /** Read records until exec or ready, answering sync points with `onSync`; throws StepError. */
  async settle(onSync: () => Promise<void> | void = () => {}, opts: { awaitPid?: boolean } = {}): Promise<"exec" | "ready"> {
    // With a monitor in between, the container's pid arrives in a record of its own, which may
    // come after the container's sync record: hold the sync until the pid is known.
    let pidKnown = !opts.awaitPid;
    let syncPending = false;
    for (;;) {
      const r = await this.next();
      if (r.kind === "error") throw r.error;
      if (r.kind === "pid") pidKnown = true;
      if (r.kind === "sync") syncPending = true;
      if (syncPending && pidKnown) {
        syncPending = false;
        await onSync();
      }
      if (r.kind === "exec" || r.kind === "ready") return r.kind;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.records.cancel();
    closeSync(this.statusFd);
  }
}

/**
 * Clone a child running the plan that `build` makes; `build` receives the write end of the
 * status pipe (the plan's error fd) for its "sync" and "ready" records.
 */
export function spawnPlan(sys: Sys, build: (statusWriteFd: number) => { plan: PlanBuilder; cloneFlags: bigint | number }): Spawned {
  const [r, w] = sys.pipe();
  let built;
  let cloneFlags;
  try {
    const b = build(w);
    cloneFlags = BigInt(b.cloneFlags) | BigInt(SIGCHLD);
    built = b.plan.finish({ cloneFlags, errFd: w });
  } catch (err) {
    closeSync(r);
    closeSync(w);
    throw err;
  }
  const pid = Number(loadStub().bunker_spawn(built.buffer));
  closeSync(w);
  if (pid < 0) {
    closeSync(r);
    throw new SyscallError("clone", -pid, undefined, `flags 0x${cloneFlags.toString(16)}`);
  }
  return new Spawned(pid, r, built.steps, built.waitStatusSteps);
}
