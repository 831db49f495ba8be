/**
 * A container's logs: the output pump that moves its monitor's spool into the json-file or local
 * log (none with `--log-driver none`), what the log holds, and following it while it runs.
 */
import { join } from "node:path";
import { parseByteSize } from "../bytes.ts";
import { invalidArgument } from "../errors.ts";
import type { ContainerRecord } from "./container-store.ts";
import type { ContainerContext } from "./context.ts";
import { JsonLogWriter, type LogEntry, readJsonLog } from "./json-log.ts";
import { LOCAL_DEFAULTS, LocalLogWriter, localLogFile, readLocalLog } from "./local-log.ts";
import { OutputPump } from "./output-pump.ts";

/** json-file and local options: max-size ("10m") and max-file. */
function logOptions(c: ContainerRecord): { maxSize?: number; maxFile?: number } {
  const o = c.HostConfig.LogConfig?.Config ?? {};
  const out: { maxSize?: number; maxFile?: number } = {};
  if (o["max-size"]) out.maxSize = parseByteSize(o["max-size"]);
  if (o["max-file"]) out.maxFile = Number(o["max-file"]);
  return out;
}

/** The container's output pump (spool → json-file or local log, unless logging is off), not started. */
export function pumpFor(ctx: ContainerContext, c: ContainerRecord): OutputPump {
  const dir = ctx.store.dir(c.Id);
  const type = c.HostConfig.LogConfig?.Type;
  const log = type === "none" ? undefined : type === "local" ? new LocalLogWriter(localLogFile(dir), { ...logOptions(c), compress: c.HostConfig.LogConfig?.Config?.compress !== "false" }) : new JsonLogWriter(c.LogPath, logOptions(c));
  return new OutputPump(join(dir, "output.spool"), join(dir, "spool.offset"), log);
}

/** What the container's log driver stored, oldest first (nothing with `none`). */
export function storedLogs(ctx: ContainerContext, c: ContainerRecord): LogEntry[] {
  const maxFile = c.HostConfig.LogConfig?.Config?.["max-file"];
  if (c.HostConfig.LogConfig?.Type === "none") return [];
  return c.HostConfig.LogConfig?.Type === "local" ? readLocalLog(localLogFile(ctx.store.dir(c.Id)), Number(maxFile ?? LOCAL_DEFAULTS.maxFile)) : readJsonLog(c.LogPath, Number(maxFile ?? 1));
}

/** `GET /containers/{id}/logs`' stored part; a container logging to `none` cannot be read. */
export function readLogs(ctx: ContainerContext, ref: string): LogEntry[] {
  const c = ctx.store.get(ref);
  if (c.HostConfig.LogConfig?.Type === "none") throw invalidArgument(`configured logging driver does not support reading`);
  // What the monitor has spooled is the log already: moved in now, not at the pump's next turn
  // (a `logs` right after a short container's start found its output still in the spool).
  ctx.live.get(c.Id)?.pump.pump();
  return storedLogs(ctx, c);
}

/** Follow a running container's new log entries; undefined when it does not run. Returns the stop. */
export function followLogs(ctx: ContainerContext, id: string, sink: { entries(e: LogEntry[]): void; end(): void }): (() => void) | undefined {
  const live = ctx.live.get(id);
  if (!live) return undefined;
  const stop = live.pump.follow(sink);
  return () => void stop();
}
