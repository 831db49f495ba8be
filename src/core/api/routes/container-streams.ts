/**
 * The container routes that stream: attach (hijacked), logs (with follow), stats (with stream),
 * and exec (create, inspect, resize, start hijacked). Output is framed as the request asks
 * (multiplexed or raw, streams.ts); input goes to the backend's attach or exec handle.
 */
import type { ContainerBackend, ContainerRecord, LogEntry, OutputSubscriber, SpoolRecord } from "../../container/container-backend.ts";
import { rfc3339Nano } from "../../container/container-backend.ts";
import { invalidArgument, messageOf } from "../../errors.ts";
import { truthy } from "../http/request.ts";
import type { RouteContext } from "../router.ts";
import { detachWatcher, frame, streamContentType } from "../streams.ts";
import { type Entry, resizeArgs, timeArg } from "./query-args.ts";

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.length + b.length);
  o.set(a);
  o.set(b, a.length);
  return o;
}

/** Write the stored log entries of the streams `want` asks for. */
async function replayLogs(b: ContainerBackend, c: ContainerRecord, want: Record<number, boolean>, out: { write(b: Uint8Array): Promise<void> | void }): Promise<void> {
  const tty = !!c.Config.Tty;
  for (const e of c.HostConfig.LogConfig?.Type === "none" ? [] : b.logs(c.Id)) {
    const n = e.stream === "stdout" ? 1 : 2;
    if (want[n]) await out.write(tty ? e.text : frame(n, e.text));
  }
}

/** `POST /containers/{id}/attach`: hijacked; logs=1 replays the log first; input until the detach keys. */
async function attachRoute(ctx: RouteContext, b: ContainerBackend): Promise<void> {
  const c = b.get(ctx.params.id!);
  const q = ctx.req.query;
  const tty = !!c.Config.Tty;
  const want = { 1: truthy(q.get("stdout")), 2: truthy(q.get("stderr")) } as Record<number, boolean>;
  let stream: ReturnType<typeof ctx.res.hijack> | undefined;
  let queue = Promise.resolve();
  const sub: OutputSubscriber = {
    data(rec: SpoolRecord) {
      if (!want[rec.stream] || !stream) return;
      const bytes = tty ? rec.data : frame(rec.stream, rec.data);
      const s = stream;
      queue = queue.then(() => s.write(bytes));
    },
    end() {
      const s = stream;
      void queue.then(() => s?.close());
    },
  };
  // logs=1 replays what was logged first (moby does, for a stopped container too); stream=0
  // ends there. Without stream the output goes live, as before.
  const logs = truthy(q.get("logs"));
  const live = q.get("stream") === null || truthy(q.get("stream"));
  if (logs && (!live || (!c.State.Running && c.State.Status !== "created"))) {
    const out = ctx.res.hijack(streamContentType(ctx, tty));
    await replayLogs(b, c, want, out);
    out.close();
    return;
  }
  const handle = b.attach(c.Id, { stdin: truthy(q.get("stdin")) }, sub);
  stream = ctx.res.hijack(streamContentType(ctx, tty));
  if (logs) await replayLogs(b, c, want, stream);
  const detachSeen = detachWatcher(q.get("detachKeys") || "ctrl-p,ctrl-q"); // empty means the default, as dockerd
  stream.onData((chunk) => {
    if (detachSeen(chunk)) {
      handle.detach();
      stream!.close();
      return;
    }
    handle.input(chunk);
  });
  // The client's end of input: with StdinOnce the container's stdin ends too; otherwise this
  // attach ends (dockerd closes its output then; it is how the CLI's detach keys work).
  stream.onEnd(() => {
    if (c.Config.StdinOnce || !truthy(q.get("stdin"))) handle.endInput();
    else {
      handle.detach();
      stream!.close();
    }
  });
  stream.onClose(() => handle.detach());
}

/** `GET /containers/{id}/logs`: the stored entries (since, until, tail, timestamps), then with follow the new ones. */
async function logsRoute(ctx: RouteContext, b: ContainerBackend): Promise<void> {
  const c = b.get(ctx.params.id!);
  const q = ctx.req.query;
  const want = { stdout: truthy(q.get("stdout")), stderr: truthy(q.get("stderr")) };
  if (!want.stdout && !want.stderr) throw invalidArgument("Bad parameters: you must choose at least one stream");
  const stored = b.logs(c.Id); // 400 for a container logging to `none`
  const since = timeArg(q.get("since"));
  const until = timeArg(q.get("until"));
  const timestamps = truthy(q.get("timestamps"));
  const tailArg = q.get("tail") ?? "all";
  const tail = tailArg === "all" || tailArg === "" ? -1 : Number(tailArg);
  if (!Number.isInteger(tail)) throw invalidArgument(`invalid tail value: ${tailArg}`);
  const tty = !!c.Config.Tty;
  const out = ctx.res.stream(200, streamContentType(ctx, tty));
  const keep = (e: LogEntry) => want[e.stream] && (since === undefined || e.timeNs > since) && (until === undefined || e.timeNs <= until);
  const render = (e: LogEntry) => {
    const text = timestamps ? concat(new TextEncoder().encode(`${rfc3339Nano(e.timeNs)} `), e.text) : e.text;
    return tty ? text : frame(e.stream === "stdout" ? 1 : 2, text);
  };
  let entries = stored.filter(keep);
  if (tail >= 0) entries = tail === 0 ? [] : entries.slice(-tail);
  for (const e of entries) await out.write(render(e));
  if (!truthy(q.get("follow"))) return out.end();
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  let queue = Promise.resolve();
  const stop = b.followLogs(c.Id, {
    entries(es) {
      for (const e of es.filter(keep)) queue = queue.then(() => out.write(render(e)));
    },
    end() {
      void queue.then(resolveDone);
    },
  });
  if (!stop) return out.end();
  ctx.req.onClose(() => {
    stop();
    resolveDone();
  });
  await done;
  out.end();
}

const NO_CPU = { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };

/** `GET /containers/{id}/stats`: one answer (two samples a moment apart, or one-shot), or a sample a second. */
async function statsRoute(ctx: RouteContext, b: ContainerBackend): Promise<void> {
  const c = b.get(ctx.params.id!);
  const q = ctx.req.query;
  const stream = q.get("stream") === null ? true : truthy(q.get("stream"));
  const oneShot = truthy(q.get("one-shot"));
  let prev = b.statsSample(c.Id);
  if (!stream) {
    // As dockerd: two samples a moment apart, so the client can compute a CPU percentage.
    if (!oneShot && c.State.Running) await Bun.sleep(500);
    const cur = oneShot ? prev : b.statsSample(c.Id);
    return ctx.res.json(200, { ...cur, preread: oneShot ? "0001-01-01T00:00:00Z" : prev.read, precpu_stats: oneShot ? NO_CPU : prev.cpu_stats });
  }
  const out = ctx.res.stream(200, "application/json");
  await out.write(`${JSON.stringify({ ...prev, precpu_stats: NO_CPU })}\n`);
  while (!ctx.req.closed && !out.closed) {
    await Bun.sleep(1000);
    let cur;
    try {
      cur = b.statsSample(c.Id);
    } catch {
      break; // removed
    }
    await out.write(`${JSON.stringify({ ...cur, preread: prev.read, precpu_stats: prev.cpu_stats })}\n`);
    prev = cur;
  }
  out.end();
}

/** `POST /exec/{id}/start`: detached, or hijacked with the process's output and input. */
async function execStart(ctx: RouteContext, b: ContainerBackend): Promise<void> {
  const body = ((await ctx.req.json()) ?? {}) as { Detach?: boolean; Tty?: boolean };
  const e = b.execs.get(ctx.params.id!);
  // The stream is raw or multiplexed as the *start* request says (moby frames by it), even
  // when the process has a terminal: docker-py starts a Tty exec with Tty false.
  const tty = body.Tty ?? !!e.config.Tty;
  if (body.Detach) {
    await b.execs.start(e.id, { detach: true });
    return ctx.res.send(200);
  }
  // Hijack first, as dockerd does: a process that cannot start is reported in the stream,
  // with exit code 126 (missing or not executable alike) for the CLI's inspect.
  const stream = ctx.res.hijack(streamContentType(ctx, tty));
  let queue = Promise.resolve();
  const want = { 1: !!e.config.AttachStdout, 2: !!e.config.AttachStderr } as Record<number, boolean>;
  let run;
  try {
    run = await b.execs.start(e.id, {
      detach: false,
      sink: {
        data(streamNo, chunk) {
          if (!want[streamNo]) return;
          const bytes = tty ? chunk : frame(streamNo, chunk);
          queue = queue.then(() => stream.write(bytes));
        },
      },
    });
  } catch (err) {
    const msg = new TextEncoder().encode(`OCI runtime exec failed: exec failed: unable to start container process: ${messageOf(err)}: unknown\r\n`);
    await stream.write(tty ? msg : frame(1, msg)); // on stdout, as dockerd writes it
    stream.close();
    return;
  }
  // Detach keys (the exec's, else ctrl-p,ctrl-q) end the stream; the process goes on.
  const detachSeen = detachWatcher(e.config.DetachKeys || "ctrl-p,ctrl-q");
  let detached = false;
  stream.onData((chunk) => {
    if (detached) return;
    if (e.config.AttachStdin && detachSeen(chunk)) {
      detached = true;
      stream.close();
      return;
    }
    run.input(chunk);
  });
  stream.onEnd(() => run.endInput());
  await Promise.race([run.done, new Promise<void>((resolve) => stream.onClose(resolve))]); // the exit code is recorded before the stream closes
  if (detached) return;
  await queue;
  stream.close();
}

/** The streaming routes. */
export const streamRoutes: Entry[] = [
  ["GET", "/containers/{id}/stats", statsRoute],
  ["POST", "/containers/{id}/attach", attachRoute],
  ["POST", "/containers/{id}/exec", async (ctx, b) => ctx.res.json(201, { Id: b.execs.create(b.get(ctx.params.id!).Id, await ctx.req.json()) })],
  ["GET", "/exec/{id}/json", (ctx, b) => ctx.res.json(200, b.execs.inspect(ctx.params.id!))],
  [
    "POST",
    "/exec/{id}/resize",
    (ctx, b) => {
      const [h, w] = resizeArgs(ctx);
      b.execs.resize(ctx.params.id!, h, w);
      ctx.res.send(200);
    },
  ],
  ["POST", "/exec/{id}/start", execStart],
  ["GET", "/containers/{id}/logs", logsRoute],
];
