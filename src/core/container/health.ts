/**
 * Health checks, with Docker's rules: the configured test runs in the container (as an exec)
 * every `Interval` (default 30 s), at most `Timeout` (30 s) each; `Retries` (3) consecutive
 * failures make the container unhealthy, one success healthy; failures during `StartPeriod` do
 * not count. The last five results are kept in `State.Health.Log`; changes are events.
 */
import type { ContainerRecord, HealthState } from "./container-store.ts";

export type { HealthState } from "./container-store.ts";

/** The test to run, as a command (CMD / CMD-SHELL), or undefined when there is none (NONE). */
export function healthCommand(c: ContainerRecord): string[] | undefined {
  const test = c.Config.Healthcheck?.Test;
  if (!test?.length || test[0] === "NONE") return undefined;
  if (test[0] === "CMD") return test.slice(1);
  if (test[0] === "CMD-SHELL") return ["/bin/sh", "-c", test.slice(1).join(" ")];
  return test; // a bare command, as older clients send it
}

const ns = (v: number | null | undefined, dflt: number) => (v && v > 0 ? v / 1e6 : dflt);

/** Runs one container's checks until stopped. */
export class HealthMonitor {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private readonly started = Date.now();

  constructor(
    private readonly c: ContainerRecord,
    /** Run the test; resolves with its exit code and output (the caller enforces nothing). */
    private readonly probe: (cmd: string[], timeoutMs: number) => Promise<{ exitCode: number; output: string }>,
    /** Called after each result with the new state. */
    private readonly update: (h: HealthState, changed: boolean) => void,
  ) {}

  start(): void {
    const cmd = healthCommand(this.c);
    if (!cmd) return;
    const hc = this.c.Config.Healthcheck!;
    const interval = ns(hc.Interval, 30_000);
    const timeout = ns(hc.Timeout, 30_000);
    const retries = hc.Retries && hc.Retries > 0 ? hc.Retries : 3;
    const startPeriod = ns(hc.StartPeriod, 0);
    const startInterval = ns(hc.StartInterval, 5_000);
    const state: HealthState = { Status: "starting", FailingStreak: 0, Log: [] };
    this.update(state, true);
    const tick = async () => {
      if (this.stopped) return;
      const start = new Date().toISOString();
      let r: { exitCode: number; output: string };
      try {
        r = await this.probe(cmd, timeout);
      } catch (err) {
        r = { exitCode: -1, output: String(err) };
      }
      if (this.stopped) return;
      const before = state.Status;
      state.Log = [...state.Log, { Start: start, End: new Date().toISOString(), ExitCode: r.exitCode, Output: r.output.slice(0, 4096) }].slice(-5);
      const inStart = Date.now() - this.started < startPeriod;
      if (r.exitCode === 0) {
        state.Status = "healthy";
        state.FailingStreak = 0;
      } else if (!inStart || state.Status !== "starting") {
        state.FailingStreak++;
        if (state.FailingStreak >= retries) state.Status = "unhealthy";
      }
      this.update(state, before !== state.Status);
      const next = Date.now() - this.started < startPeriod && state.Status === "starting" ? Math.min(startInterval, interval) : interval;
      this.timer = setTimeout(tick, next);
    };
    this.timer = setTimeout(tick, Math.min(interval, startPeriod ? startInterval : interval));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
