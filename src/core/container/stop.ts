/**
 * Signals and the states between running and stopped: kill, stop (the stop signal, then SIGKILL
 * after the timeout), pause and unpause, restart; and rename.
 */
import { ignored } from "../log.ts";
import { conflict, invalidArgument } from "../errors.ts";
import { signalByName } from "../signals.ts";
import type { ContainerContext } from "./context.ts";
import { cancelRestart } from "./exit.ts";
import { startContainer } from "./start.ts";

/** "SIGTERM", "TERM", "15" → 15; Docker's message otherwise. */
export function parseSignal(s: string): number {
  const n = signalByName(s);
  if (n === undefined) throw invalidArgument(`Invalid signal: ${s}`);
  return n;
}

/**
 * `POST /containers/{id}/kill`. A SIGKILL answers once the exit is recorded (moby waits too),
 * so an inspect right after shows `exited` with 137; other signals answer when sent.
 */
export async function killContainer(ctx: ContainerContext, ref: string, signal = "SIGKILL"): Promise<void> {
  const c = ctx.store.get(ref);
  const sig = parseSignal(signal);
  if (c.State.Restarting && cancelRestart(ctx, c)) return;
  if (!c.State.Running) throw conflict(`cannot kill container: ${c.Id}: container ${c.Id} is not running`);
  if (c.State.Paused && sig !== 9) throw conflict(`cannot kill container: ${c.Id}: container ${c.Id} is paused. Unpause the container before stopping or killing`);
  if (c.State.Paused) ctx.deps.runtime.resume(c.Id);
  if (sig === 9 || sig === 15) {
    c.ManuallyStopped = true; // as dockerd: a killed container is not restarted by its policy
    ctx.store.save(c);
  }
  const l = ctx.live.get(c.Id);
  ctx.deps.runtime.kill(c.Id, sig, sig === 9);
  ctx.publish(c, "kill", { signal: String(sig) });
  if (sig === 9 && l) await Promise.race([l.handled, Bun.sleep(10_000)]);
}

/** `POST /containers/{id}/stop`: the stop signal, then SIGKILL after `timeout` seconds. False if not running (304). */
export async function stopContainer(ctx: ContainerContext, ref: string, timeout?: number, signal?: string): Promise<boolean> {
  const c = ctx.store.get(ref);
  c.ManuallyStopped = true;
  if (cancelRestart(ctx, c)) return true;
  ctx.store.save(c);
  if (!c.State.Running) return false;
  const l = ctx.live.get(c.Id);
  const t = timeout ?? c.Config.StopTimeout ?? 10;
  const sig = parseSignal(signal || c.Config.StopSignal || "SIGTERM");
  if (c.State.Paused) {
    ctx.deps.runtime.resume(c.Id);
    c.State.Paused = false;
  }
  try {
    ctx.deps.runtime.kill(c.Id, sig);
  } catch (err) {
    ignored("exited meanwhile: the exit handler records it", err);
  }
  const timer =
    t < 0
      ? undefined
      : setTimeout(() => {
          try {
            ctx.deps.runtime.kill(c.Id, 9, true);
          } catch (err) {
            ignored("exited within the timeout", err);
          }
        }, t * 1000);
  await l?.handled; // the exit, recorded (state saved, layer unmounted)
  if (timer) clearTimeout(timer);
  ctx.publish(c, "stop");
  return true;
}

/** `POST /containers/{id}/pause` and `/unpause`. */
export function pauseContainer(ctx: ContainerContext, ref: string, paused: boolean): void {
  const c = ctx.store.get(ref);
  if (!c.State.Running) throw conflict(`Container ${c.Id} is not running`);
  if (paused === c.State.Paused) throw conflict(`Container ${c.Id} is ${paused ? "already paused" : "not paused"}`);
  if (paused) ctx.deps.runtime.pause(c.Id);
  else ctx.deps.runtime.resume(c.Id);
  c.State = { ...c.State, Paused: paused, Status: paused ? "paused" : "running" };
  ctx.store.save(c);
  ctx.publish(c, paused ? "pause" : "unpause");
}

/** `POST /containers/{id}/restart`: stop (the stop signal, then SIGKILL after `timeout`), start, a restart event. */
export async function restartContainer(ctx: ContainerContext, ref: string, timeout?: number, signal?: string): Promise<void> {
  const c = ctx.store.get(ref);
  ctx.restartingNow.add(c.Id);
  try {
    await stopContainer(ctx, c.Id, timeout, signal);
    await startContainer(ctx, c.Id);
  } finally {
    ctx.restartingNow.delete(c.Id);
  }
  ctx.publish(ctx.store.get(c.Id), "restart");
}

/** `POST /containers/{id}/rename`. */
export function renameContainer(ctx: ContainerContext, ref: string, name: string): void {
  const c = ctx.store.get(ref);
  if (c.Name === (name.startsWith("/") ? name : `/${name}`)) throw invalidArgument("Renaming a container with the same name as its current name");
  const old = c.Name;
  c.Name = ctx.store.checkName(name, c.Id);
  ctx.store.save(c);
  ctx.publish(c, "rename", { oldName: old });
}
