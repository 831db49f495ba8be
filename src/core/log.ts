/**
 * The daemon's logger: one line per entry on stderr, either logrus-style text (as dockerd prints)
 * or JSON (`--log-format json`). Fields are plain key/value pairs.
 */
import { writeSync } from "node:fs";

/** Log levels in increasing severity, named as dockerd's `--log-level` names them. */
export const LOG_LEVELS = ["debug", "info", "warn", "error", "fatal"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = "text" | "json";
export type LogFields = Record<string, string | number | boolean | undefined>;

/** A logger with a level threshold; `with` derives one that adds fields to every line. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  with(fields: LogFields): Logger;
  /** Change level and format in place (SIGHUP reload). */
  configure(opts: { level?: LogLevel; format?: LogFormat }): void;
}

/** Where log lines go; defaults to stderr. Tests pass an array sink. */
export type LogSink = (line: string) => void;

/** Synchronous write to fd 2: no stream machinery in the daemon, and lines never interleave. */
const stderrSink: LogSink = (line) => {
  try {
    writeSync(2, line + "\n");
  } catch {
    // stderr closed: nothing useful to do. (The logger cannot log its own failure to write.)
  }
};

/** Create a logger writing to `sink` at `level` in `format`. */
export function createLogger(opts: { level?: LogLevel; format?: LogFormat; sink?: LogSink } = {}): Logger {
  const state = { level: opts.level ?? "info", format: opts.format ?? ("text" as LogFormat) };
  const sink = opts.sink ?? stderrSink;
  const make = (base: LogFields): Logger => {
    const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
      if (LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(state.level)) return;
      const all = { ...base, ...fields };
      sink(state.format === "json" ? jsonLine(level, msg, all) : textLine(level, msg, all));
    };
    return {
      debug: (m, f) => emit("debug", m, f),
      info: (m, f) => emit("info", m, f),
      warn: (m, f) => emit("warn", m, f),
      error: (m, f) => emit("error", m, f),
      with: (f) => make({ ...base, ...f }),
      configure(o) {
        if (o.level) state.level = o.level;
        if (o.format) state.format = o.format;
      },
    };
  };
  return make({});
}

function jsonLine(level: LogLevel, msg: string, fields: LogFields): string {
  const out: Record<string, unknown> = { level: level === "warn" ? "warning" : level, msg, time: new Date().toISOString() };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) out[k] = v;
  return JSON.stringify(out);
}

function textLine(level: LogLevel, msg: string, fields: LogFields): string {
  let line = `time="${new Date().toISOString()}" level=${level === "warn" ? "warning" : level} msg=${quote(msg)}`;
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${quote(String(v))}`;
  return line;
}

function quote(s: string): string {
  return /^[A-Za-z0-9_.\/:@-]+$/.test(s) ? s : JSON.stringify(s);
}

let processLogger: Logger | undefined;

/** The daemon's logger, which `ignored` writes to (set once when the daemon starts). */
export function setProcessLogger(log: Logger): void {
  processLogger = log;
}

/**
 * A failure that is expected and let go (an undo that finds nothing to undo, a descriptor closed
 * already): logged at debug with the reason, never thrown.
 */
export function ignored(reason: string, err?: unknown): undefined {
  processLogger?.debug(reason, err === undefined ? {} : { error: err instanceof Error ? err.message : String(err) });
  return undefined;
}

/** `ignored` for a promise: `p.catch(ignore("why it may fail"))`. */
export function ignore(reason: string): (err: unknown) => undefined {
  return (err) => ignored(reason, err);
}
