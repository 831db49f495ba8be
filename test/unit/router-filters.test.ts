import { describe, expect, test } from "bun:test";
import { checkVersion } from "../../src/core/api/api-handler.ts";
import { STATUS_BY_CODE, renderError } from "../../src/core/api/error-status.ts";
import { Filters } from "../../src/core/filters.ts";
import { Router } from "../../src/core/api/router.ts";
import { EngineError, NotSupportedError, SyscallError } from "../../src/core/errors.ts";

describe("router", () => {
  const noop = () => {};
  const r = new Router().add(
    { method: "GET", path: "/containers/{id}/json", handler: noop },
    { method: "POST", path: "/images/{name:.*}/push", handler: noop },
    { method: "DELETE", path: "/images/{name:.*}", handler: noop },
  );
  test("segment and greedy parameters", () => {
    expect(r.match("GET", "/containers/abc/json")?.params).toEqual({ id: "abc" });
    expect(r.match("POST", "/images/reg:5000/ns/img/push")?.params).toEqual({ name: "reg:5000/ns/img" });
    expect(r.match("DELETE", "/images/a%2Fb")?.params).toEqual({ name: "a/b" });
  });
  test("HEAD falls back to GET; other methods do not match", () => {
    expect(r.match("HEAD", "/containers/x/json")).toBeDefined();
    expect(r.match("PUT", "/containers/x/json")).toBeUndefined();
    expect(r.match("GET", "/containers/x/y/json")).toBeUndefined();
    expect(() => r.match("GET", "/containers/%zz/json")).toThrow("malformed percent-encoding");
  });
});

describe("API versions", () => {
  test("accepts the supported range, refuses outside it", () => {
    for (const v of ["1.24", "1.40", "1.51"]) expect(() => checkVersion(v)).not.toThrow();
    expect(() => checkVersion("1.9")).toThrow("too old");
    expect(() => checkVersion("1.100")).toThrow("too new");
    expect(() => checkVersion("2.0")).toThrow("too new");
  });
});

describe("error map", () => {
  test("every code has a status and engine errors use it", () => {
    expect(STATUS_BY_CODE["not-found"]).toBe(404);
    expect(STATUS_BY_CODE.conflict).toBe(409);
    expect(renderError(new EngineError("invalid-argument", "x"))).toEqual({ status: 400, message: "x" });
    expect(renderError(new Error("plain")).status).toBe(500);
    expect(renderError(new NotSupportedError("no dm")).status).toBe(501);
  });
  test("SyscallError carries syscall, errno and path", () => {
    const e = new SyscallError("mount", 1, "/var/lib/bunker/x");
    expect(e.message).toBe("mount /var/lib/bunker/x: EPERM (Operation not permitted)");
    expect(e.code).toBe("permission-denied");
    expect(e.errnoName).toBe("EPERM");
  });
});

describe("filters", () => {
  test("accepts the Go client's map form and the list form", () => {
    const a = Filters.parse('{"type":{"daemon":true,"container":false},"label":{"a=b":true}}');
    const b = Filters.parse('{"type":["daemon"],"label":["a=b"]}');
    expect(a.get("type")).toEqual(["daemon"]);
    expect(b.get("type")).toEqual(["daemon"]);
    expect(a.matchKV("label", { a: "b" })).toBe(true);
    expect(a.matchKV("label", { a: "c" })).toBe(false);
  });
  test("malformed JSON and unknown keys are invalid-argument", () => {
    expect(() => Filters.parse("{bad")).toThrow("invalid filter");
    expect(() => Filters.parse('{"x":["1"]}', ["type"])).toThrow("invalid filter 'x'");
    expect(() => Filters.parse('{"x":5}')).toThrow("invalid filter 'x'");
  });
  test("fuzzy matching is by prefix", () => {
    const f = Filters.parse('{"container":["abc"]}');
    expect(f.fuzzyMatch("container", "abcdef")).toBe(true);
    expect(f.fuzzyMatch("container", "xabc")).toBe(false);
    expect(f.fuzzyMatch("image", "anything")).toBe(true);
  });
});
