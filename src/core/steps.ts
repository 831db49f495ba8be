/**
 * Setup sequences as named steps with undo (libnetwork's bridge `setup.go` shape): the steps run
 * in order; when one throws, those done are undone newest first and the error is rethrown.
 * The bridge driver's endpoint and network setup and a container's start are such sequences.
 */
import { EngineError, messageOf, SyscallError } from "./errors.ts";
import type { Logger } from "./log.ts";

/** An undo action (best effort: its failure is logged at debug, the step's error is the one that matters). */
export type Undo = () => void | Promise<void>;

/** One step: `run` does it and returns its undo, if it has one. */
export interface Step<U = Undo> {
  name: string;
  run: () => U | void;
}

/** One step of an asynchronous sequence. */
export interface AsyncStep {
  name: string;
  run: () => Promise<Undo | void> | Undo | void;
}

/** How a failed step's error is rethrown. */
export interface StepOptions {
  log?: Logger | undefined;
  /** "wrap" (the default): `<what>: <step>: <message>` unless it is already an engine error; "as-is": unchanged. */
  errors?: "wrap" | "as-is";
}

function rethrow(what: string, step: string, err: unknown, opts: StepOptions): never {
  if (opts.errors === "as-is") throw err;
  if (err instanceof EngineError && !(err instanceof SyscallError)) throw err;
  throw new EngineError(err instanceof EngineError ? err.code : "internal", `${what}: ${step}: ${messageOf(err)}`, { cause: err });
}

/** Run synchronous `steps` in order, undoing the done ones when one throws. */
export function runSteps(what: string, steps: Step<() => void>[], opts: StepOptions = {}): void {
  const done: { name: string; undo: () => void }[] = [];
  for (const s of steps) {
    try {
      const t0 = performance.now();
      const undo = s.run();
      opts.log?.debug("step", { what, step: s.name, ms: (performance.now() - t0).toFixed(2) });
      done.push({ name: s.name, undo: undo ?? (() => {}) });
    } catch (err) {
      for (const d of done.reverse()) {
        try {
          d.undo();
        } catch (e) {
          opts.log?.debug("undo failed", { what, step: d.name, error: messageOf(e) });
        }
      }
      rethrow(what, s.name, err, opts);
    }
  }
}

/** Run `steps` in order (each awaited), undoing the done ones (newest first, each awaited) when one throws. */
export async function runStepsAsync(what: string, steps: AsyncStep[], opts: StepOptions = {}): Promise<void> {
  const done: { name: string; undo: Undo }[] = [];
  for (const s of steps) {
    try {
      const t0 = performance.now();
      const undo = await s.run();
      opts.log?.debug("step", { what, step: s.name, ms: (performance.now() - t0).toFixed(2) });
      if (undo) done.push({ name: s.name, undo });
    } catch (err) {
      for (const d of done.reverse()) {
        try {
          await d.undo();
        } catch (e) {
          opts.log?.debug("undo failed", { what, step: d.name, error: messageOf(e) });
        }
      }
      rethrow(what, s.name, err, opts);
    }
  }
}
