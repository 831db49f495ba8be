import { describe, expect, test } from "bun:test";
import { renderEvent, filtersJson } from "../../src/cli/commands/events.ts";
import { renderServerInfo } from "../../src/cli/commands/info.ts";
import { clientVersion, renderVersion } from "../../src/cli/commands/version.ts";
import { applyAliases } from "../../src/cli/index.ts";
import { bytesSize, formatAnsiC, formatRfc3339NanoFixed, renderFormat, tabwrite, toTimestamp } from "../../src/cli/output.ts";
import { resolveEndpoint } from "../../src/core/client/engine-client.ts";
import { createLogger } from "../../src/core/log.ts";

describe("docker-compatible output", () => {
  test("tabwrite pads to Go's minwidth 20, padding 1", () => {
    expect(tabwrite("Client:\n Version:\t1\n API version:\t2\n")).toBe("Client:\n Version:           1\n API version:       2\n");
    expect(tabwrite(" A very long label here:\tx")).toBe(" A very long label here: x");
  });

  test("time layouts", () => {
    expect(formatAnsiC("2025-05-30T12:07:27.000Z")).toBe("Fri May 30 12:07:27 2025");
    expect(formatAnsiC("2025-05-03T02:07:27Z")).toBe("Sat May  3 02:07:27 2025");
    const s = formatRfc3339NanoFixed(1_700_000_000_000_000_123n);
    expect(s).toMatch(/^2023-11-1\dT\d\d:\d\d:20\.000000123(Z|[+-]\d\d:\d\d)$/);
  });

  test("bytes, templates, timestamps", () => {
    expect(bytesSize(25_270_000_000)).toBe("23.53GiB");
    expect(bytesSize(512)).toBe("512B");
    expect(renderFormat("{{.A.B}} {{json .C}}", { A: { B: "x" }, C: [1] })).toBe("x [1]");
    expect(renderFormat("json", { n: 5n })).toBe('{"n":5}');
    expect(renderFormat("{{.Missing}}", {})).toBe("<no value>");
    expect(toTimestamp("1700000000")).toBe("1700000000");
    expect(toTimestamp("10m", 1_700_000_600_000)).toBe("1700000000.000000000");
    expect(toTimestamp("1h30m", 1_700_005_400_000)).toBe("1700000000.000000000");
    expect(toTimestamp("2023-11-14T22:13:20Z")).toBe("1700000000.000000000");
  });

  test("events print as docker's prettyPrintEvent", () => {
    const line = renderEvent({ Type: "container", Action: "start", Actor: { ID: "abc", Attributes: { z: "1", a: "2" } }, scope: "local", time: 1, timeNano: 1_000_000_007n });
    expect(line).toMatch(/^\S+\.000000007\S* container start abc \(a=2, z=1\)\n$/);
    expect(filtersJson(["type=daemon", "type=container", "label=a=b"])).toBe('{"type":{"daemon":true,"container":true},"label":{"a=b":true}}');
    expect(() => filtersJson(["nope"])).toThrow("bad format of filter");
  });

  test("version and info layouts", () => {
    const v = renderVersion(clientVersion("1.51"), { Platform: { Name: "Bunker Engine" }, Components: [{ Name: "Engine", Version: "9.9.9", Details: { ApiVersion: "1.51", MinAPIVersion: "1.24", GoVersion: "g", GitCommit: "c", BuildTime: "b", Os: "linux", Arch: "amd64", Experimental: "false" } }] });
    expect(v).toContain("\nServer: Bunker Engine\n Engine:\n  Version:          9.9.9\n  API version:      1.51 (minimum version 1.24)\n");
    expect(renderVersion(clientVersion("1.44"))).toContain(" API version:       1.44 (downgraded from 1.51)\n");
    const info = renderServerInfo({ Containers: 1, ContainersRunning: 1, ContainersPaused: 0, ContainersStopped: 0, Images: 2, Driver: "overlay", DriverStatus: [["Backing Filesystem", "extfs"]], Plugins: { Volume: ["local"], Network: [], Log: [] }, MemTotal: 1024, Runtimes: {}, Debug: false });
    expect(info).toContain(" Storage Driver: overlay\n  Backing Filesystem: extfs\n");
    expect(info).toContain("  Volume: local\n  Network: \n");
    expect(info).not.toContain("Runtimes:");
  });

  test("system aliases", () => {
    expect(applyAliases(["-H", "x", "system", "events", "--since", "1m"])).toEqual(["-H", "x", "events", "--since", "1m"]);
    expect(applyAliases(["version"])).toEqual(["version"]);
  });
});

describe("client endpoint", () => {
  test("-H beats BUNKER_HOST beats DOCKER_HOST beats the default", () => {
    expect(resolveEndpoint({ host: "unix:///a", env: { BUNKER_HOST: "unix:///b" } }).fetchInit.unix).toBe("/a");
    expect(resolveEndpoint({ env: { BUNKER_HOST: "unix:///b", DOCKER_HOST: "unix:///c" } }).fetchInit.unix).toBe("/b");
    expect(resolveEndpoint({ env: { DOCKER_HOST: "unix:///c" } }).fetchInit.unix).toBe("/c");
    expect(resolveEndpoint({ env: {} }).host).toBe("unix:///run/bunker/bunker.sock");
    expect(resolveEndpoint({ env: { DOCKER_HOST: "tcp://127.0.0.1:2375" } }).base).toBe("http://127.0.0.1:2375");
    expect(() => resolveEndpoint({ env: { DOCKER_HOST: "ssh://h" } })).toThrow("unsupported daemon host");
  });
});

describe("logger", () => {
  test("text like logrus, JSON on request, level threshold", () => {
    const lines: string[] = [];
    const log = createLogger({ sink: (l) => lines.push(l) });
    log.debug("hidden");
    log.info("API listen on /x.sock", { n: 1 });
    log.with({ plugin: "p" }).warn("two words");
    log.configure({ format: "json", level: "debug" });
    log.debug("dbg", { k: "v" });
    expect(lines[0]).toMatch(/^time="[^"]+" level=info msg="API listen on \/x.sock" n=1$/);
    expect(lines[1]).toMatch(/level=warning msg="two words" plugin=p$/);
    expect(JSON.parse(lines[2]!)).toMatchObject({ level: "debug", msg: "dbg", k: "v" });
    expect(lines.length).toBe(3);
  });
});
