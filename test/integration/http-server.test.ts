/**
 * The HTTP/1.1 server on a real Unix socket: version handling, errors, bodies, keep-alive,
 * streamed responses flushed chunk by chunk, and the hijacked stream with half-close.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createApiHandler } from "../../src/core/api/api-handler.ts";
import { renderError } from "../../src/core/api/error-status.ts";
import { listen, type Listener } from "../../src/core/api/http/server.ts";
import { Router } from "../../src/core/api/router.ts";
import { cleanup, tempDir } from "../helpers/daemon.ts";
import { parseResponse, rawConnect, rawRequest } from "../helpers/raw-http.ts";

let dir: string;
let sock: string;
let listener: Listener;
const writes: number[] = [];

beforeAll(async () => {
  dir = tempDir();
  sock = join(dir, "api.sock");
  const router = new Router().add(
    { method: "GET", path: "/_ping", handler: ({ res }) => res.send(200, "OK", "text/plain; charset=utf-8") },
    { method: "GET", path: "/version", handler: ({ res, apiVersion }) => res.json(200, { asked: apiVersion }) },
    {
      method: "POST",
      path: "/echo",
      handler: async ({ req, res }) => res.json(200, { got: await req.json(1024) }),
    },
    {
      method: "POST",
      path: "/count",
      handler: async ({ req, res }) => {
        let n = 0;
        for await (const c of req.stream()) n += c.length;
        res.json(200, { bytes: n });
      },
    },
    {
      method: "POST",
      path: "/early",
      handler: async ({ req, res }) => {
        // Reads only the first chunk, as a tar reader stopping at its end-of-archive blocks does.
        for await (const _ of req.stream()) break;
        res.json(400, { message: "answered early" });
      },
    },
    {
      method: "GET",
      path: "/images/{name:.*}/json",
      handler: ({ res, params }) => res.json(200, { name: params.name }),
    },
    {
      method: "GET",
      path: "/slow-stream",
      handler: async ({ res }) => {
        const w = res.stream(200, "application/json");
        for (let i = 0; i < 3; i++) {
          writes.push(performance.now());
          await w.write(JSON.stringify({ i }) + "\n");
          await Bun.sleep(150);
        }
        w.end();
      },
    },
    {
      method: "POST",
      path: "/hijack",
      handler: ({ res }) => {
        const h = res.hijack("application/vnd.docker.raw-stream");
        h.onData((c) => void h.write(new TextDecoder().decode(c).toUpperCase()));
        h.onEnd(() => {
          // The client closed its write side; we can still write, then close.
          setTimeout(() => {
            void h.write("BYE AFTER HALF-CLOSE\n");
            h.close();
          }, 50);
        });
      },
    },
  );
  listener = await listen({ kind: "unix", path: sock }, createApiHandler(router), renderError);
});

afterAll(() => {
  listener.close();
  cleanup(dir);
});

const get = (path: string, extra = "") => rawRequest(sock, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${extra}\r\n`);

describe("versions", () => {
  test("bare and versioned paths give the same answer", async () => {
    const bare = parseResponse(await get("/_ping"));
    const v = parseResponse(await get("/v1.51/_ping"));
    const old = parseResponse(await get("/v1.24/_ping"));
    expect([bare.status, v.status, old.status]).toEqual([200, 200, 200]);
    expect(bare.body).toBe("OK");
    expect(v.body).toBe(bare.body);
    expect(parseResponse(await get("/v1.40/version")).body).toBe('{"asked":"1.40"}\n');
  });

  test("every response carries Api-Version, Ostype and Server", async () => {
    for (const path of ["/_ping", "/nope", "/v1.2/_ping"]) {
      const r = parseResponse(await get(path));
      expect(r.headers.get("api-version")).toBe("1.51");
      expect(r.headers.get("ostype")).toBe("linux");
      expect(r.headers.get("server")).toMatch(/^Bunker\/\d+\.\d+\.\d+ \(linux\)$/);
    }
  });

  test("too old and too new versions get 400 with moby's wording", async () => {
    const old = parseResponse(await get("/v1.23/_ping"));
    expect(old.status).toBe(400);
    expect(JSON.parse(old.body).message).toBe(
      "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version",
    );
    const neu = parseResponse(await get("/v1.52/version"));
    expect(neu.status).toBe(400);
    expect(JSON.parse(neu.body).message).toBe("client version 1.52 is too new. Maximum supported API version is 1.51");
    expect(neu.headers.get("content-type")).toBe("application/json");
  });
});

describe("errors", () => {
  test("an unknown route is a JSON 404", async () => {
    const r = parseResponse(await get("/no/such/route"));
    expect(r.status).toBe(404);
    expect(r.headers.get("content-type")).toBe("application/json");
    expect(JSON.parse(r.body)).toEqual({ message: "page not found" });
  });

  test("malformed JSON gets 400 with a message", async () => {
    const body = '{"a": ';
    const r = parseResponse(await rawRequest(sock, `POST /echo HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`));
    expect(r.status).toBe(400);
    expect(r.headers.get("content-type")).toBe("application/json");
    expect(JSON.parse(r.body).message).toContain("invalid JSON");
  });

  test("a body over the limit gets 413", async () => {
    const body = JSON.stringify({ big: "x".repeat(2000) });
    const r = parseResponse(await rawRequest(sock, `POST /echo HTTP/1.1\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`));
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body).message).toContain("exceeds the limit");
  });

  test("a malformed request line gets 400 and the connection closes", async () => {
    const r = parseResponse(await rawRequest(sock, "NONSENSE\r\n\r\n"));
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).message).toContain("malformed request line");
  });
});

describe("bodies and connections", () => {
  test("chunked request bodies are decoded", async () => {
    const r = parseResponse(
      await rawRequest(sock, 'POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\n{"a"\r\n4\r\n: 1}\r\n0\r\n\r\n'),
    );
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ got: { a: 1 } });
  });

  test("a streamed body of 5 MB arrives whole", async () => {
    const size = 5 * 1024 * 1024;
    const res = await fetch("http://localhost/count", { method: "POST", body: new Uint8Array(size), unix: sock } as RequestInit);
    expect(await res.json()).toEqual({ bytes: size });
  });

  test("keep-alive serves several requests on one connection", async () => {
    const c = await rawConnect(sock);
    c.write("GET /_ping HTTP/1.1\r\nHost: x\r\n\r\nGET /images/registry.local:5000/a/b:latest/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const text = await c.closed;
    expect(text.match(/HTTP\/1\.1 200 OK/g)?.length).toBe(2);
    expect(text).toContain('{"name":"registry.local:5000/a/b:latest"}');
  });
});

describe("a response before the request body ended", () => {
  test("the rest of the body is read and dropped: the client's late writes succeed and the connection stays usable", async () => {
    const c = await rawConnect(sock);
    c.write("POST /early HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n");
    await c.waitFor((t) => t.includes("answered early"));
    await Bun.sleep(50);
    // Late body bytes after the answer: a closed socket would refuse them (EPIPE / reset).
    c.write("400\r\n" + "x".repeat(0x400) + "\r\n0\r\n\r\n");
    c.write("GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const text = await c.closed;
    expect(text).toContain("HTTP/1.1 400");
    expect(text).toMatch(/HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nOK$/);
  });

  test("a body far over what is left to drop is given up on: the connection closes after the answer", async () => {
    const c = await rawConnect(sock);
    c.write("POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\nsome");
    await c.waitFor((t) => t.includes("answered early"));
    // More than the discard allowance: the server stops reading and closes.
    const piece = new Uint8Array(64 << 10);
    const started = performance.now();
    for (let i = 0; i < 96; i++) {
      c.write(piece);
      await Bun.sleep(1);
    }
    const text = await c.closed;
    expect(performance.now() - started).toBeLessThan(4000); // by the byte allowance, not the timer
    expect(text.match(/HTTP\/1\.1/g)?.length).toBe(1);
  });
});

describe("streaming and hijack", () => {
  test("streamed responses are flushed chunk by chunk", async () => {
    writes.length = 0;
    const c = await rawConnect(sock);
    c.write("GET /slow-stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    await c.waitFor((t) => t.includes('{"i":0}'));
    const firstSeen = performance.now();
    // The first chunk arrived before the handler wrote the second one.
    expect(writes.length).toBe(1);
    const all = parseResponse(await c.closed);
    expect(all.headers.get("transfer-encoding")).toBe("chunked");
    expect(all.body).toBe('{"i":0}\n{"i":1}\n{"i":2}\n');
    expect(writes[1]! - firstSeen).toBeGreaterThan(50);
  });

  test("hijack: 101 UPGRADED, bytes both ways, survives a client half-close", async () => {
    const c = await rawConnect(sock);
    // Raw bytes sent right behind the head must not be lost.
    c.write("POST /hijack HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\nfirst ");
    await c.waitFor((t) => t.includes("FIRST "));
    expect(c.text()).toStartWith("HTTP/1.1 101 UPGRADED\r\n");
    expect(c.text()).toContain("Content-Type: application/vnd.docker.raw-stream\r\n");
    expect(c.text()).toContain("Upgrade: tcp\r\n");
    c.write("second\n");
    await c.waitFor((t) => t.includes("SECOND\n"));
    c.halfClose();
    const all = await c.closed;
    expect(all).toEndWith("BYE AFTER HALF-CLOSE\n");
  });

  test("hijack without Upgrade answers 200 and streams raw", async () => {
    const c = await rawConnect(sock);
    c.write("POST /hijack HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    c.write("abc");
    await c.waitFor((t) => t.includes("ABC"));
    expect(c.text()).toStartWith("HTTP/1.1 200 OK\r\n");
    c.halfClose();
    expect(await c.closed).toEndWith("BYE AFTER HALF-CLOSE\n");
  });
});
