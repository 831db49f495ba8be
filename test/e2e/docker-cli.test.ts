/**
 * The real docker CLI (28.x) and our own CLI against a running Bunker daemon: version, info,
 * events, over the Unix socket and over TCP with mutual TLS.
 */
import { DOCKER, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { BUNKER, cleanup, run, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.ts";

const HAVE_OPENSSL = Bun.which("openssl") !== null;

let daemon: TestDaemon;
beforeAll(async () => {
  daemon = await startDaemon();
});
afterAll(async () => {
  await daemon.stop();
  cleanup(daemon.dir);
});

/** A unix timestamp `s` seconds from now (a duration would mean "ago" to the CLI). */
const inSeconds = (s: number) => String(Math.floor(Date.now() / 1000) + s);

/** Start `cmd` streaming events, send SIGHUP to the daemon once it is subscribed, collect output. */
async function eventsWhileReloading(cmd: string[], env: Record<string, string>) {
  const before = await fetch("http://localhost/info", { unix: daemon.socket } as RequestInit).then((r) => r.json());
  const p = Bun.spawn(cmd, { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  // Wait until the client's subscription is registered, so the event cannot be missed.
  for (let i = 0; i < 500; i++) {
    const info = (await fetch("http://localhost/info", { unix: daemon.socket } as RequestInit).then((r) => r.json())) as { NEventsListener: number };
    if (info.NEventsListener > (before as { NEventsListener: number }).NEventsListener) break;
    await Bun.sleep(10);
  }
  daemon.proc.kill("SIGHUP");
  const [stdout, stderr] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { stdout, stderr };
}

describe.skipIf(skipUnless("docker CLI against bunker", { "the docker CLI": DOCKER }))("docker CLI against bunker", () => {
  const env = () => ({ DOCKER_HOST: daemon.host });

  test("docker version shows the server section", async () => {
    const r = await run([DOCKER!, "version"], env());
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Server: Bunker Engine\n Engine:\n  Version:\s+\d+\.\d+\.\d+\n  API version:\s+1\.51 \(minimum version 1\.24\)\n/);
    expect(r.stdout).toMatch(/  OS\/Arch:\s+linux\/(amd64|arm64)\n  Experimental:\s+false/);
    expect(r.stderr).toBe("");
  });

  test("docker version --format reads the negotiated API version", async () => {
    const r = await run([DOCKER!, "version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}"], env());
    expect(r.stdout.trim()).toBe("1.51 linux");
  });

  test("docker info prints with no error and real host values", async () => {
    const r = await run([DOCKER!, "info"], env());
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain(` Docker Root Dir: ${daemon.dataRoot}\n`);
    expect(r.stdout).toContain(` CPUs: ${navigator.hardwareConcurrency}\n`);
    expect(r.stdout).toMatch(/ Kernel Version: \S+\n/);
    expect(r.stdout).toMatch(/ Cgroup Version: [12]\n/);
    const j = await run([DOCKER!, "info", "--format", "{{json .}}"], env());
    const info = JSON.parse(j.stdout);
    expect(info.NCPU).toBe(navigator.hardwareConcurrency);
    expect(info.MemTotal).toBe(require("node:os").totalmem());
    expect(info.OSType).toBe("linux");
  });

  test("docker system events prints an event the test causes", async () => {
    const r = await eventsWhileReloading([DOCKER!, "system", "events", "--until", inSeconds(3)], env());
    expect(r.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) daemon reload [0-9a-f-]{36} \(name=\S+\)\n/);
  });

  test("docker events --filter and --since replay history", async () => {
    const r = await run([DOCKER!, "events", "--since", "5m", "--until", "0s", "--filter", "type=daemon", "--format", "{{.Type}}/{{.Action}}"], env());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("daemon/reload\n");
    const none = await run([DOCKER!, "events", "--since", "5m", "--until", "0s", "--filter", "type=container"], env());
    expect(none.stdout).toBe("");
  });

  test("docker output and bunker output agree", async () => {
    const d = await run([DOCKER!, "info"], env());
    const b = await run([BUNKER, "info"], { BUNKER_HOST: daemon.host });
    // Only the client's own version line differs.
    const strip = (s: string) => s.replace(/^ Version: .*$/m, "").replace(/\n Bunker Plugins:[\s\S]*?\n\n/, "\n\n").replace(/ (System Time|File Descriptors|EventsListeners): .*\n/g, "");
    expect(strip(b.stdout)).toBe(strip(d.stdout));
    const dv = await run([DOCKER!, "version", "--format", "{{json .Server}}"], env());
    const bv = await run([BUNKER, "version", "--format", "{{json .Server}}"], { BUNKER_HOST: daemon.host });
    expect(JSON.parse(bv.stdout).Components).toEqual(JSON.parse(dv.stdout).Components);
  });
});

describe("bunker CLI", () => {
  test("bunker version prints docker's layout from BUNKER_HOST, DOCKER_HOST or -H", async () => {
    for (const [args, env] of [
      [["version"], { BUNKER_HOST: daemon.host }],
      [["version"], { DOCKER_HOST: daemon.host, BUNKER_HOST: "" }],
      [["-H", daemon.host, "version"], { BUNKER_HOST: "unix:///nonexistent.sock" }],
    ] as const) {
      const r = await run([BUNKER, ...args], env);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Client:\n Version:\s+\d+\.\d+\.\d+\n API version:\s+1\.51\n/);
      expect(r.stdout).toContain("\nServer: Bunker Engine\n Engine:\n");
    }
  });

  test("bunker version --format json has both halves", async () => {
    const r = await run([BUNKER, "version", "--format", "json"], { BUNKER_HOST: daemon.host });
    const j = JSON.parse(r.stdout);
    expect(j.Client.ApiVersion).toBe("1.51");
    expect(j.Server.MinAPIVersion).toBe("1.24");
  });

  test("bunker events prints the event exactly as docker prints it", async () => {
    const b = await eventsWhileReloading([BUNKER, "events", "--filter", "type=daemon", "--until", inSeconds(2)], { BUNKER_HOST: daemon.host });
    const line = b.stdout.trim().split("\n").at(-1)!;
    expect(line).toMatch(/^\S+ daemon reload [0-9a-f-]{36} \(name=\S+\)$/);
    if (DOCKER) {
      const ts = line.split(" ")[0]!;
      const d = await run([DOCKER, "events", "--since", "5m", "--until", "0s"], { DOCKER_HOST: daemon.host });
      expect(d.stdout.split("\n")).toContain(line);
      expect(ts).toMatch(/\.\d{9}/);
    }
  });

  test("bunker events --format json emits exact int64 timeNano", async () => {
    const r = await run([BUNKER, "events", "--since", "5m", "--until", "0s", "--format", "json"], { BUNKER_HOST: daemon.host });
    const line = r.stdout.trim().split("\n")[0]!;
    const nano = /"timeNano":(\d+)/.exec(line)![1]!;
    const time = JSON.parse(line).time as number;
    expect(BigInt(nano) / 1_000_000_000n).toBe(BigInt(time));
    expect(nano.length).toBe(19);
  });

  test("an unreachable daemon is a clear error and exit 1", async () => {
    const r = await run([BUNKER, "-H", "unix:///nonexistent/bunker.sock", "info"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Cannot connect to the Bunker daemon at unix:///nonexistent/bunker.sock");
  });

  test("a daemon error is shown as docker shows it", async () => {
    const r = await run([BUNKER, "events", "--filter", "bogus=1", "--until", "0s"], { BUNKER_HOST: daemon.host });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("Error response from daemon: invalid filter 'bogus'\n");
  });

  test("--help on every command and --version everywhere", async () => {
    for (const cmd of [[], ["version"], ["info"], ["events"], ["daemon"]]) {
      const h = await run([BUNKER, ...cmd, "--help"]);
      expect(h.code).toBe(0);
      expect(h.stdout).toContain("Usage:");
      const v = await run([BUNKER, ...cmd, "--version"]);
      expect(v.stdout).toMatch(/^Bunker version \d+\.\d+\.\d+, build \w+\n$/);
    }
  });
});

describe.skipIf(skipUnless("TCP with mutual TLS", { "openssl": HAVE_OPENSSL, "the docker CLI": DOCKER }))("TCP with mutual TLS", () => {
  let certs: string;
  let tlsDaemon: TestDaemon;

  /** A CA, a server cert for 127.0.0.1 and a client cert, with openssl. */
  async function makeCerts(dir: string) {
    mkdirSync(dir, { recursive: true });
    const sh = async (script: string) => {
      const r = await run(["sh", "-ec", script]);
      if (r.code !== 0) throw new Error(r.stderr);
    };
    await sh(`cd ${dir}
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca-key.pem -out ca.pem -days 2 -subj /CN=bunker-test-ca 2>/dev/null
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server-key.pem -out server.csr -subj /CN=127.0.0.1 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext
      openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server-cert.pem -days 2 -extfile server.ext 2>/dev/null
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out client.csr -subj /CN=client 2>/dev/null
      printf 'extendedKeyUsage=clientAuth\\n' > client.ext
      openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out cert.pem -days 2 -extfile client.ext 2>/dev/null`);
  }

  beforeAll(async () => {
    const dir = tempDir();
    certs = join(dir, "certs");
    await makeCerts(certs);
    tlsDaemon = await startDaemon({
      dir,
      args: ["-H", `unix://${join(dir, "run", "bunker.sock")}`, "-H", "tcp://127.0.0.1:0", "--tlsverify",
        "--tlscacert", join(certs, "ca.pem"), "--tlscert", join(certs, "server-cert.pem"), "--tlskey", join(certs, "server-key.pem")],
    });
  });
  afterAll(async () => {
    await tlsDaemon.stop();
    cleanup(tlsDaemon.dir);
  });

  const tcpAddress = () => /API listen on (tcp:\/\/127\.0\.0\.1:\d+)/.exec(tlsDaemon.logs())![1]!;

  test("docker and bunker with a client certificate get the server section", async () => {
    const env = { DOCKER_HOST: tcpAddress(), DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: certs };
    const d = await run([DOCKER!, "version", "--format", "{{.Server.Version}}"], env);
    expect(d.stderr).toBe("");
    expect(d.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const b = await run([BUNKER, "version", "--format", "{{.Server.Version}}"], { ...env, BUNKER_HOST: "" });
    expect(b.stdout.trim()).toBe(d.stdout.trim());
  });

  test("a client without a certificate is refused", async () => {
    const r = await run(["curl", "-sS", "--max-time", "5", "--cacert", join(certs, "ca.pem"), `https://${tcpAddress().slice(6)}/_ping`]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toBe("OK");
  });
});
