/** Times as Docker writes them: RFC 3339 with nanoseconds. */

/** Nanoseconds since the epoch as RFC 3339 with nine fractional digits, UTC ("…T…Z"). */
export function rfc3339Nano(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const frac = (ns % 1_000_000_000n).toString().padStart(9, "0");
  return `${new Date(ms).toISOString().slice(0, 19)}.${frac}Z`;
}

/** RFC 3339 (any fraction, Z or offset) to nanoseconds since the epoch. */
export function parseRfc3339Nano(s: string): bigint {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (!m) throw new Error(`not an RFC 3339 time: ${s}`);
  const secs = BigInt(Date.parse(`${m[1]}${m[3]}`)) / 1000n;
  return secs * 1_000_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
}
