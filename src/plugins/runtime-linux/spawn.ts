/**
 * Starting a planned process: the stub (compiled once per process) clones, the child runs the
 * plan, and the parent learns how it went from a close-on-exec pipe carrying 8-byte records
 * `{int32 step, int32 code}`:
 * - step >= 0: that step failed with errno `code` (or a StubError); the child has exited 127;
 * - step -1: "ready" (setup done, the child now waits to be started: runc's create);
 * - end of file with no record: the final execve succeeded (the pipe closed on exec).
 */
import { closeSync, read } from "node:fs";
import { errnoName, strerror, SyscallError } from "../../core/errors.ts";
import { compileC, FFIType } from "../../core/sys/cc.ts";
import { libcSyscallPointers } from "../../core/sys/libc.ts";
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

/** Record kinds on the status pipe. */
export const READY_STEP = -1;

/** A step of the plan failed in the child. */
export class StepError extends Error {
  override name = "StepError";
  constructor(
    readonly step: string,
    readonly code: number,
  ) {
    super(`${step}: ${describeCode(code)}`);
  }
}

function describeCode(code: number): string {
  if (code === StubError.FsType) return "not on the expected filesystem";
  if (code === StubError.Cwd) return "the working directory is outside the container's root";
  if (code === StubError.NotFound) return "executable file not found in $PATH";
  if (code === StubError.End) return "the plan ended without exec";
  return `${errnoName(code)} (${strerror(code)})`;
}

/** Read exactly `n` bytes or to end of file, off the event loop. */
export function readRecord(fd: number, n = 8): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const buf = new Uint8Array(n);
    let got = 0;
    const next = () =>
      read(fd, buf, got, n - got, null, (err, bytes) => {
        if (err) return reject(err);
        got += bytes;
        if (bytes === 0 || got === n) resolve(buf.subarray(0, got));
        else next();
      });
    next();
  });
}

/** Outcome of the first record on the status pipe. */
export type SpawnOutcome = { kind: "exec" } | { kind: "ready" };

/** A process started from a plan. */
export interface Spawned {
  pid: number;
  /** Resolves when the child has exec'd or reported ready; rejects with StepError. */
  outcome: Promise<SpawnOutcome>;
  /** The read end of the status pipe (closed once the outcome is known unless `keepStatusFd`). */
  statusFd: number;
}

/**
 * Clone a child running `plan`. `errFd` of the plan is the write end of a fresh pipe; the caller
 * builds the plan with `statusFd()` wherever a step needs it.
 */
export function spawnPlan(sys: Sys, build: (statusWriteFd: number) => { plan: PlanBuilder; cloneFlags: bigint | number }, opts: { keepStatusFd?: boolean } = {}): Spawned {
  const [r, w] = sys.pipe();
  let built;
  try {
    const { plan, cloneFlags } = build(w);
    built = plan.finish({ cloneFlags, errFd: w, libc: libcSyscallPointers() });
  } catch (err) {
    closeSync(r);
    closeSync(w);
    throw err;
  }
  const pid = Number(loadStub().bunker_spawn(built.buffer));
  closeSync(w);
  if (pid < 0) {
    closeSync(r);
    throw new SyscallError("clone", -pid);
  }
  const steps = built.steps;
  const outcome = readRecord(r).then((rec): SpawnOutcome => {
    if (!opts.keepStatusFd) closeSync(r);
    if (rec.length === 0) return { kind: "exec" };
    if (rec.length < 8) throw new Error(`runtime: short status record (${rec.length} bytes)`);
    const v = new DataView(rec.buffer, rec.byteOffset, 8);
    const step = v.getInt32(0, true);
    const code = v.getInt32(4, true);
    if (step === READY_STEP) return { kind: "ready" };
    throw new StepError(steps[step] ?? `step ${step}`, code);
  });
  return { pid, outcome, statusFd: r };
}
