/**
 * A gRPC server over HTTP/2 with prior knowledge on a raw connection (the daemon's `/grpc`
 * after `101`): services registered from their generated descriptors, requests dispatched by
 * path, messages length-prefixed, the outcome in `grpc-status`/`grpc-message` trailers.
 * HTTP/2 itself (frames, HPACK, flow control) is Bun's `node:http2`, driven over the hijacked
 * socket by {@link rawDuplex}; the README says why it was kept.
 */
import type { ServerHttp2Stream, IncomingHttpHeaders } from "node:http2";
import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { frameMessage, MessageReader } from "./framing.ts";
import { AsyncQueue } from "./queue.ts";
import { rawDuplex, type RawStream } from "./raw-duplex.ts";
import { Code, encodeGrpcMessage, GrpcError } from "./status.ts";

/** What a handler knows about its call. */
export interface CallContext {
  /** The request headers (lower-case names), gRPC metadata among them. */
  readonly metadata: IncomingHttpHeaders;
  /** Aborted when the client cancels or the connection goes away. */
  readonly signal: AbortSignal;
}

type In<M extends DescMethod> = MessageShape<M["input"]>;

/** One service's implementation: each method by its generated name, shaped by its kind. */
export type ServiceImpl<S extends GenServiceMethods> = {
  [K in keyof S]?: S[K]["methodKind"] extends "unary"
    ? (req: MessageShape<S[K]["input"]>, ctx: CallContext) => Promise<MessageInitShape<S[K]["output"]>>
    : S[K]["methodKind"] extends "server_streaming"
      ? (req: MessageShape<S[K]["input"]>, send: (m: MessageInitShape<S[K]["output"]>) => Promise<void>, ctx: CallContext) => Promise<void>
      : (reqs: AsyncIterable<MessageShape<S[K]["input"]>>, send: (m: MessageInitShape<S[K]["output"]>) => Promise<void>, ctx: CallContext) => Promise<void>;
};

type AnyImpl = (...args: never[]) => Promise<unknown>;
interface Route {
  method: DescMethod;
  impl: AnyImpl;
}

/** gRPC services served over raw connections. */
export class GrpcServer {
  private routes = new Map<string, Route>();
  private services = new Set<string>();
  private h2: import("node:http2").Http2Server | undefined;

  /** Register `impl` for `service`; methods it leaves out answer UNIMPLEMENTED. */
  add<S extends GenServiceMethods>(service: GenService<S>, impl: ServiceImpl<S>): this {
    const desc = service as unknown as DescService;
    this.services.add(desc.typeName);
    for (const m of desc.methods) {
      const fn = (impl as Record<string, AnyImpl | undefined>)[m.localName];
      if (fn) this.routes.set(`/${desc.typeName}/${m.name}`, { method: m, impl: fn.bind(impl) });
    }
    return this;
  }

  /** Speak HTTP/2 on `raw` until it closes. */
  async serve(raw: RawStream): Promise<void> {
    const http2 = await import("node:http2");
    if (!this.h2) {
      this.h2 = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
      this.h2.on("stream", (stream, headers) => void this.dispatch(stream as ServerHttp2Stream, headers));
      this.h2.on("sessionError", () => {});
    }
    this.h2.emit("connection", rawDuplex(raw));
  }

  private async dispatch(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    const path = headers[":path"] ?? "";
    const route = this.routes.get(path);
    stream.on("error", () => {});
    if (!String(headers["content-type"] ?? "").startsWith("application/grpc")) {
      stream.respond({ ":status": 415 }, { endStream: true });
      return;
    }
    if (!route) {
      const service = path.split("/")[1] ?? "";
      const msg = this.services.has(service) ? `unknown method ${path.split("/")[2]} for service ${service}` : `unknown service ${service}`;
      return trailersOnly(stream, Code.UNIMPLEMENTED, msg);
    }
    const ac = new AbortController();
    stream.on("close", () => ac.abort());
    const ctx: CallContext = { metadata: headers, signal: ac.signal };
    const m = route.method;
    const input = new AsyncQueue<In<typeof m>>();
    const reader = new MessageReader();
    stream.on("data", (chunk: Uint8Array) => {
      try {
        for (const msg of reader.push(chunk)) input.push(fromBinary(m.input, msg));
      } catch (err) {
        input.fail(err instanceof GrpcError ? err : new GrpcError(Code.INTERNAL, `grpc: failed to unmarshal the received message: ${(err as Error).message}`));
      }
    });
    stream.on("end", () => (reader.partial ? input.fail(new GrpcError(Code.INTERNAL, "grpc: received a truncated message")) : input.end()));
    stream.on("aborted", () => input.fail(new GrpcError(Code.CANCELLED, "the client cancelled the call")));
    let started = false;
    const start = () => {
      if (started) return;
      started = true;
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    };
    const send = async (out: MessageInitShape<DescMessage>) => {
      if (stream.closed || stream.destroyed) throw new GrpcError(Code.CANCELLED, "the call is gone");
      start();
      if (!stream.write(frameMessage(toBinary(m.output, create(m.output, out))))) await new Promise<void>((r) => stream.once("drain", r));
    };
    try {
      if (m.methodKind === "unary" || m.methodKind === "server_streaming") {
        const req = await firstMessage(input);
        if (m.methodKind === "unary") await send((await route.impl(req as never, ctx as never)) as MessageInitShape<DescMessage>);
        else await route.impl(req as never, send as never, ctx as never);
      } else {
        await route.impl(input as never, send as never, ctx as never);
      }
      finish(stream, started, Code.OK, "");
    } catch (err) {
      const code = err instanceof GrpcError ? err.code : Code.UNKNOWN;
      finish(stream, started, code, (err as Error)?.message ?? String(err));
    }
  }
}

async function firstMessage<T>(input: AsyncIterable<T>): Promise<T> {
  for await (const m of input) return m;
  throw new GrpcError(Code.INTERNAL, "grpc: the request had no message");
}

function trailersOnly(stream: ServerHttp2Stream, code: number, message: string): void {
  if (stream.closed || stream.destroyed) return;
  stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": String(code), "grpc-message": encodeGrpcMessage(message) }, { endStream: true });
}

function finish(stream: ServerHttp2Stream, started: boolean, code: number, message: string): void {
  if (stream.closed || stream.destroyed) return;
  if (!started) return trailersOnly(stream, code, message);
  stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": String(code), ...(message ? { "grpc-message": encodeGrpcMessage(message) } : {}) }));
  stream.end();
}
