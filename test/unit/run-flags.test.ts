/**
 * RUN's flags as BuildKit reads them (src/core/build/run-flags.ts): every `--mount` type with its
 * defaults and fields, `--network`, `--security`; bad values and unknown flags are errors.
 */
import { describe, expect, test } from "bun:test";
import { parseMount, parseRunFlags } from "../../src/core/build/run-flags.ts";

describe("RUN --mount", () => {
  test("defaults per type", () => {
    expect(parseMount("target=/src")).toMatchObject({ type: "bind", target: "/src", readonly: true });
    expect(parseMount("type=cache,target=/root/.cache")).toMatchObject({ type: "cache", id: "/root/.cache", sharing: "shared", readonly: false });
    expect(parseMount("type=secret,id=tok")).toMatchObject({ type: "secret", id: "tok", target: "/run/secrets/tok", mode: 0o400, required: false });
    expect(parseMount("type=secret,target=/etc/creds")).toMatchObject({ id: "creds", target: "/etc/creds" });
    expect(parseMount("type=ssh")).toMatchObject({ type: "ssh", id: "default", target: "/run/buildkit/ssh_agent.0", mode: 0o600 });
    expect(parseMount("type=tmpfs,target=/t,size=64m")).toMatchObject({ type: "tmpfs", size: 64 * 1024 * 1024 });
  });
  test("fields: aliases, booleans, octal mode, ids", () => {
    expect(parseMount("type=cache,dst=/c,id=x,sharing=locked,mode=0700,uid=1000,gid=50,from=base,source=/seed")).toMatchObject({ target: "/c", id: "x", sharing: "locked", mode: 0o700, uid: 1000, gid: 50, from: "base", source: "/seed" });
    expect(parseMount("type=bind,src=a,destination=b,rw")).toMatchObject({ source: "a", target: "/b", readonly: false });
    expect(parseMount("type=bind,target=/x,readonly=false").readonly).toBe(false);
    expect(parseMount("type=secret,id=a,required").required).toBe(true);
  });
  test("bad input", () => {
    expect(() => parseMount("type=nfs,target=/x")).toThrow('unsupported mount type "nfs"');
    expect(() => parseMount("type=cache")).toThrow("mount destination (target) is required");
    expect(() => parseMount("type=cache,target=/x,sharing=sometimes")).toThrow('unsupported sharing value "sometimes"');
    expect(() => parseMount("type=cache,target=/x,mode=9z")).toThrow("invalid value for mode");
    expect(() => parseMount("type=bind,target=/x,colour=red")).toThrow("unexpected key 'colour'");
    expect(() => parseMount("type=bind,target=/")).toThrow("cannot target /");
  });
});

describe("RUN --network and --security", () => {
  test("parsed, repeated mounts kept in order", () => {
    const f = parseRunFlags([
      ["mount", "type=cache,target=/a"],
      ["mount", "type=tmpfs,target=/b"],
      ["network", "none"],
      ["security", "insecure"],
    ]);
    expect(f.mounts.map((m) => m.target)).toEqual(["/a", "/b"]);
    expect(f.network).toBe("none");
    expect(f.security).toBe("insecure");
  });
  test("bad values and unknown flags", () => {
    expect(() => parseRunFlags([["network", "bridge2"]])).toThrow('unsupported network mode "bridge2"');
    expect(() => parseRunFlags([["security", "relaxed"]])).toThrow('unsupported security mode "relaxed"');
    expect(() => parseRunFlags([["devices", "x"]])).toThrow("Unknown flag: devices");
  });
});
