/**
 * Every config.json the runtime generates validates against the runtime-spec JSON schemas
 * (test/fixtures/runtime-spec-schema, from ../shared/data): the default spec (`runtime spec`),
 * the rootless one, specs with the default seccomp profile and resources, and the specs the
 * engine writes for containers (core/container/oci-spec.ts). A broken spec is caught, so the
 * check can fail.
 */
import { describe, expect, test } from "bun:test";
import Ajv from "ajv-draft-04";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { defaultSpec } from "../../src/plugins/runtime-linux/default-spec.ts";
import { defaultSeccompProfile } from "../../src/core/container/seccomp-default.ts";
import { parseSpec, type Spec } from "../../src/core/runtime/oci.ts";
import { buildSpec } from "../../src/core/container/oci-spec.ts";
import { specMount } from "../../src/core/container/mounts.ts";

const DIR = join(import.meta.dir, "../fixtures/runtime-spec-schema");

function validator() {
  const ajv = new Ajv({ allErrors: true, strict: false });
  for (const f of readdirSync(DIR).filter((f) => f.endsWith(".json"))) {
    const schema = JSON.parse(readFileSync(join(DIR, f), "utf8"));
    delete schema.id;
    ajv.addSchema(schema, f);
  }
  return ajv.getSchema("config-schema.json")!;
}

describe("generated config.json against the runtime-spec schemas", () => {
  const validate = validator();
  const check = (spec: Spec) => {
    const ok = validate(JSON.parse(JSON.stringify(spec)));
    return ok ? "valid" : JSON.stringify(validate.errors?.slice(0, 3));
  };

  test("runc-style default spec, rootless spec", () => {
    expect(check(defaultSpec())).toBe("valid");
    expect(check(defaultSpec({ rootless: true, uid: 1000, gid: 1000 }))).toBe("valid");
  });

  test("with the default seccomp profile, resources, hooks and a terminal size", () => {
    const s = defaultSpec();
    s.linux!.seccomp = defaultSeccompProfile(["CAP_KILL", "CAP_CHOWN"]);
    s.linux!.resources = { memory: { limit: 64 << 20, swap: 128 << 20 }, cpu: { shares: 512, quota: 50000, period: 100000, cpus: "0" }, pids: { limit: 100 }, devices: [{ allow: false, access: "rwm" }] };
    s.process!.consoleSize = { height: 24, width: 80 };
    s.hooks = { poststop: [{ path: "/bin/true", args: ["true"], timeout: 5 }] };
    expect(check(s)).toBe("valid");
    // And it round-trips through the runtime's own parser.
    expect(parseSpec(JSON.stringify(s)).linux?.seccomp?.syscalls?.length).toBeGreaterThan(0);
  });

  test("the engine's specs for containers (docker run's defaults, privileged, mounts, limits, --init, time offsets)", () => {
    const base = {
      id: "0123456789ab".padEnd(64, "0"),
      args: ["sh", "-c", "true"],
      env: ["PATH=/usr/bin:/bin", "HOSTNAME=box"],
      user: { uid: 1000, gid: 1000, additionalGids: [10] },
      rootfs: "/var/lib/bunker/containers/x/rootfs",
      etcFiles: { hosts: "/tmp/hosts", hostname: "/tmp/hostname", resolvConf: "/tmp/resolv.conf" },
      mounts: [specMount({ Type: "bind", Source: "/srv", Destination: "/data", Mode: "ro", RW: false, Propagation: "rslave" }), specMount({ Type: "tmpfs", Source: "", Destination: "/t", Mode: "", RW: true, Propagation: "", TmpfsOptions: ["size=1m"] })],
    };
    const plain = buildSpec({ ...base, config: { Tty: true, WorkingDir: "/tmp" }, hostConfig: { Memory: 64 << 20, NanoCpus: 5e8, PidsLimit: 50, Ulimits: [{ Name: "nofile", Soft: 1024, Hard: 2048 }], Init: true, ConsoleSize: [24, 80], CapAdd: ["NET_ADMIN"], CapDrop: ["MKNOD"], Sysctls: { "net.ipv4.ip_forward": "1" } } });
    expect(check(plain as Spec)).toBe("valid");
    expect(parseSpec(JSON.stringify(plain)).process?.capabilities?.bounding).toContain("CAP_NET_ADMIN");
    const privileged = buildSpec({ ...base, config: {}, hostConfig: { Privileged: true, ReadonlyRootfs: true, NetworkMode: "host" } });
    expect(check(privileged as Spec)).toBe("valid");
    const timed = defaultSpec();
    timed.linux!.namespaces!.push({ type: "time" });
    timed.linux!.timeOffsets = { boottime: { secs: 10, nanosecs: 0 } };
    expect(check(timed)).toBe("valid");
  });

  test("a broken spec is reported", () => {
    const s = defaultSpec() as unknown as { process: { args: unknown } };
    s.process.args = "sh";
    expect(check(s as unknown as Spec)).not.toBe("valid");
  });
});
