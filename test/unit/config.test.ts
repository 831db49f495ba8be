import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { daemonFlags } from "../../src/cli/commands/daemon.ts";
import { isLoopback, parseHost, readConfigFile, resolveDaemonConfig } from "../../src/core/daemon/config.ts";
import { groupId } from "../../src/core/daemon/daemon.ts";
import { cleanup, tempDir } from "../helpers/daemon.ts";

const none = { "config-file": "/dev/null" };

describe("daemon config", () => {
  test("defaults match the documented layout", () => {
    const c = resolveDaemonConfig(none);
    expect(c).toMatchObject({ dataRoot: "/var/lib/bunker", execRoot: "/run/bunker", pidfile: "/run/bunker/bunker.pid", logLevel: "info", logFormat: "text", group: "bunker" });
    expect(c.hosts).toEqual([{ kind: "unix", path: "/run/bunker/bunker.sock" }]);
  });

  test("the default socket follows --exec-root; --debug sets debug level", () => {
    const c = resolveDaemonConfig({ ...none, "exec-root": "/tmp/x", debug: true });
    expect(c.hosts).toEqual([{ kind: "unix", path: "/tmp/x/bunker.sock" }]);
    expect(c.logLevel).toBe("debug");
  });

  test("file errors name the key; flag errors name the flag", () => {
    const d = tempDir();
    const f = join(d, "daemon.json");
    writeFileSync(f, JSON.stringify({ hosts: "unix:///x" }));
    expect(() => readConfigFile(f, true)).toThrow("hosts: Invalid type: Expected Array");
    writeFileSync(f, "{not json");
    expect(() => readConfigFile(f, true)).toThrow(`unable to configure the daemon with file ${f}`);
    expect(() => readConfigFile(join(d, "missing.json"), true)).toThrow("does not exist");
    expect(readConfigFile(join(d, "missing.json"), false)).toEqual({});
    expect(() => resolveDaemonConfig({ ...none, "log-level": "loud" as never })).toThrow("--log-level:");
    expect(() => resolveDaemonConfig({ ...none, "data-root": "relative" })).toThrow("--data-root: must be an absolute path");
    cleanup(d);
  });

  test("TLS rules: non-loopback needs --tlsverify; TLS needs its files", () => {
    expect(() => resolveDaemonConfig({ ...none, hosts: ["tcp://10.1.2.3:2376"] })).toThrow("without --tlsverify");
    expect(() => resolveDaemonConfig({ ...none, hosts: ["tcp://127.0.0.1:2375"] })).not.toThrow();
    expect(() => resolveDaemonConfig({ ...none, hosts: ["tcp://0.0.0.0:2376"], tlsverify: true })).toThrow("--tlscert, --tlskey, --tlscacert are not set");
    const ok = resolveDaemonConfig({ ...none, hosts: ["tcp://0.0.0.0:2376"], tlsverify: true, tlscert: "c", tlskey: "k", tlscacert: "ca" });
    expect(ok.tls).toBe(true);
  });

  test("host addresses", () => {
    expect(parseHost("unix://")).toEqual({ kind: "unix", path: "/run/bunker/bunker.sock" });
    expect(parseHost("/x.sock")).toEqual({ kind: "unix", path: "/x.sock" });
    expect(parseHost("tcp://127.0.0.1")).toEqual({ kind: "tcp", host: "127.0.0.1", port: 2375 });
    expect(parseHost("tcp://127.0.0.1", undefined, true)).toEqual({ kind: "tcp", host: "127.0.0.1", port: 2376 });
    expect(parseHost("tcp://[::1]:99")).toEqual({ kind: "tcp", host: "::1", port: 99 });
    expect(parseHost("tcp://:2375")).toEqual({ kind: "tcp", host: "127.0.0.1", port: 2375 });
    expect(() => parseHost("ssh://x")).toThrow("invalid host");
    expect(() => parseHost("tcp://h:99999")).toThrow("bad port");
    expect([isLoopback("127.0.0.2"), isLoopback("::1"), isLoopback("localhost"), isLoopback("10.0.0.1"), isLoopback("0.0.0.0")]).toEqual([true, true, true, false, false]);
  });

  test("CLI flags map onto daemon.json keys; --plugin-config takes JSON", () => {
    const f = daemonFlags({ dataRoot: "/d", host: ["unix:///a", "unix:///b"], pluginConfig: ['events.v1.x={"file":"/f"}'], logLevel: "debug", configFile: ["/a", "/b"] as never });
    expect(f).toEqual({ "config-file": "/b", "data-root": "/d", hosts: ["unix:///a", "unix:///b"], plugins: { "events.v1.x": { file: "/f" } }, "log-level": "debug" });
    expect(() => daemonFlags({ pluginConfig: ["events.v1.x={bad"] })).toThrow("--plugin-config events.v1.x: invalid JSON");
  });

  test("group lookup reads /etc/group format", () => {
    const d = tempDir();
    writeFileSync(join(d, "group"), "root:x:0:\nbunker:x:998:alice\n");
    expect(groupId("bunker", join(d, "group"))).toBe(998);
    expect(groupId("docker", join(d, "group"))).toBeUndefined();
    cleanup(d);
  });
});
