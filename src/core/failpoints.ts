/**
 * Crash points for the crash-point harness (test/integration/crash-points.test.ts), after etcd's
 * failpoints: each durable side effect the engine makes outside the `Sys` seam (a metadata file
 * replaced, a journal record written or dropped, a directory renamed out of sight) calls
 * `failpoint` first. Unarmed (always, outside that test) it is one comparison. Armed, the harness
 * counts the calls, or throws at the k-th and every later one, which is what a process killed at
 * that instant leaves on disk: everything before it, nothing after.
 */

/** What an armed harness does at each point (throws to crash there). */
export type FailpointHook = (where: string) => void;

let hook: FailpointHook | undefined;

/** A side effect is about to happen at `where`. */
export function failpoint(where: string): void {
  if (hook) hook(where);
}

/** Arm (or with undefined, disarm) the points; for the harness only. */
export function armFailpoints(h: FailpointHook | undefined): void {
  hook = h;
}
