/**
 * gRPC's length-prefixed messages: a one-byte compressed flag, a four-byte big-endian length,
 * then the message. The reader reassembles them from HTTP/2 DATA chunks of any size.
 */
import { Code, GrpcError } from "./status.ts";

/** The largest message accepted (gRPC's default receive limit is 4 MiB; BuildKit raises it). */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** One message with its five-byte prefix (never compressed). */
export function frameMessage(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

/** Reassembles messages from a byte stream; throws GrpcError on a compressed or oversized one. */
export class MessageReader {
  private buf: Uint8Array = new Uint8Array(0);

  constructor(private readonly limit = MAX_MESSAGE_BYTES) {}

  /** Add received bytes; returns the messages they complete. */
  push(chunk: Uint8Array): Uint8Array[] {
    this.buf = this.buf.length ? concat(this.buf, chunk) : chunk;
    const out: Uint8Array[] = [];
    while (this.buf.length >= 5) {
      const flag = this.buf[0]!;
      const len = new DataView(this.buf.buffer, this.buf.byteOffset, 5).getUint32(1);
      if (flag !== 0) throw new GrpcError(Code.UNIMPLEMENTED, "compressed gRPC messages are not supported (no grpc-encoding was offered)");
      if (len > this.limit) throw new GrpcError(Code.RESOURCE_EXHAUSTED, `received message larger than max (${len} vs. ${this.limit})`);
      if (this.buf.length < 5 + len) break;
      out.push(this.buf.slice(5, 5 + len));
      this.buf = this.buf.subarray(5 + len);
    }
    return out;
  }

  /** Whether a message was cut off (bytes left over at the end of the stream). */
  get partial(): boolean {
    return this.buf.length > 0;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
