/**
 * A gRPC client over HTTP/2 with prior knowledge on a raw connection: the daemon's side of a
 * BuildKit session (`/session`), where the build client serves and the daemon calls.
 */
import type { ClientHttp2Session, ClientHttp2Stream, OutgoingHttpHeaders } from "node:http2";
import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { frameMessage, MessageReader } from "./framing.ts";
import { AsyncQueue } from "./queue.ts";
import { rawDuplex, type RawStream } from "./raw-duplex.ts";
import { Code, decodeGrpcMessage, GrpcError } from "./status.ts";

/** gRPC metadata sent with a call: a name and one or more values. */
export type Metadata = Record<string, string | string[]>;

/** An open call: send requests, read responses; `done` settles with the call's status. */
export interface ClientCall<M extends DescMethod> {
  send(message: MessageInitShape<M["input"]>): Promise<void>;
  /** No more requests (half-close). */
  end(): void;
  /** The responses; throws GrpcError when the call fails. */
  readonly responses: AsyncIterable<MessageShape<M["output"]>>;
  /** Reset the stream (CANCEL). */
  cancel(): void;
}

/** A client connection. */
export class GrpcClient {
  private constructor(private readonly session: ClientHttp2Session) {}

  /** Start HTTP/2 on `raw` (we send the connection preface). */
  static async connect(raw: RawStream): Promise<GrpcClient> {
    const http2 = await import("node:http2");
    const duplex = rawDuplex(raw);
    const session = http2.connect("http://buildkit-session", { createConnection: () => duplex as never });
    session.on("error", () => {});
    return new GrpcClient(session);
  }

  /** Whether the connection is gone. */
  get closed(): boolean {
    return this.session.closed || this.session.destroyed;
  }

  /** Register a callback for the connection's end. */
  onClose(cb: () => void): void {
    if (this.closed) queueMicrotask(cb);
    else this.session.once("close", cb);
  }

  close(): void {
    this.session.destroy();
  }

  /** Open a call of any kind. */
  open<M extends DescMethod>(method: M, metadata: Metadata = {}): ClientCall<M> {
    if (this.closed) throw new GrpcError(Code.UNAVAILABLE, "the session connection is closed");
    const headers: OutgoingHttpHeaders = { ":method": "POST", ":path": `/${method.parent.typeName}/${method.name}`, "content-type": "application/grpc", te: "trailers", ...metadata };
    const stream: ClientHttp2Stream = this.session.request(headers);
    const responses = new AsyncQueue<MessageShape<M["output"]>>();
    const reader = new MessageReader();
    let status: { code: number; message: string } | undefined;
    const takeStatus = (h: Record<string, unknown>) => {
      if (h["grpc-status"] !== undefined) status = { code: Number(h["grpc-status"]), message: decodeGrpcMessage(String(h["grpc-message"] ?? "")) };
    };
    stream.on("response", (h) => {
      const httpStatus = Number(h[":status"]);
      if (httpStatus !== 200) status = { code: httpStatus === 404 || httpStatus === 501 ? Code.UNIMPLEMENTED : Code.UNKNOWN, message: `unexpected HTTP status code received from server: ${httpStatus}` };
      takeStatus(h as Record<string, unknown>);
    });
    stream.on("trailers", (h) => takeStatus(h as Record<string, unknown>));
    stream.on("data", (chunk: Uint8Array) => {
      try {
        for (const msg of reader.push(chunk)) responses.push(fromBinary(method.output as DescMessage, msg) as MessageShape<M["output"]>);
      } catch (err) {
        responses.fail(err);
        stream.close();
      }
    });
    stream.on("error", (err) => responses.fail(new GrpcError(Code.UNAVAILABLE, err.message)));
    stream.on("close", () => {
      if (!status) return responses.fail(new GrpcError(Code.UNAVAILABLE, "the call ended without a status (connection lost)"));
      if (status.code !== Code.OK) return responses.fail(new GrpcError(status.code, status.message));
      responses.end();
    });
    return {
      send: async (message) => {
        if (!stream.write(frameMessage(toBinary(method.input as DescMessage, create(method.input as DescMessage, message as never))))) await new Promise<void>((r) => stream.once("drain", r));
      },
      end: () => stream.end(),
      responses,
      cancel: () => stream.close(8),
    };
  }

  /** A unary call. */
  async unary<M extends DescMethod>(method: M, request: MessageInitShape<M["input"]>, metadata: Metadata = {}): Promise<MessageShape<M["output"]>> {
    const call = this.open(method, metadata);
    await call.send(request);
    call.end();
    let out: MessageShape<M["output"]> | undefined;
    for await (const r of call.responses) out ??= r;
    if (!out) throw new GrpcError(Code.INTERNAL, `${method.name}: no response message`);
    return out;
  }
}
