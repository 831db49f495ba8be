/**
 * One request/response pair on a connection: the request (head, query, body read with
 * backpressure through a BodyChannel) and the response writer (fixed, chunked, streamed or
 * hijacked), as the route handlers see them.
 */

import { EngineError, invalidArgument, messageOf } from "../../errors.ts";
import { BodyDecoder, bodyTooLarge, concatBytes, type RequestHead } from "./request.ts";
import { BODY_HIGH_WATER, type Connection, DEFAULT_BODY_LIMIT, type HttpRequest, type ResponseWriter, STATUS_TEXT, type StreamWriter, toBytes } from "./connection.ts";

/** Body chunks handed from the connection to the handler, with backpressure. */
export class BodyChannel {
  private chunks: Uint8Array[] = [];
  queued = 0;
  private finished = false;
  private error: unknown;
  private waiter: (() => void) | undefined;
  private taken = false;

  constructor(private readonly conn: Connection) {}

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.queued += chunk.length;
    this.wake();
  }
  finish(): void {
    this.finished = true;
    this.wake();
  }
  fail(err: unknown): void {
    if (this.finished) return;
    this.error ??= err;
    this.wake();
  }
  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async *iterate(): AsyncGenerator<Uint8Array> {
    if (this.taken) throw new EngineError("internal", "request body already consumed");
    this.taken = true;
    for (;;) {
      const c = this.chunks.shift();
      if (c) {
        this.queued -= c.length;
        if (this.queued < BODY_HIGH_WATER) this.conn.resumeReading();
        yield c;
        continue;
      }
      if (this.error !== undefined) throw this.error;
      if (this.finished) return;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }
}

/** Internal hijack bookkeeping shared between the connection and the HijackedStream. */
export class HijackState {
  private dataCbs: ((c: Uint8Array) => void)[] = [];
  private endCbs: (() => void)[] = [];
  private closeCbs: (() => void)[] = [];
  private early: Uint8Array[] = [];
  private hasEnded = false;
  private hasClosed = false;

  deliver(c: Uint8Array): void {
    if (this.dataCbs.length === 0) this.early.push(c);
    else for (const cb of this.dataCbs) cb(c);
  }
  ended(): void {
    if (this.hasEnded) return;
    this.hasEnded = true;
    if (this.dataCbs.length || this.endCbs.length) for (const cb of this.endCbs) cb();
  }
  closed(): void {
    this.hasClosed = true;
    this.ended();
    for (const cb of this.closeCbs) cb();
  }
  addData(cb: (c: Uint8Array) => void): void {
    this.dataCbs.push(cb);
    for (const c of this.early.splice(0)) cb(c);
  }
  addEnd(cb: () => void): void {
    this.endCbs.push(cb);
    if (this.hasEnded) queueMicrotask(cb);
  }
  addClose(cb: () => void): void {
    this.closeCbs.push(cb);
    if (this.hasClosed) queueMicrotask(cb);
  }
}

/** One request/response pair on a connection. */
export class Exchange {
  /** Connection-closed state; a plain list instead of AbortController, which costs ~2 MB RSS to load. */
  private closeCbs: (() => void)[] = [];
  isClosed = false;
  readonly body: BodyChannel;
  readonly request: HttpRequest;
  readonly response: ResponseWriter;
  streamWriter: (StreamWriter & { closed: boolean }) | undefined;

  constructor(
    readonly conn: Connection,
    readonly head: RequestHead,
    readonly decoder: BodyDecoder,
  ) {
    this.body = new BodyChannel(conn);
    this.request = this.makeRequest();
    this.response = this.makeResponse();
  }

  markClosed(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const cb of this.closeCbs.splice(0)) cb();
  }

  private makeRequest(): HttpRequest {
    const self = this;
    const body = this.body;
    const head = this.head;
    const bytes = async (limit = DEFAULT_BODY_LIMIT) => {
      const parts: Uint8Array[] = [];
      let total = 0;
      for await (const c of body.iterate()) {
        total += c.length;
        if (total > limit) throw bodyTooLarge(limit);
        parts.push(c);
      }
      return concatBytes(parts.length ? parts : [new Uint8Array(0)]);
    };
    const text = async (limit?: number) => new TextDecoder().decode(await bytes(limit));
    return {
      head,
      method: head.method,
      path: head.path,
      query: head.query,
      headers: head.headers,
      get closed() {
        return self.isClosed;
      },
      onClose(cb) {
        if (self.isClosed) queueMicrotask(cb);
        else self.closeCbs.push(cb);
      },
      bytes,
      text,
      async json(limit?: number) {
        const t = await text(limit);
        if (t.trim() === "") return undefined;
        try {
          return JSON.parse(t);
        } catch (err) {
          throw invalidArgument(`invalid JSON in request body: ${messageOf(err)}`, err);
        }
      },
      stream: () => body.iterate(),
    };
  }

  private makeResponse(): ResponseWriter {
    const extra = new Map<string, string>();
    let started = false;
    const isHead = this.head.method === "HEAD";
    const keepAlive = this.head.httpVersion === "1.1" ? this.head.headers.get("connection")?.toLowerCase() !== "close" : this.head.headers.get("connection")?.toLowerCase() === "keep-alive";
    const conn = this.conn;
    const headLines = (status: number, headers: [string, string][]) => {
      let s = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Status"}\r\n`;
      for (const [k, v] of extra) s += `${k}: ${v}\r\n`;
      for (const [k, v] of headers) s += `${k}: ${v}\r\n`;
      s += `Date: ${new Date().toUTCString()}\r\n`;
      return s;
    };
    const begin = () => {
      if (started) throw new EngineError("internal", "response already started");
      started = true;
    };
    const self = this;
    const response: ResponseWriter = {
      get started() {
        return started;
      },
      setHeader(name, value) {
        extra.set(name, value);
      },
      send(status, body, contentType) {
        begin();
        const bytes = body === undefined ? new Uint8Array(0) : toBytes(body);
        const headers: [string, string][] = [];
        const noBody = status === 204 || status === 304;
        if (contentType && !noBody) headers.push(["Content-Type", contentType]);
        if (!noBody) headers.push(["Content-Length", String(bytes.length)]);
        if (!keepAlive) headers.push(["Connection", "close"]);
        conn.write(headLines(status, headers) + "\r\n");
        if (!isHead && !noBody && bytes.length) conn.write(bytes);
        conn.finishExchange(self, keepAlive);
      },
      json(status, value) {
        response.send(status, JSON.stringify(value) + "\n", "application/json");
      },
      stream(status, contentType) {
        begin();
        const headers: [string, string][] = [["Content-Type", contentType]];
        if (isHead) {
          headers.push(["Content-Length", "0"]);
          conn.write(headLines(status, headers) + "\r\n");
          conn.finishExchange(self, keepAlive);
          const done: StreamWriter = { write: async () => {}, end: () => {}, closed: true };
          return done;
        }
        headers.push(["Transfer-Encoding", "chunked"]);
        if (!keepAlive) headers.push(["Connection", "close"]);
        conn.write(headLines(status, headers) + "\r\n");
        let closed = false;
        const writer = {
          get closed() {
            return closed || self.isClosed;
          },
          async write(chunk: string | Uint8Array) {
            if (writer.closed) return;
            const b = toBytes(chunk);
            if (b.length === 0) return;
            conn.write(b.length.toString(16) + "\r\n");
            conn.write(b);
            conn.write("\r\n");
            await conn.waitForRoom();
          },
          end() {
            if (closed) return;
            closed = true;
            conn.write("0\r\n\r\n");
            conn.finishExchange(self, keepAlive);
          },
        };
        self.streamWriter = writer;
        return writer;
      },
      hijack(contentType) {
        begin();
        const upgrade = self.head.headers.get("upgrade");
        if (upgrade !== undefined) {
          conn.write(
            headLines(101, [
              ["Content-Type", contentType],
              ["Connection", "Upgrade"],
              ["Upgrade", upgrade || "tcp"],
            ]) + "\r\n",
          );
        } else {
          conn.write(headLines(200, [["Content-Type", contentType]]) + "\r\n");
        }
        const state = new HijackState();
        conn.startHijack(state);
        return {
          write: async (chunk) => {
            conn.write(chunk);
            await conn.waitForRoom();
          },
          closeWrite: () => conn.shutdownAfterFlush(),
          close: () => conn.closeAfterFlush(),
          onData: (cb) => state.addData(cb),
          onEnd: (cb) => state.addEnd(cb),
          onClose: (cb) => state.addClose(cb),
        };
      },
    };
    return response;
  }
}
