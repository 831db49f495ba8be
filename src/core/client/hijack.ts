/**
 * The client side of a hijacked connection (attach, exec start): an HTTP/1.1 request with
 * `Connection: Upgrade` / `Upgrade: tcp`, a `101 UPGRADED` answer, then raw bytes both ways, with
 * half-close (our end of input shuts down the write side only). Unix sockets and plain TCP.
 */
import { ignored } from "../log.ts";
import { EngineError } from "../errors.ts";
import { DaemonError, type Endpoint } from "./engine-client.ts";

/** A hijacked stream. */
export interface Hijacked {
  /** Output from the daemon, until it closes. */
  output: AsyncIterable<Uint8Array>;
  write(data: Uint8Array | string): void;
  /** Shut down our write side (the container's stdin ends, with StdinOnce). */
  closeWrite(): void;
  close(): void;
}

/** Open `method path` with `body` (JSON) and take over the connection. */
export async function hijack(endpoint: Endpoint, method: string, path: string, body?: unknown): Promise<Hijacked> {
  const queue: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let head = new Uint8Array(0);
  let headDone: ((status: number, rest: Uint8Array, text: string) => void) | undefined;
  const headPromise = new Promise<{ status: number; rest: Uint8Array; text: string }>((resolve) => (headDone = (status, rest, text) => resolve({ status, rest, text })));
  const push = (b: Uint8Array) => {
    queue.push(b);
    wake?.();
  };
  const handlers = {
    data(_s: unknown, chunk: Uint8Array) {
      if (headDone) {
        const all = new Uint8Array(head.length + chunk.length);
        all.set(head);
        all.set(chunk, head.length);
        head = all;
        const end = findHeadEnd(head);
        if (end < 0) return;
        const text = new TextDecoder().decode(head.subarray(0, end));
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
        const done = headDone;
        headDone = undefined;
        done(status, head.subarray(end + 4), text);
        return;
      }
      push(chunk);
    },
    end() {
      ended = true;
      wake?.();
    },
    close() {
      ended = true;
      wake?.();
    },
    error() {
      ended = true;
      wake?.();
    },
  };
  const unix = endpoint.fetchInit.unix;
  let socket: Awaited<ReturnType<typeof Bun.connect>>;
  try {
    if (unix) socket = await Bun.connect({ unix, socket: handlers, allowHalfOpen: true } as unknown as Parameters<typeof Bun.connect>[0]);
    else {
      const u = new URL(endpoint.base);
      socket = await Bun.connect({ hostname: u.hostname, port: Number(u.port || 2375), socket: handlers, allowHalfOpen: true } as unknown as Parameters<typeof Bun.connect>[0]);
    }
  } catch (err) {
    throw new EngineError("unavailable", `Cannot connect to the Bunker daemon at ${endpoint.host}. Is the bunker daemon running?`, { cause: err });
  }
  const payload = body === undefined ? "" : JSON.stringify(body);
  socket.write(
    `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n` + (body === undefined ? "" : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n`) + `\r\n${payload}`,
  );
  const { status, rest, text } = await headPromise;
  if (status !== 101 && status !== 200) {
    const bodyText = new TextDecoder().decode(rest);
    let message = bodyText.trim();
    try {
      message = (JSON.parse(bodyText) as { message: string }).message;
    } catch (err) {
      ignored("plain", err);
    }
    socket.end();
    throw new DaemonError(status, message || text.split("\r\n")[0]!);
  }
  if (rest.length) push(rest);
  return {
    output: {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          while (queue.length) yield queue.shift()!;
          if (ended) return;
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
      },
    },
    write: (d) => void socket.write(d),
    closeWrite: () => socket.shutdown(),
    close: () => socket.end(),
  };
}

function findHeadEnd(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  return -1;
}

/** Split a multiplexed stream into its frames: calls `out(stream, payload)`. */
export function demux(out: (stream: number, payload: Uint8Array) => void): (chunk: Uint8Array) => void {
  let buf = new Uint8Array(0);
  return (chunk) => {
    const all = new Uint8Array(buf.length + chunk.length);
    all.set(buf);
    all.set(chunk, buf.length);
    let off = 0;
    while (all.length - off >= 8) {
      const len = new DataView(all.buffer, all.byteOffset + off).getUint32(4, false);
      if (all.length - off < 8 + len) break;
      out(all[off]!, all.subarray(off + 8, off + 8 + len));
      off += 8 + len;
    }
    buf = all.slice(off);
  };
}
