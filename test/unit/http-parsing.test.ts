import { describe, expect, test } from "bun:test";
import { BodyDecoder, bodyFraming, findHeadEnd, parseHead, parseQuery } from "../../src/core/api/http/request.ts";
import { EngineError } from "../../src/core/errors.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (parts: Uint8Array[]) => parts.map((p) => new TextDecoder().decode(p)).join("");

describe("request heads", () => {
  test("parses method, path, query and lower-cased headers; repeated headers are joined", () => {
    const raw = enc("POST /v1.51/images/a/b:1/push?tag=x&q=%20y HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\nBODY");
    const end = findHeadEnd(raw);
    expect(new TextDecoder().decode(raw.subarray(end))).toBe("BODY");
    const h = parseHead(raw.subarray(0, end));
    expect(h).toMatchObject({ method: "POST", path: "/v1.51/images/a/b:1/push", httpVersion: "1.1" });
    expect(h.query.get("q")).toBe(" y");
    expect(h.headers.get("x-a")).toBe("1, 2");
  });

  test("an incomplete head needs more bytes", () => {
    expect(findHeadEnd(enc("GET / HTTP/1.1\r\nHost: x\r\n"))).toBe(-1);
  });

  test("malformed request lines and headers are invalid-argument", () => {
    for (const bad of ["GET /\r\n\r\n", "get / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nNoColon\r\n\r\n"]) {
      try {
        parseHead(enc(bad));
        throw new Error("accepted " + bad);
      } catch (e) {
        expect((e as EngineError).code).toBe("invalid-argument");
      }
    }
  });

  test("framing: chunked wins over length; bad lengths and codings are refused", () => {
    const head = (h: string) => parseHead(enc(`POST / HTTP/1.1\r\n${h}\r\n\r\n`));
    expect(bodyFraming(head("Content-Length: 5"))).toEqual({ kind: "length", length: 5 });
    expect(bodyFraming(head("Content-Length: 0"))).toEqual({ kind: "none" });
    expect(bodyFraming(head("Transfer-Encoding: chunked\r\nContent-Length: 5"))).toEqual({ kind: "chunked" });
    expect(() => bodyFraming(head("Content-Length: -1"))).toThrow("invalid Content-Length");
    expect(() => bodyFraming(head("Transfer-Encoding: gzip"))).toThrow("unsupported Transfer-Encoding");
  });
});

describe("body decoding", () => {
  test("Content-Length bodies stop exactly at their end", () => {
    const d = new BodyDecoder({ kind: "length", length: 4 });
    const r1 = d.push(enc("ab"));
    const r2 = d.push(enc("cdEXTRA"));
    expect([r1.consumed, r2.consumed, d.done]).toEqual([2, 2, true]);
    expect(dec([...r1.data, ...r2.data])).toBe("abcd");
  });

  test("chunked bodies decode when split at every byte, with extensions and trailers", () => {
    const wire = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    const d = new BodyDecoder({ kind: "chunked" });
    const out: Uint8Array[] = [];
    let consumed = 0;
    for (let i = 0; i < wire.length && !d.done; i++) {
      const r = d.push(enc(wire[i]!));
      consumed += r.consumed;
      out.push(...r.data.map((x) => x.slice()));
    }
    expect(dec(out)).toBe("hello world");
    expect(d.done).toBe(true);
    expect(wire.slice(consumed)).toBe("NEXT");
  });

  test("a bad chunk size is invalid-argument", () => {
    const d = new BodyDecoder({ kind: "chunked" });
    expect(() => d.push(enc("zz\r\n"))).toThrow("bad chunk size");
  });
});

describe("query strings", () => {
  test("URLSearchParams decoding: plus, percent, repeats, bare keys, malformed escapes", () => {
    const q = parseQuery("names=a&names=b%2Fc&t=x+y&flag&bad=%zz&filters=%7B%22a%22%3A1%7D");
    expect(q.getAll("names")).toEqual(["a", "b/c"]);
    expect(q.get("t")).toBe("x y");
    expect(q.has("flag")).toBe(true);
    expect(q.get("flag")).toBe("");
    expect(q.get("bad")).toBe("%zz");
    expect(q.get("filters")).toBe('{"a":1}');
    expect(q.get("missing")).toBeNull();
  });

  test("non-ASCII bytes in a head survive as latin1", () => {
    const h = parseHead(new Uint8Array([...new TextEncoder().encode("GET / HTTP/1.1\r\nX: "), 0xe9, 13, 10, 13, 10]));
    expect(h.headers.get("x")).toBe("\u00e9");
  });
});
