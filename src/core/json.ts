/**
 * JSON with exact 64-bit integers: Docker's wire format carries int64 values (event `timeNano`,
 * sizes) beyond 2^53, which JavaScript numbers cannot hold. Such values are bigints in memory and
 * are written here as bare integer literals.
 */

const MARK = "\u0000big:";

/** `JSON.stringify` that writes bigints as integer literals. */
export function stringifyJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? `${MARK}${v}` : v)).replace(/"\\u0000big:(-?\d+)"/g, "$1");
}
