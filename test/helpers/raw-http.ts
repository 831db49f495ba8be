/**
 * A raw socket client for HTTP tests: write exact bytes, read exactly what the server sends,
 * shut down the write side on demand (half-close).
 */
import type { Socket } from "bun";

/** A connected raw client. */
export interface RawClient {
  write(data: string | Uint8Array): void;
  /** shutdown(SHUT_WR): the server sees EOF, we keep reading. */
  halfClose(): void;
  close(): void;
  /** Resolves with all received text once `pred` holds (or rejects after `ms`). */
  waitFor(pred: (text: string) => boolean, ms?: number): Promise<string>;
  /** Resolves when the server closes the connection, with all received text. */
  closed: Promise<string>;
  text(): string;
  /** Timestamps (ms) of each received chunk, for flush-timing checks. */
  arrivals: { at: number; text: string }[];
}

/** Connect to a Unix socket. */
export async function rawConnect(path: string): Promise<RawClient> {
  let received = "";
  const arrivals: { at: number; text: string }[] = [];
  const waiters: (() => void)[] = [];
  let resolveClosed!: (t: string) => void;
  const closed = new Promise<string>((r) => (resolveClosed = r));
  const dec = new TextDecoder();
  const socket: Socket<undefined> = await Bun.connect({
    unix: path,
    allowHalfOpen: true,
    socket: {
      data(_s, d) {
        const t = dec.decode(d, { stream: true });
        received += t;
        arrivals.push({ at: performance.now(), text: t });
        for (const w of waiters.splice(0)) w();
      },
      close() {
        resolveClosed(received);
        for (const w of waiters.splice(0)) w();
      },
      end() {
        resolveClosed(received);
        for (const w of waiters.splice(0)) w();
      },
    },
  });
  return {
    write: (d) => void socket.write(d),
    halfClose: () => socket.shutdown(),
    close: () => socket.end(),
    closed,
    text: () => received,
    arrivals,
    async waitFor(pred, ms = 3000) {
      const deadline = Date.now() + ms;
      while (!pred(received)) {
        if (Date.now() > deadline) throw new Error(`timed out; received so far:\n${received}`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), Bun.sleep(50)]);
      }
      return received;
    },
  };
}

/** Send one request with `Connection: close` and return the whole response. */
export async function rawRequest(path: string, request: string): Promise<string> {
  const c = await rawConnect(path);
  c.write(request);
  return c.closed;
}

/** Split a response into status, headers (lower-cased names) and body. */
export function parseResponse(text: string): { status: number; headers: Map<string, string>; body: string } {
  const i = text.indexOf("\r\n\r\n");
  const head = text.slice(0, i).split("\r\n");
  const status = Number(head[0]!.split(" ")[1]);
  const headers = new Map<string, string>();
  for (const l of head.slice(1)) {
    const c = l.indexOf(":");
    headers.set(l.slice(0, c).toLowerCase(), l.slice(c + 1).trim());
  }
  let body = text.slice(i + 4);
  if (headers.get("transfer-encoding") === "chunked") body = dechunk(body);
  return { status, headers, body };
}

function dechunk(s: string): string {
  let out = "";
  let rest = s;
  for (;;) {
    const nl = rest.indexOf("\r\n");
    if (nl < 0) return out;
    const size = parseInt(rest.slice(0, nl), 16);
    if (!size) return out;
    out += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 2 + size + 2);
  }
}
