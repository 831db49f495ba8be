/**
 * A container's streams: attach (before the start too, from the first byte), input to its stdin
 * pipe or terminal, the terminal fetched from its monitor, resize, and the end of stdin.
 */
import { ignored } from "../log.ts";
import { closeSync, readlinkSync } from "node:fs";
import { conflict, EngineError, messageOf } from "../errors.ts";
import type { ContainerContext, Live } from "./context.ts";
import { resizePty } from "./exec-service.ts";
import type { OutputSubscriber } from "./output-pump.ts";
import { WriteQueue } from "./write-queue.ts";

/** What an attacher holds: input, its end (StdinOnce closes the container's stdin then), and detach. */
export interface AttachHandle {
  input(chunk: Uint8Array): void;
  endInput(): void;
  detach(): void;
}

/** Input sent before the container started, kept for it. */
function pendingInputOf(ctx: ContainerContext, id: string): { chunks: Uint8Array[]; end: boolean } {
  const p = ctx.pendingInput.get(id) ?? { chunks: [], end: false };
  ctx.pendingInput.set(id, p);
  return p;
}

/**
 * Attach to a container's streams (before start too: output from the first byte). `out` gets
 * the raw output records; the returned handle takes input and its end.
 */
export function attach(ctx: ContainerContext, ref: string, opts: { stdin: boolean }, out: OutputSubscriber): AttachHandle {
  const c = ctx.store.get(ref);
  if (!c.State.Running && c.State.Status !== "created") throw conflict("You cannot attach to a stopped container, start it first");
  if (c.State.Paused) throw conflict("You cannot attach to a paused container, unpause it first");
  ctx.publish(c, "attach");
  const live = ctx.live.get(c.Id);
  let unsubscribe: () => void;
  if (live) unsubscribe = live.pump.subscribe(out);
  else {
    const set = ctx.pendingAttach.get(c.Id) ?? new Set();
    set.add(out);
    ctx.pendingAttach.set(c.Id, set);
    unsubscribe = () => set.delete(out);
  }
  const queue = new WriteQueue();
  const write = (chunk: Uint8Array) => {
    const l = ctx.live.get(c.Id);
    if (l?.input === undefined) pendingInputOf(ctx, c.Id).chunks.push(chunk);
    else queue.write(l.input, chunk);
  };
  return {
    input: (chunk) => {
      if (opts.stdin && c.Config.OpenStdin) write(chunk);
    },
    endInput: () => {
      if (!opts.stdin || !c.Config.StdinOnce) return;
      if (!ctx.live.get(c.Id)) pendingInputOf(ctx, c.Id).end = true;
      else queue.then(() => closeStdin(ctx, c.Id));
    },
    detach: () => unsubscribe(),
  };
}

/** Whether `fd` (of this process) is a pty master: /dev/ptmx of some devpts instance. */
function isPtyMaster(fd: number): boolean {
  try {
    return /(^|\/)ptmx$/.test(readlinkSync(`/proc/self/fd/${fd}`));
  } catch {
    return false;
  }
}

/**
 * The container's pty master, fetched from its monitor (fd 3 there). The monitor receives the
 * master from the container and moves it to fd 3 on its own time, which can come after the
 * container reports ready: until then fd 3 is still a descriptor inherited from the daemon, and
 * input written to it was lost (seen as a `docker run -it` whose typed line never arrived). So
 * the fetched fd is checked to be a pty master, and fetched again until it is.
 */
export async function terminalOf(ctx: ContainerContext, id: string): Promise<number> {
  let last: unknown;
  for (let i = 0; i < 2000; i++) {
    try {
      const fd = ctx.deps.runtime.monitorFd(id, "output");
      if (isPtyMaster(fd)) return fd;
      closeSync(fd);
    } catch (err) {
      last = err;
    }
    await Bun.sleep(1);
  }
  throw new EngineError("internal", `container ${id}: its terminal did not reach its monitor${last ? ` (${messageOf(last)})` : ""}`);
}

/** At start: hand the pump to early attachers and the input they sent to the container. */
export function connectPending(ctx: ContainerContext, id: string, live: Live): void {
  for (const s of ctx.pendingAttach.get(id) ?? []) live.pump.subscribe(s);
  ctx.pendingAttach.delete(id);
  const p = ctx.pendingInput.get(id);
  ctx.pendingInput.delete(id);
  if (!p || live.input === undefined) return;
  const queue = new WriteQueue();
  for (const chunk of p.chunks) queue.write(live.input, chunk);
  if (p.end) queue.then(() => closeStdin(ctx, id));
}

/** `POST /containers/{id}/resize`. */
export function resize(ctx: ContainerContext, ref: string, height: number, width: number): void {
  const c = ctx.store.get(ref);
  if (!c.State.Running) throw conflict(`cannot resize container: container ${c.Id} is not running`);
  const l = ctx.live.get(c.Id);
  if (!c.Config.Tty || l?.input === undefined) return;
  resizePty(ctx.deps.sys, l.input, height, width, "the container's terminal");
  ctx.publish(c, "resize", { height: String(height), width: String(width) });
}

/** Close the container's stdin (StdinOnce, after the attached client's half-close). */
export function closeStdin(ctx: ContainerContext, id: string): void {
  const l = ctx.live.get(id);
  const c = ctx.store.get(id);
  if (!l || l.input === undefined || c.Config.Tty) return;
  try {
    closeSync(l.input);
  } catch (err) {
    ignored("closed already: the exit handler closes it too", err);
  }
  delete l.input;
}
