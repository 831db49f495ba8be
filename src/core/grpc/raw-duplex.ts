/**
 * A node Duplex over a raw byte stream (a hijacked HTTP/1.1 connection after `101`), so that
 * `node:http2` can speak HTTP/2 with prior knowledge on it, as server or as client.
 */
import { Duplex } from "node:stream";

/** The raw connection: what a hijacked API connection offers. */
export interface RawStream {
  write(chunk: Uint8Array): Promise<void>;
  close(): void;
  onData(cb: (chunk: Uint8Array) => void): void;
  onEnd(cb: () => void): void;
  onClose(cb: () => void): void;
}

/** Wrap `raw` as a Duplex; destroying the Duplex closes the connection. */
export function rawDuplex(raw: RawStream): Duplex {
  let closed = false;
  const duplex = new Duplex({
    read() {},
    write(chunk: Uint8Array, _enc, cb) {
      if (closed) return cb(new Error("connection closed"));
      raw.write(chunk).then(() => cb(), cb);
    },
    final(cb) {
      closed = true;
      raw.close();
      cb();
    },
    destroy(err, cb) {
      closed = true;
      raw.close();
      cb(err);
    },
  });
  raw.onData((c) => duplex.push(c));
  raw.onEnd(() => duplex.push(null));
  raw.onClose(() => {
    closed = true;
    if (!duplex.destroyed) duplex.destroy();
  });
  return duplex;
}
