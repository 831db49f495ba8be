/**
 * Output helpers that reproduce what docker prints: Go's tabwriter column alignment, the
 * `--format` templates (`json`, `{{json .X}}`, `{{.A.B}}`), and Go's time layouts.
 */
import { stringifyJson } from "../core/json.ts";

/**
 * Align tab-separated cells like Go's `tabwriter.NewWriter(w, minwidth, 1, padding, ' ', 0)`:
 * within each run of lines that contain tabs, a column is as wide as its widest cell plus
 * `padding`, and at least `minwidth`.
 */
export function tabwrite(text: string, minwidth = 20, padding = 1): string {
  const lines = text.split("\n");
  const out: string[] = [];
  let block: string[][] = [];
  const flush = () => {
    if (!block.length) return;
    const widths: number[] = [];
    for (const cells of block) {
      cells.slice(0, -1).forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, Math.max(minwidth, c.length + padding))));
    }
    for (const cells of block) out.push(cells.map((c, i) => (i < cells.length - 1 ? c.padEnd(widths[i]!) : c)).join(""));
    block = [];
  };
  for (const line of lines) {
    if (line.includes("\t")) block.push(line.split("\t"));
    else {
      flush();
      out.push(line);
    }
  }
  flush();
  return out.join("\n");
}

/** Look up `.A.B.C` in a value. */
function lookup(value: unknown, path: string): unknown {
  let cur = value;
  for (const key of path.split(".").filter(Boolean)) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function show(v: unknown): string {
  if (v === undefined || v === null) return "<no value>";
  if (typeof v === "object")
    return Array.isArray(v)
      ? `[${v.map(show).join(" ")}]`
      : `map[${Object.entries(v)
          .map(([k, x]) => `${k}:${show(x)}`)
          .join(" ")}]`;
  return String(v);
}

/**
 * Render a docker-style `--format`: `json` prints the value as one JSON line; otherwise a
 * template where `{{.Path}}` and `{{json .Path}}` are substituted and `\n`, `\t` are escapes.
 */
export function renderFormat(format: string, value: unknown): string {
  if (format === "json") return stringifyJson(value);
  return format
    .replace(/\\n/g, "\n")
    .replace(/\\t/g, "\t")
    .replace(/\{\{\s*(json\s+)?\.([A-Za-z0-9_.]*)\s*\}\}/g, (_m, json: string | undefined, path: string) => {
      const v = lookup(value, path);
      return json ? stringifyJson(v ?? null) : show(v);
    });
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const p2 = (n: number) => String(n).padStart(2, "0");

/** Go's `time.ANSIC` layout ("Mon Jan _2 15:04:05 2006") in UTC, as docker shows build times. */
export function formatAnsiC(iso: string): string {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return iso;
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, " ")} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/** docker's RFC3339NanoFixed ("2006-01-02T15:04:05.000000000Z07:00") in local time. */
export function formatRfc3339NanoFixed(timeNano: bigint): string {
  const ms = Number(timeNano / 1_000_000n);
  const d = new Date(ms);
  const nanos = String(timeNano % 1_000_000_000n).padStart(9, "0");
  const off = -d.getTimezoneOffset();
  const zone = off === 0 ? "Z" : `${off > 0 ? "+" : "-"}${p2(Math.floor(Math.abs(off) / 60))}:${p2(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.${nanos}${zone}`;
}

/** docker's units.BytesSize: binary units with up to 4 significant digits ("23.47GiB"). */
export function bytesSize(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number(v.toPrecision(4))}${units[i]}`;
}

/**
 * Convert a `--since`/`--until` value to the daemon's `<seconds>.<nanos>` form: Go durations
 * ("10m", "1h30m") are relative to now; RFC 3339 dates and unix timestamps are taken as given.
 */
export function toTimestamp(value: string, now = Date.now()): string {
  if (/^\d+(\.\d+)?$/.test(value)) return value;
  const dur = /^((\d+(\.\d+)?)(ns|us|µs|ms|s|m|h))+$/.test(value);
  if (dur) {
    let ms = 0;
    const mult: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
    for (const m of value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * mult[m[2]!]!;
    return msToTimestamp(now - ms);
  }
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new Error(`invalid time value: ${value}`);
  return msToTimestamp(t);
}

function msToTimestamp(ms: number): string {
  const sec = Math.floor(ms / 1000);
  const nanos = Math.round((ms - sec * 1000) * 1e6);
  return `${sec}.${String(nanos).padStart(9, "0")}`;
}
