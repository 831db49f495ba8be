/**
 * What follows a container's exit (moby's `daemon/monitor.go`): the runtime's state deleted, the
 * root unmounted, volumes released, networks left, the status recorded, `die` (and `oom`) sent,
 * waiters told; then `--rm` removes it, or its restart policy restarts it after Docker's backoff.
 * Also `wait` and the health monitor that runs while the container does.
 */
import { ignored } from "../log.ts";
import { closeSync } from "node:fs";
import { invalidArgument, messageOf } from "../errors.ts";
import type { ContainerRecord } from "./container-store.ts";
import { type ContainerContext, type Live, now } from "./context.ts";
import { HealthMonitor, healthCommand } from "./health.ts";
import { removeContainer } from "./remove.ts";
import { runContainer } from "./start.ts";

/** Run the container's health check while it runs (State.Health, health_status events). */
export function startHealth(ctx: ContainerContext, c: ContainerRecord, live: Live): void {
  if (!healthCommand(c)) return;
  const m = new HealthMonitor(
    c,
    (cmd, timeout) => ctx.execs.probe(c.Id, cmd, timeout),
    (h, changed) => {
      let cur: ContainerRecord;
      try {
        cur = ctx.store.get(c.Id);
      } catch {
        return; // removed meanwhile
      }
      cur.State = { ...cur.State, Health: structuredClone(h) };
      ctx.store.save(cur);
      if (changed) ctx.publish(cur, `health_status: ${h.Status}`);
    },
  );
  live.health = m;
  m.start();
}

/** Release what the exited container held: runtime state, root mount, volumes, networks. */
async function release(ctx: ContainerContext, c: ContainerRecord): Promise<void> {
  const { deps } = ctx;
  try {
    await deps.runtime.delete(c.Id, true);
  } catch (err) {
    deps.log.warn("runtime delete failed", { container: c.Id, error: messageOf(err) });
  }
  (await deps.images()).layers.unmountWritable(c.RwLayer, ctx.rootfsOf(c));
  for (const m of c.MountPoints ?? []) {
    if (m.Type !== "volume") continue;
    await deps.volumes.unmount(m.Name!, c.Id).catch((err) => deps.log.warn("volume unmount failed", { volume: m.Name, error: messageOf(err) }));
  }
  await deps.networks.detach(c);
}

/** Handle the exit of container `id` with status `code`. */
export async function onExit(ctx: ContainerContext, id: string, code: number): Promise<void> {
  const l = ctx.live.get(id);
  l?.health?.stop();
  l?.pump.finish();
  if (l?.input !== undefined) {
    try {
      closeSync(l.input);
    } catch (err) {
      ignored("closed on stdin end", err);
    }
  }
  let c: ContainerRecord;
  try {
    c = ctx.store.get(id);
  } catch {
    // Removed while it was (re)starting: its runtime state and cgroup still go.
    await ctx.deps.runtime.delete(id, true).catch((err) => ctx.deps.log.debug("runtime delete of a removed container failed", { container: id, error: messageOf(err) }));
    ctx.live.delete(id);
    return;
  }
  let oom = false;
  try {
    oom = ctx.deps.runtime.oomKills(id) > 0;
  } catch (err) {
    ignored("its cgroup is gone: no OOM count to read", err);
  }
  await release(ctx, c);
  c.State = { ...c.State, Status: "exited", Running: false, Paused: false, Pid: 0, ExitCode: code, OOMKilled: oom, FinishedAt: now() };
  ctx.store.save(c);
  ctx.live.delete(id);
  if (oom) ctx.publish(c, "oom");
  ctx.publish(c, "die", { exitCode: String(code) });
  ctx.execs.forget(id);
  for (const w of ctx.exitWaiters.get(id) ?? []) w(code);
  ctx.exitWaiters.delete(id);
  if (c.HostConfig.AutoRemove && !ctx.restartingNow.has(id)) {
    try {
      await removeContainer(ctx, id, { force: true });
    } catch (err) {
      ctx.deps.log.warn("auto-remove failed", { container: id, error: messageOf(err) });
    }
    return;
  }
  maybeRestart(ctx, c, code);
}

/** Whether the restart policy wants this exit restarted. */
function wantsRestart(c: ContainerRecord, code: number): boolean {
  const p = c.HostConfig.RestartPolicy;
  if (c.ManuallyStopped || !p?.Name || p.Name === "no") return false;
  if (p.Name === "on-failure") return code !== 0 && (!p.MaximumRetryCount || c.RestartCount < p.MaximumRetryCount);
  return true; // always, unless-stopped
}

/**
 * Apply the restart policy after an exit, with Docker's backoff: 100 ms, doubling up to a
 * minute, back to 100 ms when the container had run for 10 s.
 */
export function maybeRestart(ctx: ContainerContext, c: ContainerRecord, code: number): void {
  if (!wantsRestart(c, code)) return;
  const ranMs = Date.parse(c.State.FinishedAt) - Date.parse(c.State.StartedAt);
  const prev = ctx.backoff.get(c.Id) ?? 0;
  const delay = ranMs >= 10_000 || prev === 0 ? 100 : Math.min(prev * 2, 60_000);
  ctx.backoff.set(c.Id, delay);
  c.State = { ...c.State, Status: "restarting", Restarting: true };
  ctx.store.save(c);
  const timer = setTimeout(async () => {
    ctx.restartTimers.delete(c.Id);
    let cur: ContainerRecord;
    try {
      cur = ctx.store.get(c.Id);
    } catch {
      return; // removed meanwhile
    }
    if (!cur.State.Restarting) return;
    cur.RestartCount++;
    cur.State.Restarting = false;
    try {
      await runContainer(ctx, cur);
      ctx.publish(cur, "restart");
    } catch (err) {
      ctx.deps.log.warn("restart failed", { container: cur.Id, error: messageOf(err) });
      cur.State = { ...cur.State, Status: "exited", Restarting: false };
      ctx.store.save(cur);
    }
  }, delay);
  ctx.restartTimers.set(c.Id, timer);
}

/** Cancel a pending restart (stop, kill, rm of a restarting container). */
export function cancelRestart(ctx: ContainerContext, c: ContainerRecord): boolean {
  const t = ctx.restartTimers.get(c.Id);
  if (!t) return false;
  clearTimeout(t);
  ctx.restartTimers.delete(c.Id);
  c.State = { ...c.State, Status: "exited", Restarting: false };
  ctx.store.save(c);
  return true;
}

/** Resolves at the next exit of the container. */
function nextExit(ctx: ContainerContext, id: string): Promise<number> {
  return new Promise((resolve) => {
    const list = ctx.exitWaiters.get(id) ?? [];
    list.push(resolve);
    ctx.exitWaiters.set(id, list);
  });
}

/**
 * `POST /containers/{id}/wait`: returns a promise of the status code (it settles later; the
 * caller sends the headers first). Conditions: not-running (default), next-exit, removed.
 */
export function waitContainer(ctx: ContainerContext, ref: string, condition = "not-running"): Promise<number> {
  const c = ctx.store.get(ref);
  if (!["not-running", "next-exit", "removed", ""].includes(condition)) throw invalidArgument(`invalid condition: "${condition}"`);
  if (condition === "removed") {
    return new Promise((resolve) => {
      const list = ctx.removeWaiters.get(c.Id) ?? [];
      list.push(() => resolve(ctx.lastExit.get(c.Id) ?? c.State.ExitCode));
      ctx.removeWaiters.set(c.Id, list);
    });
  }
  if ((condition === "not-running" || condition === "") && !c.State.Running) return Promise.resolve(c.State.ExitCode);
  return nextExit(ctx, c.Id);
}
