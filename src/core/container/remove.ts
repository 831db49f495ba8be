/**
 * `DELETE /containers/{id}`: a running one only with force (killed first), its writable layer
 * and record removed, its anonymous volumes with `-v` (or `--rm`), `destroy` sent.
 */
import { conflict, messageOf } from "../errors.ts";
import type { ContainerRecord } from "./container-store.ts";
import type { ContainerContext } from "./context.ts";
import { cancelRestart } from "./exit.ts";
import type { Filters } from "../filters.ts";
import { matches } from "./list.ts";
import { sizes } from "./stats.ts";

/** `DELETE /containers/{id}` (`volumes`: its anonymous volumes go too, `rm -v`). */
export async function removeContainer(ctx: ContainerContext, ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
  let c = ctx.store.get(ref);
  // A start in progress (a restart policy's) finishes first, so nothing runs without a record.
  await ctx.starting.get(c.Id);
  c = ctx.store.get(ref);
  if (c.State.Restarting && !opts.force) throw conflict(`You cannot remove a restarting container ${c.Id}. Stop the container before attempting removal or force remove`);
  cancelRestart(ctx, c);
  if (c.State.Running && !opts.force) {
    // dockerd 20.10's wording, which clients match (docker-py's tests do; Docker 28 rephrased it).
    throw conflict(`You cannot remove a ${c.State.Paused ? "paused" : "running"} container ${c.Id}. ${c.State.Paused ? "Unpause and then stop" : "Stop"} the container before attempting removal or force remove`);
  }
  // From here the removal is recorded: a daemon killed midway finishes it at its next start.
  const journal = ctx.deps.journal;
  const intent = journal?.begin("container.remove", c.Id, { volumes: !!(opts.volumes || c.HostConfig.AutoRemove) });
  try {
    await removeSteps(ctx, c, opts);
  } finally {
    if (intent) journal!.end(intent);
  }
}

/** The removal itself: killed (with force), the writable layer and the record gone, anonymous volumes with `-v`. */
async function removeSteps(ctx: ContainerContext, c: ContainerRecord, opts: { force?: boolean; volumes?: boolean }): Promise<void> {
  if (c.State.Running) {
    const l = ctx.live.get(c.Id);
    if (c.State.Paused) ctx.deps.runtime.resume(c.Id);
    ctx.deps.runtime.kill(c.Id, 9, true);
    await l?.handled;
  }
  const images = await ctx.deps.images();
  await images.layers.removeWritable(c.RwLayer, ctx.rootfsOf(c));
  ctx.lastExit.set(c.Id, c.State.ExitCode);
  ctx.store.delete(c.Id);
  for (const m of c.MountPoints ?? []) {
    if (m.Type !== "volume" || !m.Anonymous || !(opts.volumes || c.HostConfig.AutoRemove)) continue;
    try {
      await ctx.deps.volumes.remove(m.Name!);
    } catch (err) {
      ctx.deps.log.warn("volume not removed", { volume: m.Name, error: messageOf(err) });
    }
  }
  ctx.publish(c, "destroy");
  for (const w of ctx.removeWaiters.get(c.Id) ?? []) w();
  ctx.removeWaiters.delete(c.Id);
  setTimeout(() => ctx.lastExit.delete(c.Id), 60_000).unref?.();
}

/** IDs of the containers using volume `name`. */
export function volumeUsers(ctx: ContainerContext, name: string): string[] {
  return ctx.store
    .all()
    .filter((c) => (c.MountPoints ?? []).some((m) => m.Type === "volume" && m.Name === name))
    .map((c) => c.Id);
}

/**
 * `POST /containers/prune`: every stopped container created before `untilMs` (when given) whose
 * labels match `filters`; what their writable layers held is the space reclaimed.
 */
export async function pruneContainers(ctx: ContainerContext, filters: Filters, untilMs?: number): Promise<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }> {
  const deleted: string[] = [];
  let reclaimed = 0;
  for (const c of ctx.store.all()) {
    if (c.State.Running || c.State.Restarting) continue;
    if (untilMs !== undefined && Date.parse(c.Created) >= untilMs) continue;
    if (filters.has("label") && !matches(c, filters, [])) continue;
    // The writable layer's size, as dockerd counts what a prune gives back.
    const size = await sizes(ctx, c.Id).then(
      (s) => s.SizeRw,
      () => 0,
    );
    await removeContainer(ctx, c.Id, {});
    deleted.push(c.Id);
    reclaimed += size;
  }
  return { ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed };
}
