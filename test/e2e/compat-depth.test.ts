/**
 * Regression tests for what the Docker SDK for Python's own suite and side-by-side runs with
 * dockerd found (issue 13), each through the Engine API or the docker CLI as a client sends it:
 * swarm routes, kill, exec framing and detach keys, commit fields, classic build details,
 * network and endpoint options, legacy links, devices, shared namespaces, attach with logs,
 * and dockerd's wording. Each test fails on the code before the fix.
 */
import { ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { apiClient } from "../helpers/api.ts";
import { BUNKER, cleanup, run, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.ts";
import { DOCKER_CLI } from "../helpers/dockerd.ts";
import { BUSYBOX, busyboxLayer, dockerArchive } from "../helpers/images.ts";
import { rawConnect } from "../helpers/raw-http.ts";


/** A build context holding only a Dockerfile with `text`. */
async function dockerfileOnlyTar(text: string): Promise<Uint8Array> {
  const { writeTar, fullHeader } = await import("../../src/core/layer/tar-stream.ts");
  const body = new TextEncoder().encode(text);
  return Buffer.concat(await Array.fromAsync(writeTar([{ header: fullHeader({ name: "Dockerfile", type: "file", mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 1_700_000_000 }), body }])));
}

describe.skipIf(skipUnless("Docker's behaviour where clients' suites found Bunker different", { "root": ROOT, "busybox-static": BUSYBOX, "the docker CLI": DOCKER_CLI }))("Docker's behaviour where clients' suites found Bunker different", () => {
  let daemon: TestDaemon;
  let dir: string;
  let api: ReturnType<typeof apiClient>;
  const docker = (...a: string[]) => run([DOCKER_CLI!, ...a], { DOCKER_HOST: daemon.host, DOCKER_BUILDKIT: "0" });
  const create = async (body: Record<string, unknown>, name?: string) => {
    const r = await api("POST", `/containers/create${name ? `?name=${name}` : ""}`, { Image: "busybox", ...body });
    expect(r.status, r.text).toBe(201);
    return r.json.Id as string;
  };
  const start = async (id: string) => expect((await api("POST", `/containers/${id}/start`)).status).toBe(204);

  beforeAll(async () => {
    dir = tempDir("bunker-compat-");
    daemon = await startDaemon({ dir });
    api = apiClient(daemon.socket);
    writeFileSync(join(dir, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer({ full: true })] }));
    expect((await docker("load", "-i", join(dir, "busybox.tar"))).code).toBe(0);
  });
  afterAll(async () => {
    const ids = (await docker("ps", "-aq")).stdout.split("\n").filter(Boolean);
    if (ids.length) await docker("rm", "-f", ...ids);
    await docker("network", "prune", "-f");
    await daemon.stop();
    cleanup(dir);
  });

  test("swarm routes answer 503 with moby's words, as an engine outside a swarm does", async () => {
    const leave = await api("POST", "/swarm/leave?force=1");
    expect(leave.status).toBe(503);
    expect(leave.json.message).toBe("This node is not part of a swarm");
    for (const path of ["/swarm", "/nodes", "/services", "/tasks", "/secrets", "/configs", "/services/x", "/v1.41/nodes/abc"]) {
      const r = await api("GET", path);
      expect(r.status, path).toBe(503);
      expect(r.json.message).toStartWith("This node is not a swarm manager.");
    }
    const cli = await docker("node", "ls");
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain("This node is not a swarm manager");
  });

  test("kill: an inspect right after the answer shows exited with 137", async () => {
    const id = await create({ Cmd: ["sleep", "1000"] });
    await start(id);
    expect((await api("POST", `/containers/${id}/kill`)).status).toBe(204);
    const s = (await api("GET", `/containers/${id}/json`)).json.State;
    expect([s.Status, s.ExitCode, s.Running]).toEqual(["exited", 137, false]);
  });

  test("rm of a running or restarting container says what dockerd says", async () => {
    const id = await create({ Cmd: ["sleep", "1000"] });
    await start(id);
    const r = await api("DELETE", `/containers/${id}`);
    expect(r.status).toBe(409);
    expect(r.json.message).toBe(`You cannot remove a running container ${id}. Stop the container before attempting removal or force remove`);
    await api("DELETE", `/containers/${id}?force=1`);
  });

  test("exec: a Tty exec started with Tty false is framed; ctrl-p ctrl-q detaches the exec and it goes on", async () => {
    const id = await create({ Cmd: ["sleep", "1000"] });
    await start(id);
    const e1 = await api("POST", `/containers/${id}/exec`, { Cmd: ["echo", "framed"], Tty: true, AttachStdout: true });
    const c1 = await rawConnect(daemon.socket);
    const body1 = JSON.stringify({ Tty: false });
    c1.write(`POST /exec/${e1.json.Id}/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body1.length}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n${body1}`);
    const out1 = await Promise.race([c1.closed, Bun.sleep(10_000).then(() => c1.text())]);
    const payload = out1.slice(out1.indexOf("\r\n\r\n") + 4);
    // A stdout frame header: stream 1, three zero bytes, the length; then the text.
    expect([...payload.slice(0, 4)].map((ch) => ch.charCodeAt(0))).toEqual([1, 0, 0, 0]);
    expect(payload.slice(8)).toContain("framed");

    const e2 = await api("POST", `/containers/${id}/exec`, { Cmd: ["cat"], Tty: true, AttachStdin: true, AttachStdout: true });
    const c2 = await rawConnect(daemon.socket);
    const body2 = JSON.stringify({ Tty: true });
    c2.write(`POST /exec/${e2.json.Id}/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body2.length}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n${body2}`);
    await Bun.sleep(300);
    c2.write(Uint8Array.of(0x10, 0x11)); // ctrl-p ctrl-q
    expect(await Promise.race([c2.closed.then(() => "closed"), Bun.sleep(5_000).then(() => "open")])).toBe("closed"); // the daemon ends the stream
    const info = (await api("GET", `/exec/${e2.json.Id}/json`)).json;
    expect(info.Running).toBe(true);
    await api("DELETE", `/containers/${id}?force=1`);
  });

  test("commit: inspect shows Container, ContainerConfig, Parent and the message; Config has OnBuild", async () => {
    const id = await create({ Cmd: ["sh", "-c", "echo hi > /f"] });
    await start(id);
    await api("POST", `/containers/${id}/wait`);
    const base = (await api("GET", "/images/busybox/json")).json.Id;
    const c = await api("POST", `/commit?container=${id}&repo=committed&tag=1&comment=the%20message`, {});
    expect(c.status, c.text).toBe(201);
    const img = (await api("GET", "/images/committed:1/json")).json;
    expect(img.Container).toBe(id);
    expect(img.ContainerConfig.Image).toBe("busybox");
    expect(img.Parent).toBe(base);
    expect(img.Comment).toBe("the message");
    expect("OnBuild" in img.Config).toBe(true);
    const hist = await docker("history", "--format", "{{.Comment}}", "committed:1");
    expect(hist.stdout.split("\n")[0]).toBe("the message");
    // Committing (with pause) right after a short container was started: it may exit between
    // the record and the pause, which used to answer 412.
    for (let i = 0; i < 15; i++) {
      const short = await create({ Cmd: ["touch", "/test"] });
      await start(short);
      const r = await api("POST", `/commit?container=${short}&pause=1`, {});
      expect(r.status, r.text).toBe(201);
      await api("DELETE", `/containers/${short}?force=1`);
    }
  });

  test("classic build: .dockerignore naming the Dockerfile and itself, extra hosts, cache-from an unknown tag, an empty context", async () => {
    const ctx = join(dir, "ctx");
    mkdirSync(ctx, { recursive: true });
    writeFileSync(join(ctx, "Dockerfile"), "FROM busybox\nCOPY . /src\nRUN cat /etc/hosts > /hosts\nRUN >&2 echo to-stderr\n");
    writeFileSync(join(ctx, ".dockerignore"), "Dockerfile\n.dockerignore\n");
    writeFileSync(join(ctx, "kept.txt"), "x");
    const b = await docker("build", "--add-host", "extra.test:10.1.2.3", "-t", "ignored:1", ctx);
    expect(b.code, b.stderr).toBe(0);
    const ls = await docker("run", "--rm", "ignored:1", "sh", "-c", "ls -a /src; cat /hosts");
    expect(ls.stdout).toContain("kept.txt");
    expect(ls.stdout).not.toContain("Dockerfile");
    expect(ls.stdout).not.toContain(".dockerignore");
    expect(ls.stdout).toMatch(/10\.1\.2\.3\s+extra\.test/);
    // stderr of a RUN comes in the classic builder's red.
    expect(b.stdout).toContain("\x1b[91mto-stderr\n\x1b[0m");
    // The local cache would hit every step; --cache-from an unknown image means no cache.
    const again = await docker("build", "--cache-from", "nothing:here", "-t", "ignored:2", ctx);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain("Using cache");
    const cached = await docker("build", "-t", "ignored:3", ctx);
    expect(cached.stdout).toContain("Using cache");
    // A context whose Dockerfile is empty: an HTTP error before any output (docker-py raises it).
    const emptyDf = await fetch("http://localhost/build", { unix: daemon.socket, method: "POST", body: await dockerfileOnlyTar("") } as RequestInit);
    expect(emptyDf.status).toBe(400);
    expect(await emptyDf.text()).toContain("cannot be empty");
    const empty = await api("POST", "/build", new Uint8Array(1024));
    expect(empty.status).toBe(500);
    expect(empty.json.message).toContain("Cannot locate specified Dockerfile");
  }, 60_000);

  test("images: all=1 lists intermediate images; a reference filter lists only the matching tags", async () => {
    const all = (await api("GET", "/images/json?all=1")).json as { Id: string; ParentId: string }[];
    const some = (await api("GET", "/images/json")).json as { Id: string }[];
    expect(all.length).toBeGreaterThan(some.length);
    expect(all.some((i) => i.ParentId)).toBe(true);
    await api("POST", "/images/busybox/tag?repo=other&tag=x");
    const f = encodeURIComponent(JSON.stringify({ reference: ["other"] }));
    const listed = (await api("GET", `/images/json?filters=${f}`)).json as { RepoTags: string[] }[];
    expect(listed.map((i) => i.RepoTags)).toEqual([["other:x"]]);
  });

  test("networks: a name with a space, an IPv6 subnet without EnableIPv6, CheckDuplicate false before API 1.44, endpoint options kept", async () => {
    const spaced = await api("POST", "/networks/create", { Name: "with space" });
    expect(spaced.status, spaced.text).toBe(201);
    const v6 = await api("POST", "/networks/create", { Name: "v6-off", IPAM: { Config: [{ Subnet: "2001:389::/64" }] } });
    expect(v6.status, v6.text).toBe(201);
    const first = await api("POST", "/v1.41/networks/create", { Name: "dup", CheckDuplicate: false });
    const second = await api("POST", "/v1.41/networks/create", { Name: "dup", CheckDuplicate: false });
    expect([first.status, second.status]).toEqual([201, 201]);
    const refused = await api("POST", "/networks/create", { Name: "dup", CheckDuplicate: false });
    expect(refused.status).toBe(409);
    for (const n of [spaced, v6, first, second]) await api("DELETE", `/networks/${n.json.Id}`);

    const net = await api("POST", "/networks/create", { Name: "epopts" });
    const id = await create({ Cmd: ["sleep", "1000"], HostConfig: { NetworkMode: "epopts" }, NetworkingConfig: { EndpointsConfig: { epopts: { DriverOpts: { "com.example.opt": "on" }, IPAMConfig: { LinkLocalIPs: ["169.254.8.8"] }, MacAddress: "02:42:ac:11:00:99" } } } });
    const before = (await api("GET", `/containers/${id}/json`)).json.NetworkSettings.Networks.epopts;
    expect(before.MacAddress).toBe("02:42:ac:11:00:99");
    expect(before.DriverOpts).toEqual({ "com.example.opt": "on" });
    expect(before.IPAMConfig.LinkLocalIPs).toEqual(["169.254.8.8"]);
    await start(id);
    const mac = await docker("exec", id, "cat", "/sys/class/net/eth0/address");
    expect(mac.stdout.trim()).toBe("02:42:ac:11:00:99");
    await api("DELETE", `/containers/${id}?force=1`);
    await api("DELETE", `/networks/${net.json.Id}`);
  });

  test("legacy links: the ALIAS_* environment on the default bridge; rm --link drops the link", async () => {
    const db = await create({ Cmd: ["sleep", "1000"], Env: ["SECRET=s3"], ExposedPorts: { "5432/tcp": {} } }, "linkdb");
    await start(db);
    const web = await create({ Cmd: ["sleep", "1000"], HostConfig: { Links: ["linkdb:mydb"] } }, "linkweb");
    await start(web);
    const env = (await docker("exec", "linkweb", "env")).stdout;
    const ip = (await api("GET", `/containers/${db}/json`)).json.NetworkSettings.IPAddress;
    expect(env).toContain("MYDB_NAME=/linkweb/mydb");
    expect(env).toContain(`MYDB_PORT=tcp://${ip}:5432`);
    expect(env).toContain(`MYDB_PORT_5432_TCP_ADDR=${ip}`);
    expect(env).toContain("MYDB_PORT_5432_TCP_PROTO=tcp");
    expect(env).toContain("MYDB_ENV_SECRET=s3");
    const rmLink = await api("DELETE", "/containers/linkweb/mydb?link=1");
    expect(rmLink.status, rmLink.text).toBe(204);
    expect((await api("GET", `/containers/${web}/json`)).json.HostConfig.Links).toBeNull();
    expect((await api("GET", `/containers/${db}/json`)).status).toBe(200);
  });

  test("--device and --device-cgroup-rule are applied; HostConfig.Runtime is shown", async () => {
    const r = await docker("run", "--rm", "--device", "/dev/null:/dev/mynull", "busybox", "sh", "-c", "ls -l /dev/mynull && echo x > /dev/mynull && echo ok");
    expect(r.stdout).toMatch(/^c.* 1,\s+3 .*\/dev\/mynull/m);
    expect(r.stdout).toContain("ok");
    // /dev/loop-control (10:237) is not among Docker's default devices: opening it needs the rule.
    const open = "mknod /tmp/l c 10 237 && : < /tmp/l && echo opened";
    const allowed = await docker("run", "--rm", "--device-cgroup-rule", "c 10:237 rwm", "busybox", "sh", "-c", open);
    expect(allowed.stdout).toContain("opened");
    const denied = await docker("run", "--rm", "busybox", "sh", "-c", open);
    expect(denied.stdout).not.toContain("opened");
    const id = await create({ Cmd: ["true"] });
    expect((await api("GET", `/containers/${id}/json`)).json.HostConfig.Runtime).toBe("runc");
  });

  test.skipIf(skipUnless("--cpu-rt-period and --cpu-rt-runtime reach the container's cgroup (it was stored and never applied)", { "cgroup v1 realtime scheduling (cpu.rt_runtime_us)": require("node:fs").existsSync("/sys/fs/cgroup/cpu/cpu.rt_runtime_us") }))("--cpu-rt-period and --cpu-rt-runtime reach the container's cgroup (it was stored and never applied)", async () => {
    // The containers' parent cgroup needs a real-time budget of its own first (dockerd's --cpu-rt-runtime does that).
    const parent = "/sys/fs/cgroup/cpu/bunker";
    require("node:fs").mkdirSync(parent, { recursive: true });
    require("node:fs").writeFileSync(`${parent}/cpu.rt_runtime_us`, "100000"); // 10% of its 1 s period: room for the 5% asked below
    try {
      const r = await docker("run", "-d", "--cpu-rt-period", "100000", "--cpu-rt-runtime", "5000", "--name", "rt", "busybox", "sleep", "100");
      expect(r.code, r.stderr).toBe(0);
      const id = r.stdout.trim();
      const dir = `${parent}/${id}`;
      expect(require("node:fs").readFileSync(`${dir}/cpu.rt_runtime_us`, "utf8").trim()).toBe("5000");
      expect(require("node:fs").readFileSync(`${dir}/cpu.rt_period_us`, "utf8").trim()).toBe("100000");
      expect((await api("GET", `/containers/${id}/json`)).json.HostConfig.CpuRealtimeRuntime).toBe(5000);
    } finally {
      await docker("rm", "-f", "rt");
      // Give the budget back once the container's cgroup is gone (a child still holding it refuses).
      for (let i = 0; i < 50; i++) {
        try {
          require("node:fs").writeFileSync(`${parent}/cpu.rt_runtime_us`, "0");
          break;
        } catch {
          await Bun.sleep(100);
        }
      }
    }
  });

  test("--ipc and --pid container:<id> share the other container's namespaces; --uts host uses the host's", async () => {
    const holder = await create({ Cmd: ["sleep", "1000"] }, "nsholder");
    await start(holder);
    const pidNs = (await docker("exec", "nsholder", "readlink", "/proc/1/ns/pid")).stdout.trim();
    const ipcNs = (await docker("exec", "nsholder", "readlink", "/proc/self/ns/ipc")).stdout.trim();
    const r = await docker("run", "--rm", "--ipc", "container:nsholder", "--pid", "container:nsholder", "busybox", "sh", "-c", "readlink /proc/self/ns/ipc; readlink /proc/1/ns/pid; ps -o comm | grep -c sleep");
    expect(r.code, r.stderr).toBe(0);
    const [ipc, pid, sleeps] = r.stdout.trim().split("\n");
    expect([ipc, pid]).toEqual([ipcNs, pidNs]);
    expect(Number(sleeps)).toBeGreaterThanOrEqual(1);
    const uts = await docker("run", "--rm", "--uts", "host", "busybox", "hostname");
    expect(uts.stdout.trim()).toBe(require("node:os").hostname());
  });

  test("attach with logs=1 to a stopped container replays its output (no 409)", async () => {
    const id = await create({ Cmd: ["sh", "-c", "echo from-the-past"] });
    await start(id);
    await api("POST", `/containers/${id}/wait`);
    const c = await rawConnect(daemon.socket);
    c.write(`POST /containers/${id}/attach?logs=1&stream=0&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`);
    const out = await Promise.race([c.closed, Bun.sleep(5_000).then(() => c.text())]);
    expect(out).toContain("101 UPGRADED");
    expect(out).toContain("from-the-past");
  });

  test("ps: --filter volume=, expose=, publish= select; a restarting container is listed without -a and shown as Restarting", async () => {
    expect((await docker("run", "-d", "--name", "withvol", "-v", "psvol:/data", "--expose", "7000", "-p", "127.0.0.1:18097:7001", "busybox", "sleep", "1000")).code).toBe(0);
    expect((await docker("run", "-d", "--name", "plain", "busybox", "sleep", "1000")).code).toBe(0);
    const names = async (...f: string[]) => (await docker("ps", "-a", "--format", "{{.Names}}", ...f.flatMap((x) => ["--filter", x]))).stdout.split("\n").filter(Boolean).sort();
    expect(await names("volume=psvol")).toEqual(["withvol"]);
    expect(await names("volume=/data")).toEqual(["withvol"]);
    expect(await names("expose=7000")).toEqual(["withvol"]);
    expect(await names("expose=6990-7005/tcp")).toEqual(["withvol"]);
    expect(await names("publish=7001")).toEqual(["withvol"]);
    expect(await names("publish=7000")).toEqual([]);
    expect((await docker("run", "-d", "--name", "crashloop", "--restart", "always", "busybox", "sh", "-c", "exit 3")).code).toBe(0);
    let row = "";
    for (let i = 0; i < 50 && !row.includes("Restarting"); i++) {
      row = (await docker("ps", "--filter", "name=crashloop", "--format", "{{.Status}}")).stdout;
      if (!row.includes("Restarting")) await Bun.sleep(100);
    }
    expect(row).toMatch(/^Restarting \(3\)/);
    await docker("rm", "-f", "withvol", "plain", "crashloop");
    await docker("volume", "rm", "psvol");
  }, 30_000);

  test("/etc/hosts: --add-host h:host-gateway is the default bridge's gateway; --domainname gives the full name", async () => {
    const gw = (await docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "bridge")).stdout.trim();
    const r = await docker("run", "--rm", "--add-host", "gw.test:host-gateway", "--hostname", "box", "--domainname", "example.org", "busybox", "cat", "/etc/hosts");
    expect(r.stdout).toContain(`${gw}\tgw.test`);
    expect(r.stdout).toMatch(/\tbox\.example\.org box\n/);
  });

  test("top runs ps with the client's arguments and shows user names; --init's PID 1 is docker-init", async () => {
    expect((await docker("run", "-d", "--init", "--name", "topped", "busybox", "sleep", "1000")).code).toBe(0);
    const ef = await docker("top", "topped");
    expect(ef.stdout.split("\n")[0]).toMatch(/^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD/);
    expect(ef.stdout).toMatch(/^root\s+\d+/m);
    expect(ef.stdout).toContain("sleep 1000");
    const aux = await docker("top", "topped", "aux");
    expect(aux.stdout.split("\n")[0]).toMatch(/^USER\s+PID\s+%CPU/);
    const comm = await docker("exec", "topped", "cat", "/proc/1/comm");
    expect(comm.stdout.trim()).toBe("docker-init");
    await docker("rm", "-f", "topped");
  });

  test("diff lists the changed parent directories (C /etc above A /etc/new)", async () => {
    expect((await docker("run", "--name", "differ", "busybox", "sh", "-c", "mkdir -p /etc/deep/er && echo x > /etc/deep/er/f && echo y > /etc/new")).code).toBe(0);
    const lines = (await docker("diff", "differ")).stdout.split("\n").filter(Boolean);
    expect(lines).toContain("C /etc");
    expect(lines).toContain("A /etc/new");
    expect(lines).toContain("A /etc/deep");
    expect(lines).toContain("A /etc/deep/er/f");
    expect(lines.indexOf("C /etc")).toBeLessThan(lines.indexOf("A /etc/new"));
    await docker("rm", "differ");
  });

  test("system df: an image in use is active, container and volume sizes are real; image prune reclaims only freed layers", async () => {
    expect((await docker("run", "-d", "--name", "dfc", "-v", "dfvol:/v", "busybox", "sh", "-c", "head -c 100000 /dev/zero > /v/f; head -c 50000 /dev/zero > /f; sleep 1000")).code).toBe(0);
    await Bun.sleep(500);
    const df = (await api("GET", "/system/df")).json;
    const bb = df.Images.find((i: { RepoTags: string[] }) => i.RepoTags.includes("busybox:latest"));
    expect(bb.Containers).toBeGreaterThanOrEqual(1);
    const c = df.Containers.find((x: { Names: string[] }) => x.Names.includes("/dfc"));
    expect(c.SizeRw).toBeGreaterThanOrEqual(50000);
    const vol = df.Volumes.find((v: { Name: string }) => v.Name === "dfvol");
    expect(vol.UsageData.Size).toBe(100000);
    const table = (await docker("system", "df")).stdout;
    expect(table).toMatch(/^Images\s+\d+\s+[1-9]/m); // ACTIVE is not 0
    await docker("rm", "-f", "-v", "dfc");
    await docker("volume", "rm", "dfvol");
    // Pruning a dangling image on busybox's layer gives back its own small layer only: the
    // busybox layer (about 2 MB) stays with busybox (it used to be counted in full).
    const id = await create({ Cmd: ["true"] });
    const img = await api("POST", `/commit?container=${id}`, {});
    await api("DELETE", `/containers/${id}`);
    const pruned = await api("POST", "/images/prune");
    expect(pruned.status).toBe(200);
    expect(pruned.json.ImagesDeleted.some((l: { Deleted?: string }) => l.Deleted === img.json.Id)).toBe(true);
    expect(pruned.json.SpaceReclaimed).toBeGreaterThan(0);
    expect(pruned.json.SpaceReclaimed).toBeLessThan(512 * 1024);
  }, 30_000);

  test("a pull that fails before any output is an HTTP error; a load of something that is not a tar streams its error", async () => {
    const pull = await api("POST", "/images/create?fromImage=127.0.0.1:9/nothing&tag=x");
    expect(pull.status).toBeGreaterThanOrEqual(400);
    expect(pull.json.message).toBeTruthy();
    const load = await api("POST", "/images/load", "this is not a tar archive".repeat(50));
    expect(load.status).toBe(200);
    expect(load.text).toContain('"errorDetail"');
  });

  test("exec of a missing or non-executable program exits 126 with runc's message on stdout, as dockerd 20.10 does", async () => {
    expect((await docker("run", "-d", "--name", "execfail", "busybox", "sleep", "1000")).code).toBe(0);
    const missing = await docker("exec", "execfail", "nonexist");
    expect(missing.code).toBe(126);
    expect(missing.stdout + missing.stderr).toContain("OCI runtime exec failed");
    expect((await docker("exec", "execfail", "/etc")).code).toBe(126);
    await docker("rm", "-f", "execfail");
  });
});

describe.skipIf(skipUnless("push compresses what is stored uncompressed", { "root": ROOT, "busybox-static": BUSYBOX, "the docker CLI": DOCKER_CLI }))("push compresses what is stored uncompressed", () => {
  test("a loaded image's uncompressed layer goes up gzip-compressed (zstd when asked), once; a pull brings the same image back", async () => {
    const dir = tempDir("bunker-pushgz-");
    const port = 15031;
    const reg = Bun.spawn([BUNKER, "registry", "serve", "--addr", `127.0.0.1:${port}`, "--root", join(dir, "reg")], { stdout: "ignore", stderr: "ignore" });
    const daemon = await startDaemon({ dir: join(dir, "d") });
    const docker = (...a: string[]) => run([DOCKER_CLI!, ...a], { DOCKER_HOST: daemon.host });
    try {
      for (let i = 0; i < 50 && !(await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false)); i++) await Bun.sleep(100);
      const layer = await busyboxLayer({ full: true });
      writeFileSync(join(dir, "bb.tar"), await dockerArchive({ tags: [`127.0.0.1:${port}/gz/busybox:1`], layers: [layer] }));
      expect((await docker("load", "-i", join(dir, "bb.tar"))).code).toBe(0);
      const id = (await docker("image", "inspect", "-f", "{{.Id}}", `127.0.0.1:${port}/gz/busybox:1`)).stdout.trim();
      const push = await docker("push", `127.0.0.1:${port}/gz/busybox:1`);
      expect(push.code, push.stderr).toBe(0);
      const manifest = (await (await fetch(`http://127.0.0.1:${port}/v2/gz/busybox/manifests/1`, { headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json" } })).json()) as { mediaType: string; layers: { mediaType: string; size: number; digest: string }[] };
      expect(manifest.mediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
      expect(manifest.layers[0]!.mediaType).toBe("application/vnd.docker.image.rootfs.diff.tar.gzip");
      expect(manifest.layers[0]!.size).toBeLessThan(layer.length * 0.7);
      const blob = new Uint8Array(await (await fetch(`http://127.0.0.1:${port}/v2/gz/busybox/blobs/${manifest.layers[0]!.digest}`)).arrayBuffer());
      expect([blob[0], blob[1]]).toEqual([0x1f, 0x8b]);
      // The same bytes the second time: the compressed blob was kept.
      expect((await docker("push", `127.0.0.1:${port}/gz/busybox:1`)).stdout).toContain("Layer already exists");
      expect((await docker("rmi", `127.0.0.1:${port}/gz/busybox:1`)).code).toBe(0);
      expect((await docker("pull", `127.0.0.1:${port}/gz/busybox:1`)).code).toBe(0);
      expect((await docker("image", "inspect", "-f", "{{.Id}}", `127.0.0.1:${port}/gz/busybox:1`)).stdout.trim()).toBe(id);
      // zstd when asked (Bunker's compression=zstd on the push request).
      writeFileSync(join(dir, "bb2.tar"), await dockerArchive({ tags: [`127.0.0.1:${port}/zs/busybox:1`], layers: [await busyboxLayer()] }));
      expect((await docker("load", "-i", join(dir, "bb2.tar"))).code).toBe(0);
      const z = await fetch(`http://localhost/images/127.0.0.1:${port}/zs/busybox/push?tag=1&compression=zstd`, { unix: daemon.socket, method: "POST", headers: { "X-Registry-Auth": "e30=" } } as RequestInit);
      expect(await z.text()).toContain("digest:");
      const zm = (await (await fetch(`http://127.0.0.1:${port}/v2/zs/busybox/manifests/1`, { headers: { Accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" } })).json()) as { layers: { mediaType: string }[] };
      expect(zm.layers[0]!.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+zstd");
    } finally {
      await daemon.stop();
      reg.kill();
      cleanup(dir);
    }
  }, 60_000);
});

describe.skipIf(skipUnless("dockerd's daemon flags, applied", { "root": ROOT, "busybox-static": BUSYBOX, "the docker CLI": DOCKER_CLI, "nft (nftables)": Bun.which("nft") }))("dockerd's daemon flags, applied", () => {
  test("--iptables=false installs no rules; --bip sets the default bridge; --log-driver/--log-opt are the containers' default; docker info lists the drivers", async () => {
    const dir = tempDir("bunker-flags-");
    const daemon = await startDaemon({ dir, args: ["--iptables=false", "--bip", "172.29.5.1/24", "-b", "bunkerfl0", "--log-driver", "local", "--log-opt", "max-size=1m", "--plugin-config", 'network.v1.bridge={"table":"noflags"}'] });
    const docker = (...a: string[]) => run([DOCKER_CLI!, ...a], { DOCKER_HOST: daemon.host });
    try {
      writeFileSync(join(dir, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer()] }));
      expect((await docker("load", "-i", join(dir, "busybox.tar"))).code).toBe(0);
      expect((await docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}", "bridge")).stdout.trim()).toBe("172.29.5.0/24 172.29.5.1");
      const r = await docker("run", "--name", "flagged", "busybox", "sh", "-c", "busybox ip -4 -o addr show eth0; echo logged");
      expect(r.stdout).toContain("inet 172.29.5.");
      expect((await docker("inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-size\"}}", "flagged")).stdout.trim()).toBe("local 1m");
      expect((await docker("logs", "flagged")).stdout).toContain("logged");
      expect(Bun.spawnSync([Bun.which("nft")!, "list", "table", "ip", "noflags"]).exitCode).not.toBe(0); // no table at all
      const info = JSON.parse((await docker("info", "--format", "{{json .}}")).stdout);
      expect(info.LoggingDriver).toBe("local");
      expect(info.Plugins.Network).toContain("bridge");
      expect(info.Plugins.Network).toContain("host");
      expect(info.Plugins.Volume).toEqual(["local"]);
      expect(info.Plugins.Log).toContain("json-file");
      await docker("rm", "-f", "flagged");
    } finally {
      await daemon.stop();
      Bun.spawnSync(["ip", "link", "del", "bunkerfl0"]);
      cleanup(dir);
    }
  }, 60_000);

  test("--exec-opt native.cgroupdriver=systemd: docker info says systemd; a container's cgroup is <parent>.slice/docker-<id>.scope; a parent that is no slice is refused", async () => {
    const dir = tempDir("bunker-systemd-");
    const daemon = await startDaemon({ dir, args: ["--exec-opt", "native.cgroupdriver=systemd"] });
    const docker = (...a: string[]) => run([DOCKER_CLI!, ...a], { DOCKER_HOST: daemon.host });
    try {
      writeFileSync(join(dir, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer()] }));
      expect((await docker("load", "-i", join(dir, "busybox.tar"))).code).toBe(0);
      expect((await docker("info", "--format", "{{.CgroupDriver}}")).stdout.trim()).toBe("systemd");
      const cgroupOf = async (name: string) => {
        const pid = (await docker("inspect", "-f", "{{.State.Pid}}", name)).stdout.trim();
        return require("node:fs").readFileSync(`/proc/${pid}/cgroup`, "utf8") as string;
      };
      const a = (await docker("run", "-d", "--network", "none", "--name", "sd1", "busybox", "sleep", "100")).stdout.trim();
      expect(await cgroupOf("sd1")).toContain(`/system.slice/docker-${a}.scope`);
      const b = (await docker("run", "-d", "--network", "none", "--name", "sd2", "--cgroup-parent", "bunkertest-pods.slice", "busybox", "sleep", "100")).stdout.trim();
      expect(await cgroupOf("sd2")).toContain(`/bunkertest.slice/bunkertest-pods.slice/docker-${b}.scope`);
      const bad = await docker("run", "--rm", "--network", "none", "--cgroup-parent", "/not/a/slice", "busybox", "true");
      expect(bad.stderr).toContain('cgroup-parent for systemd cgroup should be a valid slice named as "xxx.slice"');
      await docker("rm", "-f", "sd1", "sd2");
    } finally {
      await daemon.stop();
      cleanup(dir);
    }
  }, 60_000);
});
