/**
 * Build jobs by ref: what `Control.Solve` registered (its session, frontend attributes and
 * exporters), the progress log its `Status` streams replay and follow, and the result the
 * gateway client `Return`s. Status and gateway calls may arrive before the Solve that names
 * their ref, so each side waits for the other a little, as BuildKit does.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { StatusResponseSchema } from "./gen/buildkit/control_pb.ts";
import type { Result } from "./gen/buildkit/gateway_pb.ts";
import { Waiters } from "./waiters.ts";

export type StatusUpdate = MessageInitShape<typeof StatusResponseSchema>;

/** A built result: the image and its config, as a gateway ref names it. */
export interface BuiltImage {
  id: string;
  config: unknown;
}

/** One build. */
export class Job {
  private log: StatusUpdate[] = [];
  private listeners = new Set<() => void>();
  finished = false;
  /** The session the build's files, secrets and credentials come from. */
  sessionId = "";
  frontendAttrs: Record<string, string> = {};
  /** What the client asked to be allowed (`security.insecure`, `network.host`). */
  entitlements: string[] = [];
  /** Images the frontend made in this job, by the ref IDs handed to the client. */
  readonly refs = new Map<string, BuiltImage>();
  private returned: ((r: { result?: Result; error?: string }) => void) | undefined;
  /** Settles when the gateway client returns its result (or its error). */
  readonly result: Promise<{ result?: Result; error?: string }>;

  constructor(readonly ref: string) {
    this.result = new Promise((r) => (this.returned = r));
  }

  /** Append progress; every Status stream of this job gets it. */
  publish(update: StatusUpdate): void {
    this.log.push(update);
    for (const l of this.listeners) l();
  }

  /** The gateway client's `Return`. */
  setResult(r: { result?: Result; error?: string }): void {
    this.returned?.(r);
    this.returned = undefined;
  }

  /** The build is over: Status streams end after what they have not sent yet. */
  finish(): void {
    this.finished = true;
    this.setResult({ error: "the build ended before the client returned a result" });
    for (const l of this.listeners) l();
  }

  /** Every update from the first, until the job finishes or `signal` aborts. */
  async *follow(signal: AbortSignal): AsyncGenerator<StatusUpdate> {
    let i = 0;
    let wake: (() => void) | undefined;
    const listener = () => wake?.();
    this.listeners.add(listener);
    signal.addEventListener("abort", listener);
    try {
      for (;;) {
        while (i < this.log.length) yield this.log[i++]!;
        if (this.finished || signal.aborted) return;
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      this.listeners.delete(listener);
      signal.removeEventListener("abort", listener);
    }
  }
}

/** The jobs by ref. A finished job is kept a minute for late Status calls. */
export class Jobs {
  private jobs = new Map<string, Job>();
  private waiters = new Waiters<string>();

  /** The job for `ref`, made if new. */
  open(ref: string): Job {
    let j = this.jobs.get(ref);
    if (!j) {
      j = new Job(ref);
      this.jobs.set(ref, j);
      this.waiters.wake(ref);
    }
    return j;
  }

  /** The job `ref` once Solve has opened it, waiting up to `waitMs`; undefined after that. */
  async wait(ref: string, waitMs: number): Promise<Job | undefined> {
    const j = this.jobs.get(ref);
    if (j) return j;
    await this.waiters.wait(ref, waitMs);
    return this.jobs.get(ref);
  }

  /** Finish `job` and forget it a minute later. */
  close(job: Job): void {
    job.finish();
    setTimeout(() => {
      if (this.jobs.get(job.ref) === job) this.jobs.delete(job.ref);
    }, 60_000).unref?.();
  }
}
