/**
 * Query arguments the container routes share: `?h=&w=` of the resize endpoints and Docker's
 * times (`since`, `until`), parsed once at the edge.
 */
import { invalidArgument } from "../../errors.ts";
import type { Route, RouteContext } from "../router.ts";
import type { ContainerBackend } from "../../container/container-backend.ts";

/** A handler given the backend. */
export type Handler = (ctx: RouteContext, b: ContainerBackend) => Promise<void> | void;

/** A route of a table: method, path, handler. */
export type Entry = [Route["method"], string, Handler];

/** `?h=&w=` of the resize endpoints (containers and execs). */
export function resizeArgs(ctx: RouteContext): [number, number] {
  const h = Number(ctx.req.query.get("h"));
  const w = Number(ctx.req.query.get("w"));
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 0 || w < 0) throw invalidArgument("invalid resize parameters");
  return [h, w];
}

/** Seconds (with fraction) or RFC 3339 as nanoseconds since the epoch; Docker's `since`/`until`. */
export function timeArg(v: string | null): bigint | undefined {
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) {
    const [s, frac = ""] = v.split(".");
    return BigInt(s!) * 1_000_000_000n + BigInt(frac.padEnd(9, "0").slice(0, 9));
  }
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw invalidArgument(`invalid value for time: ${v}`);
  return BigInt(ms) * 1_000_000n;
}
