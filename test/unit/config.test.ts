import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { daemonFlags } from "../../src/cli/commands/daemon.ts";
import { DaemonFileSchema, isLoopback, parseHost, readConfigFile, resolveDaemonConfig } from "../../src/core/daemon/config.ts";
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

  test("every daemon.json key has a flag, named as dockerd names it (--bip, --iptables=false, --default-address-pool, --log-opt, ...)", () => {
    const f = daemonFlags({
      dns: ["10.0.0.53"], bridge: "br9", bip: "172.29.0.1/16", ipv6: "true", fixedCidrV6: "fd00:9::/64", iptables: "false", ipForward: "false",
      defaultAddressPool: ["base=10.10.0.0/16,size=24"], insecureRegistry: ["r.test:5000"], registryMirror: ["https://m.test"], registryCertsDir: "/certs",
      registryStallTimeout: "5", registryAddr: "127.0.0.1:5999", logDriver: "local", logOpt: ["max-size=1m", "max-file=2"], dockerPluginDir: ["/p"], dockerPluginTimeout: "3", execOpt: ["native.cgroupdriver=systemd"],
    });
    expect(f).toEqual({
      dns: ["10.0.0.53"], bridge: "br9", bip: "172.29.0.1/16", ipv6: true, "fixed-cidr-v6": "fd00:9::/64", iptables: false, "ip-forward": false,
      "default-address-pools": [{ base: "10.10.0.0/16", size: 24 }], "insecure-registries": ["r.test:5000"], "registry-mirrors": ["https://m.test"], "registry-certs-dir": "/certs",
      "registry-stall-timeout": 5, "registry-addr": "127.0.0.1:5999", "log-driver": "local", "log-opts": { "max-size": "1m", "max-file": "2" }, "docker-plugin-dirs": ["/p"], "docker-plugin-timeout": 3, "exec-opts": ["native.cgroupdriver=systemd"],
    });
    expect(resolveDaemonConfig({ "exec-opts": ["native.cgroupdriver=systemd"] }, {}).cgroupDriver).toBe("systemd");
    expect(() => resolveDaemonConfig({ "exec-opts": ["native.cgroupdriver=upstart"] }, {})).toThrow("native.cgroupdriver=cgroupfs or native.cgroupdriver=systemd");
    const keys = Object.keys(DaemonFileSchema.entries).filter((k) => k !== "plugins");
    const flagged = new Set([...Object.keys(f), "data-root", "exec-root", "hosts", "tls", "tlsverify", "tlscacert", "tlscert", "tlskey", "debug", "log-level", "log-format", "pidfile", "group", "plugins-dir", "required-plugins", "storage-driver"]);
    expect(keys.filter((k) => !flagged.has(k))).toEqual([]);
    // dockerd's iptables and ip-forward reach the bridge driver's section; that section wins.
    const cfg = resolveDaemonConfig({ iptables: false, "ip-forward": false }, {});
    expect(cfg.plugins["network.v1.bridge"]).toEqual({ iptables: false, ipForward: false });
    expect(resolveDaemonConfig({ iptables: false }, { plugins: { "network.v1.bridge": { iptables: true } } }).plugins["network.v1.bridge"]).toEqual({ iptables: true });
    expect(() => daemonFlags({ iptables: "maybe" })).toThrow("invalid boolean value");
    expect(() => daemonFlags({ defaultAddressPool: ["10.0.0.0/8"] })).toThrow("base=<CIDR>,size=<prefix length>");
  });

  test("group lookup reads /etc/group format", () => {
    const d = tempDir();
    writeFileSync(join(d, "group"), "root:x:0:\nbunker:x:998:alice\n");
    expect(groupId("bunker", join(d, "group"))).toBe(998);
    expect(groupId("docker", join(d, "group"))).toBeUndefined();
    cleanup(d);
  });
});

describe("systemd cgroup naming", () => {
  test("slice:prefix:name is laid out as systemd lays out a scope", async () => {
    const { Cgroup, expandSlice } = await import("../../src/plugins/runtime-linux/cgroups.ts");
    expect(Cgroup.pathFor("abc", "system.slice:docker:abc")).toBe("/system.slice/docker-abc.scope");
    expect(Cgroup.pathFor("abc", "kubepods-besteffort-pod12.slice:docker:abc")).toBe("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/docker-abc.scope");
    expect(expandSlice("-.slice")).toBe("");
    expect(() => Cgroup.pathFor("abc", "bad:docker:abc")).toThrow("invalid slice name");
    expect(() => Cgroup.pathFor("abc", "a--b.slice:docker:abc")).toThrow("invalid slice name");
  });
});
