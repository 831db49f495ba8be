/**
 * One HTTP/1.1 connection on a raw Bun socket: request parsing, body streaming with backpressure,
 * fixed and chunked responses flushed as written, keep-alive, and the hijacked (`101 UPGRADED`)
 * raw stream with half-close in both directions. Kept free of routing: it calls a `Handler`.
 */
import type { Socket } from "bun";
import { EngineError, invalidArgument, messageOf } from "../../errors.ts";
import { BodyDecoder, bodyFraming, concatBytes, findHeadEnd, MAX_HEAD_BYTES, parseHead, type Query, type RequestHead } from "./request.ts";
import { Exchange, type HijackState } from "./exchange.ts";

/** Default limit for buffered (JSON) request bodies. */
export const DEFAULT_BODY_LIMIT = 10 * 1024 * 1024;
/** Pause reading a streamed body once this much is queued and unread. */
export const BODY_HIGH_WATER = 1024 * 1024;
/** Writers wait for the socket to drain once this much output is queued. */
const OUTPUT_HIGH_WATER = 1024 * 1024;

/** A request as handlers see it. */
export interface HttpRequest {
  readonly head: RequestHead;
  readonly method: string;
  /** Path with any API version prefix still present (the API layer strips it). */
  readonly path: string;
  readonly query: Query;
  readonly headers: Map<string, string>;
  /** True once the client connection has closed. */
  readonly closed: boolean;
  /** Call `cb` once when the client connection closes (at once if it already has). */
  onClose(cb: () => void): void;
  /** Read the whole body, failing with 413 past `limit` bytes. */
  bytes(limit?: number): Promise<Uint8Array>;
  text(limit?: number): Promise<string>;
  /** Parse the body as JSON; empty body gives `undefined`, malformed JSON is invalid-argument (400). */
  json(limit?: number): Promise<unknown>;
  /** The body as it arrives, with backpressure on the socket. */
  stream(): AsyncIterable<Uint8Array>;
}

/** A chunked streaming response. `write` resolves once the socket has room again. */
export interface StreamWriter {
  write(chunk: string | Uint8Array): Promise<void>;
  end(): void;
  readonly closed: boolean;
}

/** The raw bidirectional stream after a hijack. */
export interface HijackedStream {
  /** Write raw bytes; resolves once the socket has room again. */
  write(chunk: string | Uint8Array): Promise<void>;
  /** Shut down our write side (FIN) but keep reading. */
  closeWrite(): void;
  /** Close both directions once queued output is flushed. */
  close(): void;
  /** Raw bytes from the client, including any that followed the request head. */
  onData(cb: (chunk: Uint8Array) => void): void;
  /** The client shut down its write side (half-close). */
  onEnd(cb: () => void): void;
  /** The connection is gone. */
  onClose(cb: () => void): void;
}

/** How a handler answers. Exactly one of send/json/stream/hijack per request. */
export interface ResponseWriter {
  readonly started: boolean;
  setHeader(name: string, value: string): void;
  send(status: number, body?: string | Uint8Array, contentType?: string): void;
  json(status: number, value: unknown): void;
  stream(status: number, contentType: string): StreamWriter;
  /**
   * Take over the connection. With `Upgrade: tcp` in the request the reply is
   * `101 UPGRADED`; otherwise `200 OK` with no length, as moby does for plain attach clients.
   */
  hijack(contentType: string): HijackedStream;
}

/** Serves one request. Throwing before the response starts produces a JSON error. */
export type Handler = (req: HttpRequest, res: ResponseWriter) => void | Promise<void>;

/** Maps a thrown error to status and message, supplied by the API layer. */
export type ErrorRenderer = (err: unknown) => { status: number; message: string };

export const STATUS_TEXT: Record<number, string> = {
  101: "UPGRADED",
  200: "OK",
  201: "Created",
  204: "No Content",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  412: "Precondition Failed",
  413: "Request Entity Too Large",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
};

const enc = new TextEncoder();
export const toBytes = (c: string | Uint8Array) => (typeof c === "string" ? enc.encode(c) : c);

type Mode = "head" | "request" | "discard" | "hijacked" | "closed";

/**
 * A response may end before its request body did (an early error, or a tar reader that stops at
 * the end-of-archive blocks). Closing then would make the client's last writes fail with EPIPE,
 * and the client would report a broken pipe instead of the response. So the rest of the body is
 * read and dropped — up to this many bytes, for at most DISCARD_MS — before the connection is
 * closed or kept alive.
 */
const MAX_DISCARD_BYTES = 4 << 20;
const DISCARD_MS = 5_000;

/** Per-socket state; created in the listener's `open` handler and stored in `socket.data`. */
export class Connection {
  private mode: Mode = "head";
  /** Bytes received but not yet consumed by the head parser, body decoder or hijack. */
  private inbuf: Uint8Array = new Uint8Array(0);
  private outbox: Uint8Array[] = [];
  private outboxBytes = 0;
  private drainWaiters: (() => void)[] = [];
  /** After queued output is flushed: nothing, shut down our write side, or close. */
  private endAfterFlush: "none" | "shutdown" | "shut" | "close" = "none";
  private peerEnded = false;
  private exchange: Exchange | undefined;
  private hijack: HijackState | undefined;
  /** While mode is "discard": the finished exchange's body decoder and what happens after it. */
  private discarding: { decoder: BodyDecoder; keepAlive: boolean; left: number; timer: ReturnType<typeof setTimeout> } | undefined;

  constructor(
    private readonly socket: Socket<Connection>,
    private readonly handler: Handler,
    private readonly renderError: ErrorRenderer,
  ) {}

  // ---- socket events -------------------------------------------------------------------------

  onData(chunk: Uint8Array): void {
    if (this.mode === "closed") return;
    if (this.mode === "hijacked") {
      this.hijack!.deliver(chunk);
      return;
    }
    this.inbuf = this.inbuf.length ? concatBytes([this.inbuf, chunk]) : new Uint8Array(chunk);
    this.pump();
  }

  onDrain(): void {
    this.flush();
  }

  onEnd(): void {
    this.peerEnded = true;
    if (this.mode === "hijacked") this.hijack!.ended();
    else if (this.mode === "head" && this.inbuf.length === 0) this.closeNow();
    else if (this.mode === "discard") this.endDiscard(false);
    else this.exchange?.body.fail(invalidArgument("client closed the connection before the body ended"));
  }

  onClose(): void {
    const wasHijacked = this.mode === "hijacked";
    if (this.discarding) clearTimeout(this.discarding.timer);
    this.mode = "closed";
    this.exchange?.markClosed();
    this.exchange?.body.fail(new EngineError("unavailable", "connection closed"));
    if (wasHijacked) this.hijack!.closed();
    for (const w of this.drainWaiters.splice(0)) w();
  }

  // ---- input ---------------------------------------------------------------------------------

  /** Move buffered input forward: parse a head, feed a body, or wait. */
  private pump(): void {
    while (this.mode !== "closed") {
      if (this.mode === "head") {
        const end = findHeadEnd(this.inbuf);
        if (end < 0) {
          if (this.inbuf.length > MAX_HEAD_BYTES) this.failBeforeRequest(431, "request header too large");
          return;
        }
        const headBytes = this.inbuf.subarray(0, end);
        this.inbuf = this.inbuf.subarray(end);
        let head: RequestHead;
        let decoder: BodyDecoder;
        try {
          head = parseHead(headBytes);
          decoder = new BodyDecoder(bodyFraming(head));
        } catch (err) {
          this.failBeforeRequest(400, messageOf(err));
          return;
        }
        this.startExchange(head, decoder);
        continue;
      }
      if (this.mode === "request") {
        const ex = this.exchange!;
        if (!ex.decoder.done && this.inbuf.length > 0) {
          let r: { consumed: number; data: Uint8Array[] };
          try {
            r = ex.decoder.push(this.inbuf);
          } catch (err) {
            ex.body.fail(err); // the handler's error response then closes the connection
            this.inbuf = new Uint8Array(0);
            return;
          }
          this.inbuf = this.inbuf.subarray(r.consumed);
          for (const d of r.data) ex.body.push(d.slice());
          if (ex.decoder.done) ex.body.finish();
          if (ex.body.queued > BODY_HIGH_WATER) this.socket.pause();
        }
        return; // the rest waits for the response to finish (pipelining) or a hijack
      }
      if (this.mode === "discard") {
        const d = this.discarding!;
        if (this.inbuf.length === 0) return;
        let consumed: number;
        try {
          consumed = d.decoder.push(this.inbuf).consumed;
        } catch {
          this.endDiscard(false);
          return;
        }
        this.inbuf = this.inbuf.subarray(consumed);
        d.left -= consumed;
        if (d.decoder.done) this.endDiscard(d.keepAlive && !this.peerEnded);
        else if (d.left < 0) this.endDiscard(false);
        continue;
      }
      return;
    }
  }

  private startExchange(head: RequestHead, decoder: BodyDecoder): void {
    this.mode = "request";
    const ex = new Exchange(this, head, decoder);
    this.exchange = ex;
    if (decoder.done) ex.body.finish();
    void (async () => {
      try {
        await this.handler(ex.request, ex.response);
        if (!ex.response.started) throw new EngineError("internal", "handler returned without a response");
      } catch (err) {
        if (!ex.response.started) {
          const { status, message } = this.renderError(err);
          ex.response.json(status, { message });
        } else if (ex.streamWriter && !ex.streamWriter.closed) {
          ex.streamWriter.end();
        }
      }
    })();
  }

  /** Called by the exchange when a fixed or streamed response has been fully written. */
  finishExchange(ex: Exchange, keepAlive: boolean): void {
    if (this.exchange !== ex || this.mode !== "request") return;
    this.exchange = undefined;
    if (!ex.decoder.done && !this.peerEnded) {
      this.mode = "discard";
      const timer = setTimeout(() => this.endDiscard(false), DISCARD_MS);
      timer.unref?.();
      this.discarding = { decoder: ex.decoder, keepAlive, left: MAX_DISCARD_BYTES, timer };
      this.socket.resume();
      queueMicrotask(() => this.pump());
      return;
    }
    if (!keepAlive || this.peerEnded) {
      this.endAfterFlush = "close";
      this.flush();
      return;
    }
    this.mode = "head";
    this.socket.resume();
    queueMicrotask(() => this.pump());
  }

  /** The unread body is behind us (or given up on): keep the connection alive or close it. */
  private endDiscard(keepAlive: boolean): void {
    if (this.mode !== "discard") return;
    clearTimeout(this.discarding!.timer);
    this.discarding = undefined;
    if (!keepAlive) {
      this.mode = "closed"; // no more input is read; the socket ends once output is flushed
      this.endAfterFlush = "close";
      this.flush();
      return;
    }
    this.mode = "head";
  }

  resumeReading(): void {
    this.socket.resume();
    if (this.mode === "request") this.pump();
  }

  private failBeforeRequest(status: number, message: string): void {
    const body = JSON.stringify({ message }) + "\n";
    this.write(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    this.mode = "closed";
    this.endAfterFlush = "close";
    this.flush();
  }

  // ---- hijack --------------------------------------------------------------------------------

  startHijack(state: HijackState): void {
    this.mode = "hijacked";
    this.hijack = state;
    this.exchange = undefined;
    const rest = this.inbuf;
    this.inbuf = new Uint8Array(0);
    this.socket.resume();
    queueMicrotask(() => {
      if (rest.length) state.deliver(rest.slice());
      if (this.peerEnded) state.ended();
    });
  }

  // ---- output --------------------------------------------------------------------------------

  /** Queue bytes for the socket, writing straight through when nothing is queued. */
  write(data: string | Uint8Array): void {
    if (this.endAfterFlush !== "none") return;
    let bytes = toBytes(data);
    if (this.outbox.length === 0) {
      const n = this.socket.write(bytes);
      if (n >= bytes.length) return;
      bytes = bytes.subarray(Math.max(n, 0));
    }
    this.outbox.push(bytes.slice());
    this.outboxBytes += bytes.length;
  }

  /** Resolves when queued output falls under the high-water mark (or the socket is gone). */
  waitForRoom(): Promise<void> {
    if (this.outboxBytes < OUTPUT_HIGH_WATER || this.mode === "closed") return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Shut down the write side once output is flushed. */
  shutdownAfterFlush(): void {
    if (this.endAfterFlush === "none") this.endAfterFlush = "shutdown";
    this.flush();
  }

  /** Close once output is flushed. */
  closeAfterFlush(): void {
    this.endAfterFlush = "close";
    this.flush();
  }

  private flush(): void {
    while (this.outbox.length > 0) {
      const first = this.outbox[0]!;
      const n = this.socket.write(first);
      if (n < 0) {
        this.outbox = [];
        this.outboxBytes = 0;
        break;
      }
      this.outboxBytes -= Math.max(n, 0);
      if (n < first.length) {
        this.outbox[0] = first.subarray(n);
        return;
      }
      this.outbox.shift();
    }
    if (this.outboxBytes < OUTPUT_HIGH_WATER) for (const w of this.drainWaiters.splice(0)) w();
    if (this.outbox.length > 0) return;
    if (this.endAfterFlush === "shutdown") {
      this.endAfterFlush = "shut"; // later writes are dropped
      this.socket.shutdown();
    } else if (this.endAfterFlush === "close") {
      this.closeNow();
    }
  }

  private closeNow(): void {
    if (this.mode !== "closed") this.mode = "closed";
    this.socket.end();
  }
}
