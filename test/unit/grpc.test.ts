/**
 * The gRPC layer (src/core/grpc) against an independent implementation, @grpc/grpc-js: its client
 * calls our server (unary, server streaming, bidi, errors, unknown methods, oversized messages)
 * and our client calls its server, over a Unix socket with HTTP/2 prior knowledge.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage } from "@bufbuild/protobuf";
import { GrpcServer } from "../../src/core/grpc/server.ts";
import { GrpcClient } from "../../src/core/grpc/client.ts";
import { Code, GrpcError } from "../../src/core/grpc/status.ts";
import type { RawStream } from "../../src/core/grpc/raw-duplex.ts";
import { Health, HealthCheckRequestSchema, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus } from "../../src/core/buildkit/gen/buildkit/health_pb.ts";
import { FileSend, BytesMessageSchema } from "../../src/core/buildkit/gen/buildkit/session_pb.ts";
import { Control, StatusRequestSchema, StatusResponseSchema } from "../../src/core/buildkit/gen/buildkit/control_pb.ts";

const dir = mkdtempSync(join(tmpdir(), "grpc-test-"));
const sock = join(dir, "s.sock");

/** A Bun listener whose sockets become RawStreams handed to `onConn`. */
function rawListener(path: string, onConn: (raw: RawStream) => void) {
  type D = { data: ((c: Uint8Array) => void)[]; end: (() => void)[]; close: (() => void)[] };
  return Bun.listen<D>({
    unix: path,
    socket: {
      open(s) {
        s.data = { data: [], end: [], close: [] };
        const d = s.data;
        onConn({
          write: async (c) => void s.write(c),
          close: () => s.end(),
          onData: (cb) => d.data.push(cb),
          onEnd: (cb) => d.end.push(cb),
          onClose: (cb) => d.close.push(cb),
        });
      },
      data(s, c) {
        for (const cb of s.data.data) cb(new Uint8Array(c));
      },
      end(s) {
        for (const cb of s.data.end) cb();
      },
      close(s) {
        for (const cb of s.data.close) cb();
      },
    },
  });
}

const codec = (schema: DescMessage) => ({
  serialize: (v: unknown) => Buffer.from(toBinary(schema, create(schema, v as never))),
  deserialize: (b: Buffer) => fromBinary(schema, new Uint8Array(b)),
});

let listener: ReturnType<typeof rawListener>;
let seenMetadata = "";
beforeAll(() => {
  const server = new GrpcServer()
    .add(Health, {
      async check(req, ctx) {
        seenMetadata = String(ctx.metadata["x-test"] ?? "");
        if (req.service === "boom") throw new GrpcError(Code.NOT_FOUND, "no such service: boom ✗");
        return { status: HealthCheckResponse_ServingStatus.SERVING };
      },
    })
    .add(Control, {
      async status(req, send) {
        for (let i = 0; i < 50; i++) await send({ logs: [{ vertex: req.Ref, msg: new TextEncoder().encode(`line ${i}\n`) }] });
      },
    })
    .add(FileSend, {
      async diffCopy(reqs, send) {
        for await (const r of reqs) await send({ data: new Uint8Array([...r.data].reverse()) });
      },
    });
  listener = rawListener(sock, (raw) => void server.serve(raw));
});
afterAll(() => {
  listener.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

const Generic = grpc.makeGenericClientConstructor(
  {
    check: { path: "/grpc.health.v1.Health/Check", requestStream: false, responseStream: false, requestSerialize: codec(HealthCheckRequestSchema).serialize, requestDeserialize: codec(HealthCheckRequestSchema).deserialize, responseSerialize: codec(HealthCheckResponseSchema).serialize, responseDeserialize: codec(HealthCheckResponseSchema).deserialize },
    status: { path: "/moby.buildkit.v1.Control/Status", requestStream: false, responseStream: true, requestSerialize: codec(StatusRequestSchema).serialize, requestDeserialize: codec(StatusRequestSchema).deserialize, responseSerialize: codec(StatusResponseSchema).serialize, responseDeserialize: codec(StatusResponseSchema).deserialize },
    copy: { path: "/moby.filesync.v1.FileSend/DiffCopy", requestStream: true, responseStream: true, requestSerialize: codec(BytesMessageSchema).serialize, requestDeserialize: codec(BytesMessageSchema).deserialize, responseSerialize: codec(BytesMessageSchema).serialize, responseDeserialize: codec(BytesMessageSchema).deserialize },
    missing: { path: "/moby.buildkit.v1.Control/Info", requestStream: false, responseStream: false, requestSerialize: codec(HealthCheckRequestSchema).serialize, requestDeserialize: codec(HealthCheckRequestSchema).deserialize, responseSerialize: codec(HealthCheckResponseSchema).serialize, responseDeserialize: codec(HealthCheckResponseSchema).deserialize },
  },
  "Test",
);
// biome-ignore lint: grpc-js's generic client is untyped
type AnyClient = any;
const client = (opts: Record<string, unknown> = {}): AnyClient => new Generic(`unix:${sock}`, grpc.credentials.createInsecure(), opts);

describe("our gRPC server, called by @grpc/grpc-js", () => {
  test("a unary call carries metadata in and the response out", async () => {
    const md = new grpc.Metadata();
    md.set("x-test", "hello");
    const res = await new Promise<{ status: number }>((ok, bad) => client().check({ service: "" }, md, (e: Error | null, r: { status: number }) => (e ? bad(e) : ok(r))));
    expect(res.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect(seenMetadata).toBe("hello");
  });
  test("a handler's GrpcError reaches the client as its code and message", async () => {
    const err = await new Promise<grpc.ServiceError>((ok) => client().check({ service: "boom" }, (e: grpc.ServiceError) => ok(e)));
    expect(err.code).toBe(Code.NOT_FOUND);
    expect(err.details).toBe("no such service: boom ✗");
  });
  test("an unregistered method answers UNIMPLEMENTED", async () => {
    const err = await new Promise<grpc.ServiceError>((ok) => client().missing({}, (e: grpc.ServiceError) => ok(e)));
    expect(err.code).toBe(Code.UNIMPLEMENTED);
  });
  test("a server stream delivers every message, then OK", async () => {
    const lines: string[] = [];
    await new Promise<void>((ok, bad) => {
      const call = client().status({ Ref: "r1" });
      call.on("data", (r: { logs: { msg: Uint8Array }[] }) => lines.push(new TextDecoder().decode(r.logs[0]!.msg)));
      call.on("error", bad);
      call.on("end", ok);
    });
    expect(lines.length).toBe(50);
    expect(lines[49]).toBe("line 49\n");
  });
  test("a bidi stream echoes in order, with a 1 MiB message", async () => {
    const big = new Uint8Array(1 << 20).map((_, i) => i % 251);
    const got: Uint8Array[] = [];
    await new Promise<void>((ok, bad) => {
      const call = client().copy();
      call.on("data", (r: { data: Uint8Array }) => got.push(r.data));
      call.on("error", bad);
      call.on("end", ok);
      call.write({ data: new Uint8Array([1, 2, 3]) });
      call.write({ data: big });
      call.end();
    });
    expect([...got[0]!]).toEqual([3, 2, 1]);
    expect(got[1]!.length).toBe(big.length);
    expect(got[1]![0]).toBe(big[big.length - 1]!);
  });
});

describe("bad input to our server", () => {
  test("a message over the limit is refused with RESOURCE_EXHAUSTED, and the server keeps serving", async () => {
    const err = await new Promise<grpc.ServiceError>((ok) => {
      const call = client().copy();
      call.on("error", ok);
      call.on("data", () => {});
      call.write({ data: new Uint8Array(17 * 1024 * 1024) });
      call.end();
    });
    expect(err.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(err.details).toContain("larger than max");
    const res = await new Promise<{ status: number }>((ok, bad) => client().check({ service: "" }, (e: Error | null, r: { status: number }) => (e ? bad(e) : ok(r))));
    expect(res.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });
  test("a cut-off message is an error, not a hang", async () => {
    const { MessageReader } = await import("../../src/core/grpc/framing.ts");
    const r = new MessageReader(64);
    expect(r.push(new Uint8Array([0, 0, 0, 0, 3, 1]))).toEqual([]);
    expect(r.partial).toBe(true);
    expect(() => r.push(new Uint8Array([0, 0, 0, 1, 0]))).not.toThrow();
    expect(() => new MessageReader(64).push(new Uint8Array([0, 0, 0, 1, 0]))).toThrow("larger than max");
    expect(() => new MessageReader(64).push(new Uint8Array([1, 0, 0, 0, 0]))).toThrow("compressed");
  });
});

describe("our gRPC client, calling a @grpc/grpc-js server", () => {
  const peerSock = join(dir, "peer.sock");
  let peer: grpc.Server;
  beforeAll(async () => {
    peer = new grpc.Server();
    peer.addService(
      {
        check: { path: "/grpc.health.v1.Health/Check", requestStream: false, responseStream: false, ...pair(HealthCheckRequestSchema, HealthCheckResponseSchema) },
        copy: { path: "/moby.filesync.v1.FileSend/DiffCopy", requestStream: true, responseStream: true, ...pair(BytesMessageSchema, BytesMessageSchema) },
      } as never,
      {
        check: (call: AnyClient, cb: AnyClient) => (call.request.service === "down" ? cb({ code: Code.UNAVAILABLE, details: "going down" }) : cb(null, { status: HealthCheckResponse_ServingStatus.SERVING, md: call.metadata.get("dir-name") })),
        copy: (call: AnyClient) => {
          call.on("data", (m: { data: Uint8Array }) => call.write({ data: m.data }));
          call.on("end", () => call.end());
        },
      },
    );
    await new Promise<void>((ok, bad) => peer.bindAsync(`unix:${peerSock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? bad(e) : ok())));
  });
  afterAll(() => peer.forceShutdown());

  async function connect(): Promise<GrpcClient> {
    const { connect } = await import("node:net");
    const s = connect(peerSock);
    await new Promise((r) => s.once("connect", r));
    return GrpcClient.connect({
      write: (c) => new Promise((ok) => s.write(c, () => ok())),
      close: () => s.destroy(),
      onData: (cb) => s.on("data", (c) => cb(new Uint8Array(c as Buffer))),
      onEnd: (cb) => s.on("end", cb),
      onClose: (cb) => s.on("close", cb),
    });
  }

  test("unary OK and a status error", async () => {
    const c = await connect();
    const r = await c.unary(Health.method.check, { service: "" }, { "dir-name": "context" });
    expect(r.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    const err = await c.unary(Health.method.check, { service: "down" }).catch((e) => e);
    expect(err).toBeInstanceOf(GrpcError);
    expect(err.code).toBe(Code.UNAVAILABLE);
    expect(err.message).toBe("going down");
    c.close();
  });
  test("a bidi call streams both ways", async () => {
    const c = await connect();
    const call = c.open(FileSend.method.diffCopy);
    for (let i = 0; i < 20; i++) await call.send({ data: new Uint8Array([i]) });
    call.end();
    const got: number[] = [];
    for await (const m of call.responses) got.push(m.data[0]!);
    expect(got).toEqual([...Array(20).keys()]);
    c.close();
  });
});

function pair(req: DescMessage, res: DescMessage) {
  const a = codec(req);
  const b = codec(res);
  return { requestSerialize: a.serialize, requestDeserialize: a.deserialize, responseSerialize: b.serialize, responseDeserialize: b.deserialize };
}
