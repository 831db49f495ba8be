/**
 * The stream formats of attach, logs and exec: Docker's multiplexed frames (an 8-byte header:
 * stream, 3 zero bytes, big-endian length) or the raw stream of a terminal, and the detach keys
 * that end an attached session.
 */
import { EngineError } from "../errors.ts";
import { compareApiVersions } from "../version.ts";
import type { RouteContext } from "./router.ts";

/** One multiplexed frame: the 8-byte header, then `payload`. */
export function frame(stream: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + payload.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, payload.length, false);
  out.set(payload, 8);
  return out;
}

/** The content type of a hijacked or streamed body: multiplexed (API 1.42+, no terminal) or raw. */
export function streamContentType(ctx: RouteContext, tty: boolean): string {
  return !tty && compareApiVersions(ctx.apiVersion, "1.42") >= 0 ? "application/vnd.docker.multiplexed-stream" : "application/vnd.docker.raw-stream";
}

/** A watcher fed each chunk of input: true once the detach sequence `keys` has been typed. */
export function detachWatcher(keys: string): (chunk: Uint8Array) => boolean {
  const seq = parseDetachKeys(keys);
  let matched = 0;
  return (chunk) => {
    if (!seq.length) return false;
    for (const b of chunk) {
      matched = b === seq[matched] ? matched + 1 : b === seq[0] ? 1 : 0;
      if (matched === seq.length) return true;
    }
    return false;
  };
}

/** Docker's detach key syntax: "ctrl-p,ctrl-q", "a", "ctrl-@"… to bytes. */
export function parseDetachKeys(s: string): number[] {
  if (!s) return [];
  return s.split(",").map((k) => {
    if (k.length === 1) return k.charCodeAt(0);
    const m = /^ctrl-([a-z@[\\\]^_])$/.exec(k);
    if (!m) throw new EngineError("invalid-argument", `Invalid detach keys (${s}) provided`);
    const ch = m[1]!;
    return ch >= "a" && ch <= "z" ? ch.charCodeAt(0) - 96 : { "@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, _: 31 }[ch]!;
  });
}
