/**
 * HTTP/1.1 request heads and bodies. The parser is incremental: the connection hands it bytes as
 * they arrive and asks for a head once `\r\n\r\n` is in the buffer. Bodies (Content-Length or
 * chunked) are decoded by `BodyDecoder`, which stops exactly at the end of the body so bytes after
 * it stay available for the next request or for a hijacked stream.
 */
import { EngineError, invalidArgument } from "../../errors.ts";
import { concatBytes } from "../../bytes.ts";

export { concatBytes };

/** Largest request head we accept (request line plus headers). */
export const MAX_HEAD_BYTES = 64 * 1024;

/** A parsed request line and header block. Header names are lower-cased. */
export interface RequestHead {
  method: string;
  /** Raw request target, e.g. `/v1.51/events?since=1`. */
  target: string;
  /** Path without the query string, percent-decoding left to the router. */
  path: string;
  query: Query;
  httpVersion: "1.0" | "1.1";
  headers: Map<string, string>;
}

const CRLFCRLF = new Uint8Array([13, 10, 13, 10]);

/** Index of the end of the head (just past `\r\n\r\n`), or -1 when more bytes are needed. */
export function findHeadEnd(buf: Uint8Array): number {
  const i = indexOf(buf, CRLFCRLF, 0);
  return i < 0 ? -1 : i + 4;
}

/** Parse a complete head (`buf` ends at the blank line). Throws invalid-argument when malformed. */
export function parseHead(buf: Uint8Array): RequestHead {
  const text = latin1(buf);
  const lines = text.split("\r\n");
  const requestLine = lines[0] ?? "";
  const m = /^([A-Z]+) (\S+) HTTP\/(1\.[01])$/.exec(requestLine);
  if (!m) throw invalidArgument(`malformed request line: ${JSON.stringify(requestLine.slice(0, 100))}`);
  const [, method, target, httpVersion] = m as unknown as [string, string, string, "1.0" | "1.1"];
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) throw invalidArgument(`malformed header line: ${JSON.stringify(line.slice(0, 100))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
  }
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  const query = parseQuery(q < 0 ? "" : target.slice(q + 1));
  return { method, target, path, query, httpVersion, headers };
}

/**
 * Bytes to a latin1 string. (TextDecoder("latin1") goes through ICU's converters, which cost the
 * idle daemon about 2 MB of resident memory; Buffer's latin1 decoding is native and does not.)
 */
function latin1(buf: Uint8Array): string {
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString("latin1");
}

/** A boolean query parameter as dockerd reads it: present, not empty, not "0", not "false". */
export const truthy = (v: string | null): boolean => v !== null && v !== "" && v !== "0" && v.toLowerCase() !== "false";

/** Query parameters, read-only, with URLSearchParams' decoding rules. */
export class Query {
  private readonly map = new Map<string, string[]>();
  constructor(raw = "") {
    for (const part of raw.split("&")) {
      if (!part) continue;
      const eq = part.indexOf("=");
      const k = decodeComponent(eq < 0 ? part : part.slice(0, eq));
      const v = eq < 0 ? "" : decodeComponent(part.slice(eq + 1));
      const list = this.map.get(k);
      if (list) list.push(v);
      else this.map.set(k, [v]);
    }
  }
  /** First value of `key`, or null. */
  get(key: string): string | null {
    return this.map.get(key)?.[0] ?? null;
  }
  /** Every value of `key` (`?names=a&names=b`). */
  getAll(key: string): string[] {
    return [...(this.map.get(key) ?? [])];
  }
  has(key: string): boolean {
    return this.map.has(key);
  }
}

function decodeComponent(s: string): string {
  const plus = s.replace(/\+/g, " ");
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus; // malformed escapes are kept as written, as URLSearchParams does
  }
}

/** Parse a query string (without the `?`). */
export function parseQuery(raw: string): Query {
  return new Query(raw);
}

/** How a request's body is framed. */
export type BodyFraming = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" };

/** Work out body framing from the headers, as RFC 9112 §6.3 orders it. */
export function bodyFraming(head: RequestHead): BodyFraming {
  const te = head.headers.get("transfer-encoding");
  if (te !== undefined) {
    if (
      te
        .toLowerCase()
        .split(",")
        .map((s) => s.trim())
        .at(-1) !== "chunked"
    ) {
      throw invalidArgument(`unsupported Transfer-Encoding: ${te}`);
    }
    return { kind: "chunked" };
  }
  const cl = head.headers.get("content-length");
  if (cl !== undefined) {
    if (!/^\d+$/.test(cl)) throw invalidArgument(`invalid Content-Length: ${cl}`);
    const length = Number(cl);
    return length === 0 ? { kind: "none" } : { kind: "length", length };
  }
  return { kind: "none" };
}

/**
 * Incremental body decoder. `push(buf)` consumes as many bytes as belong to the body and returns
 * how many it took plus the decoded payload; `done` turns true at the end of the body.
 */
export class BodyDecoder {
  done: boolean;
  private remaining: number;
  private chunkState: "size" | "data" | "data-crlf" | "trailer" = "size";
  private line = "";

  constructor(private readonly framing: BodyFraming) {
    this.done = framing.kind === "none";
    this.remaining = framing.kind === "length" ? framing.length : 0;
  }

  /** Decode from `buf`; returns bytes consumed and payload slices (views into `buf`). */
  push(buf: Uint8Array): { consumed: number; data: Uint8Array[] } {
    if (this.done) return { consumed: 0, data: [] };
    if (this.framing.kind === "length") {
      const n = Math.min(this.remaining, buf.length);
      this.remaining -= n;
      if (this.remaining === 0) this.done = true;
      return { consumed: n, data: n > 0 ? [buf.subarray(0, n)] : [] };
    }
    return this.pushChunked(buf);
  }

  private pushChunked(buf: Uint8Array): { consumed: number; data: Uint8Array[] } {
    const data: Uint8Array[] = [];
    let i = 0;
    while (i < buf.length && !this.done) {
      if (this.chunkState === "data") {
        const n = Math.min(this.remaining, buf.length - i);
        data.push(buf.subarray(i, i + n));
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.chunkState = "data-crlf";
        continue;
      }
      // size line, CRLF after data, and trailer lines are read byte by byte up to LF.
      const byte = buf[i++]!;
      if (byte !== 10) {
        if (byte !== 13) this.line += String.fromCharCode(byte);
        if (this.line.length > 1024) throw invalidArgument("chunked encoding: line too long");
        continue;
      }
      const line = this.line;
      this.line = "";
      if (this.chunkState === "data-crlf") {
        if (line !== "") throw invalidArgument("chunked encoding: missing CRLF after chunk data");
        this.chunkState = "size";
      } else if (this.chunkState === "size") {
        const size = parseInt(line.split(";")[0]!.trim(), 16);
        if (!Number.isFinite(size) || size < 0 || !/^[0-9a-fA-F]+/.test(line.trim())) {
          throw invalidArgument(`chunked encoding: bad chunk size ${JSON.stringify(line)}`);
        }
        if (size === 0) this.chunkState = "trailer";
        else {
          this.remaining = size;
          this.chunkState = "data";
        }
      } else if (line === "") {
        this.done = true; // blank line ends the trailer section
      }
    }
    return { consumed: i, data };
  }
}

/** Error for a body larger than the route allows; mapped to 413. */
export function bodyTooLarge(limit: number): EngineError {
  return new EngineError("resource-exhausted", `request body exceeds the limit of ${limit} bytes`);
}

/** Byte-wise search for `needle` in `hay` starting at `from`. */
export function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0]!;
  outer: for (let i = hay.indexOf(first, from); i >= 0 && i <= hay.length - needle.length; i = hay.indexOf(first, i + 1)) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
