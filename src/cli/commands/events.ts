/**
 * `bunker events` (also `bunker system events`): stream daemon events, printed as docker prints
 * them, or with `--format`.
 */
import { decodeEvent, type EventMessage } from "../../core/events/bus.ts";
import type { CliContext } from "../context.ts";
import { formatRfc3339NanoFixed, renderFormat, toTimestamp } from "../output.ts";

/** docker's prettyPrintEvent. */
export function renderEvent(e: EventMessage): string {
  let s = "";
  if (e.timeNano) s += formatRfc3339NanoFixed(e.timeNano) + " ";
  else if (e.time) s += formatRfc3339NanoFixed(BigInt(e.time) * 1_000_000_000n) + " ";
  s += `${e.Type} ${e.Action} ${e.Actor.ID}`;
  const keys = Object.keys(e.Actor.Attributes ?? {}).sort();
  if (keys.length) s += ` (${keys.map((k) => `${k}=${e.Actor.Attributes[k]}`).join(", ")})`;
  return s + "\n";
}

/** `key=value` flags to the filters JSON the daemon takes. */
export function filtersJson(filters: string[]): string | undefined {
  if (!filters.length) return undefined;
  const out: Record<string, Record<string, boolean>> = {};
  for (const f of filters) {
    const i = f.indexOf("=");
    if (i <= 0) throw new Error(`bad format of filter (expected name=value): ${f}`);
    (out[f.slice(0, i).trim().toLowerCase()] ??= {})[f.slice(i + 1)] = true;
  }
  return JSON.stringify(out);
}

/** Run the command until the daemon closes the stream, `--until` passes or the user interrupts. */
export async function eventsCommand(ctx: CliContext, opts: { since?: string; until?: string; filter?: string | string[]; format?: string }): Promise<number> {
  const filters = opts.filter === undefined ? [] : Array.isArray(opts.filter) ? opts.filter : [opts.filter];
  const res = await ctx.client().request("GET", "/events", {
    query: {
      since: opts.since ? toTimestamp(opts.since) : undefined,
      until: opts.until ? toTimestamp(opts.until) : undefined,
      filters: filtersJson(filters),
    },
  });
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const e = decodeEvent(line);
      ctx.out(opts.format === "json" ? line + "\n" : opts.format ? renderFormat(opts.format, e) + "\n" : renderEvent(e));
    }
  }
  return 0;
}
