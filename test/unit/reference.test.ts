import { describe, expect, test } from "bun:test";
import { familiarString, formatReference, parseReference, parseWithDefaultTag } from "../../src/core/image/reference.ts";

const D = "sha256:" + "a".repeat(64);

describe("references, normalised as Docker does", () => {
  const cases: [string, string, string][] = [
    ["busybox", "docker.io/library/busybox:latest", "busybox:latest"],
    ["busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"],
    ["library/busybox", "docker.io/library/busybox:latest", "busybox:latest"],
    ["docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"],
    ["index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"],
    ["user/app", "docker.io/user/app:latest", "user/app:latest"],
    ["docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"],
    ["localhost/app", "localhost/app:latest", "localhost/app:latest"],
    ["localhost:5000/ns/app:v1", "localhost:5000/ns/app:v1", "localhost:5000/ns/app:v1"],
    ["127.0.0.1:5000/app", "127.0.0.1:5000/app:latest", "127.0.0.1:5000/app:latest"],
    ["[::1]:5000/app", "[::1]:5000/app:latest", "[::1]:5000/app:latest"],
    ["registry.example/a_b/c__d/e-f--g.h:TAG_1.x", "registry.example/a_b/c__d/e-f--g.h:TAG_1.x", "registry.example/a_b/c__d/e-f--g.h:TAG_1.x"],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`, `busybox@${D}`],
    [`busybox:1@${D}`, `docker.io/library/busybox:1@${D}`, `busybox:1@${D}`],
  ];
  for (const [input, full, familiar] of cases) {
    test(input, () => {
      const r = parseWithDefaultTag(input);
      expect(formatReference(r)).toBe(full);
      expect(familiarString(r)).toBe(familiar);
    });
  }

  test("no default tag without asking", () => {
    expect(parseReference("busybox").tag).toBeUndefined();
    expect(parseWithDefaultTag(`busybox@${D}`).tag).toBeUndefined();
  });

  test("bad references get Docker's messages", () => {
    expect(() => parseReference("Busybox")).toThrow("invalid reference format: repository name (library/Busybox) must be lowercase");
    expect(() => parseReference("a".repeat(64).replace(/a/g, "f"))).toThrow("cannot specify 64-byte hexadecimal strings");
    for (const bad of ["", "busybox:", ":tag", "a//b", "-a", "a-", "busybox:-x", "busybox@sha256:xyz", `busybox:${"t".repeat(129)}`, "UPPER.example/x/y!"]) {
      expect(() => parseReference(bad)).toThrow(/invalid reference format|invalid digest/);
    }
    expect(() => parseReference(`x/${"a".repeat(260)}`)).toThrow("must not be more than 255 characters");
    expect(() => parseReference(`busybox@md5:${"a".repeat(32)}`)).toThrow("unsupported digest algorithm");
  });

  test("upper case is fine in a registry host and in tags", () => {
    expect(formatReference(parseReference("Registry.Example:443/x:V1"))).toBe("Registry.Example:443/x:V1");
  });
});
