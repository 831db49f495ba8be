/**
 * The daemon's start: containers that ran when it stopped are re-attached (output pump, exit
 * watch, terminal or held stdin, health check) or, when they exited meanwhile, get their recorded
 * status (255 when none was recorded); then what the restart policies say should run is started.
 */
import { ignored } from "../log.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { messageOf } from "../errors.ts";
import type { ContainerRecord } from "./container-store.ts";
import { ZERO_TIME } from "./container-store.ts";
import type { ContainerContext, Live } from "./context.ts";
import { maybeRestart, onExit, startHealth } from "./exit.ts";
import { terminalOf } from "./io.ts";
import { pumpFor } from "./logs.ts";
import { runContainer } from "./start.ts";

/** Re-attach to a container that still runs. */
async function reattach(ctx: ContainerContext, c: ContainerRecord): Promise<void> {
  const pump = pumpFor(ctx, c);
  pump.start();
  let input: number | undefined;
  try {
    if (c.Config.Tty) input = await terminalOf(ctx, c.Id);
    else if (c.Config.OpenStdin && !c.Config.StdinOnce) input = ctx.deps.runtime.monitorFd(c.Id, "stdinHold");
  } catch (err) {
    ctx.deps.log.warn("cannot reach the container's input", { container: c.Id, error: messageOf(err) });
  }
  const live: Live = { pump, ...(input !== undefined ? { input } : {}), exited: ctx.deps.runtime.watchExit(c.Id) };
  ctx.live.set(c.Id, live);
  live.handled = live.exited.then((code) => onExit(ctx, c.Id, code));
  startHealth(ctx, c, live);
  ctx.deps.log.info("container restored", { container: c.Id.slice(0, 12) });
}

/** Record the exit of a container that stopped while the daemon did not run. */
async function recordExit(ctx: ContainerContext, c: ContainerRecord): Promise<void> {
  let code = 255;
  try {
    code = ctx.deps.runtime.exitCode(c.Id) ?? 255;
  } catch (err) {
    ignored("no runtime state at all: 255, as dockerd records a container found dead", err);
  }
  // Its output up to the exit still goes to the log.
  if (existsSync(join(ctx.store.dir(c.Id), "output.spool"))) ctx.live.set(c.Id, { pump: pumpFor(ctx, c), exited: Promise.resolve(code) });
  await onExit(ctx, c.Id, code);
}

/** Re-attach to (or record the exit of) the containers that ran, then apply the restart policies. */
export async function restoreContainers(ctx: ContainerContext): Promise<void> {
  for (const c of ctx.store.all()) {
    if (!c.State.Running) continue;
    let status: string;
    try {
      status = ctx.deps.runtime.state(c.Id).status;
    } catch {
      status = "missing";
    }
    if (status === "running" || status === "paused") await reattach(ctx, c);
    else await recordExit(ctx, c);
  }
  // A daemon start restarts what its policy says should run (dockerd's restore does the same).
  for (const c of ctx.store.all()) {
    const p = c.HostConfig.RestartPolicy?.Name;
    if (c.State.Running || ctx.restartTimers.has(c.Id)) continue;
    if (c.State.Restarting) maybeRestart(ctx, c, c.State.ExitCode);
    else if ((p === "always" || (p === "unless-stopped" && !c.ManuallyStopped)) && c.State.StartedAt !== ZERO_TIME) {
      try {
        await runContainer(ctx, c);
      } catch (err) {
        ctx.deps.log.warn("restart at daemon start failed", { container: c.Id, error: messageOf(err) });
      }
    }
  }
}
