/**
 * The daemon's start: containers that ran when it stopped are re-attached (output pump, exit
 * watch, terminal or held stdin, health check) or, when they exited meanwhile, get their recorded
 * status (255 when none was recorded); then what the restart policies say should run is started.
 */
import { ignore, ignored } from "../log.ts";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { messageOf } from "../errors.ts";
import type { ContainerRecord } from "./container-store.ts";
import { ZERO_TIME } from "./container-store.ts";
import type { ContainerContext, Live } from "./context.ts";
import { maybeRestart, onExit, startHealth } from "./exit.ts";
import { terminalOf } from "./io.ts";
import { pumpFor } from "./logs.ts";
import { removeContainer } from "./remove.ts";
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

/** Runtime state of a container that is not running by its record: a start or create cut short. */
async function discardRuntime(ctx: ContainerContext, id: string): Promise<void> {
  try {
    ctx.deps.runtime.kill(id, 9, true);
  } catch (err) {
    ignored("nothing left to kill", err);
  }
  await ctx.deps.runtime.delete(id, true).catch(ignore("runtime state already gone"));
}

/**
 * A record that says not running: whatever an interrupted start set up is undone (the process
 * waiting at the exec fifo, its network endpoints, the root's mount), and the record says why.
 */
async function settleStopped(ctx: ContainerContext, c: ContainerRecord, runtimeIds: Set<string>, interrupted: boolean): Promise<void> {
  if (!runtimeIds.has(c.Id) && !interrupted) return;
  await discardRuntime(ctx, c.Id);
  await ctx.deps.networks.detach(c).catch(ignore("no endpoints of an interrupted start"));
  (await ctx.deps.images()).layers.unmountWritable(c.RwLayer, ctx.rootfsOf(c));
  if (interrupted) {
    c.State = { ...c.State, Running: false, Paused: false, Pid: 0, Error: "the daemon stopped before the container started" };
    ctx.store.save(c);
  }
}

/**
 * Re-attach to (or record the exit of) the containers that ran; settle what interrupted
 * operations left (the journal's open intents, runtime state without a record, a container left
 * frozen by a commit or copy); then apply the restart policies.
 */
export async function restoreContainers(ctx: ContainerContext): Promise<void> {
  const runtimeIds = new Set(ctx.deps.runtime.list());
  const known = new Set(ctx.store.all().map((c) => c.Id));
  for (const id of runtimeIds) if (!known.has(id)) await discardRuntime(ctx, id); // a create cut short before its record
  const intents = ctx.deps.journal?.open(["container.start", "container.remove"]) ?? [];
  const starting = new Set(intents.filter((i) => i.op === "container.start").map((i) => i.target));
  for (const c of ctx.store.all()) {
    if (!c.State.Running) {
      await settleStopped(ctx, c, runtimeIds, starting.has(c.Id));
      continue;
    }
    let status: string;
    try {
      status = ctx.deps.runtime.state(c.Id).status;
    } catch {
      status = "missing";
    }
    // Frozen by a commit or a copy whose daemon was killed: only a user's pause stays.
    if (status === "paused" && !c.State.Paused) {
      ctx.deps.runtime.resume(c.Id);
      status = "running";
    }
    if (status === "running" || status === "paused") await reattach(ctx, c);
    else await recordExit(ctx, c);
  }
  // Removals that began are finished (a build's step containers are always removed).
  for (const c of ctx.store.all()) if (c.Transient) await removeContainer(ctx, c.Id, { force: true }).catch((err) => ctx.deps.log.warn("build container not removed", { container: c.Id, error: messageOf(err) }));
  await ctx.deps.journal?.recover({
    "container.start": () => {}, // settled above
    "container.remove": async (i) => {
      if (ctx.store.has(i.target)) await removeContainer(ctx, i.target, { force: true, volumes: i.data.volumes === true });
    },
  });
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
