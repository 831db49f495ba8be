/**
 * The same container scenarios through the two SDKs people drive Docker with, unchanged:
 * dockerode (npm) and docker-py (Debian's python3-docker): run with output, detached run, logs,
 * exec with exit code, list, inspect, stop, remove, volumes.
 */
import { ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import Docker from "dockerode";
import { cleanup, run, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.ts";
import { BUSYBOX, busyboxLayer, dockerArchive } from "../helpers/images.ts";

const PY = "/usr/bin/python3";
const HAVE_PY_DOCKER = existsSync(PY) && Bun.spawnSync([PY, "-c", "import docker"]).exitCode === 0;

describe.skipIf(skipUnless("SDK clients against Bunker", { "root": ROOT, "busybox-static": BUSYBOX }))("SDK clients against Bunker", () => {
  let daemon: TestDaemon;
  let dir: string;

  beforeAll(async () => {
    dir = tempDir("bunker-sdk-");
    daemon = await startDaemon({ dir });
    const tar = join(dir, "busybox.tar");
    writeFileSync(tar, await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer()], gzip: true }));
    const docker = new Docker({ socketPath: daemon.socket });
    const stream = await docker.loadImage(tar);
    await new Response(stream as unknown as ReadableStream).text();
  });
  afterAll(async () => {
    // Containers outlive a stopped daemon (live restore): remove what a failed test left running.
    const left = (await fetch("http://localhost/containers/json?all=1", { unix: daemon.socket } as RequestInit).then((r) => r.json())) as { Id: string }[];
    for (const c of left) await fetch(`http://localhost/containers/${c.Id}?force=1&v=1`, { unix: daemon.socket, method: "DELETE" } as RequestInit);
    await daemon.stop();
    cleanup(dir);
  });

  test("dockerode: run with output, detached run, logs, exec, list, inspect, stop, remove", async () => {
    const docker = new Docker({ socketPath: daemon.socket });
    // docker.run: create, attach (dockerode takes the 200 path, not the upgrade), start, wait.
    const out = new PassThrough();
    let text = "";
    out.on("data", (d) => (text += d.toString()));
    const [result, container] = await docker.run("busybox", ["sh", "-c", "echo from dockerode; exit 2"], out);
    expect(result.StatusCode).toBe(2);
    for (let i = 0; i < 50 && !text; i++) await Bun.sleep(10); // the attach stream may end after the wait answers
    expect(text).toBe("from dockerode\r\n"); // dockerode's run asks for a TTY by default
    await container.remove();

    const c = await docker.createContainer({ Image: "busybox", Cmd: ["sh", "-c", "echo started; sleep 30"], name: "node-sdk", Labels: { sdk: "dockerode" } });
    await c.start();
    await Bun.sleep(300);
    const logs = (await c.logs({ stdout: true, stderr: true })) as unknown as Buffer;
    // Multiplexed: an 8-byte header, then the line.
    expect(logs[0]).toBe(1);
    expect(logs.subarray(8).toString()).toBe("started\n");
    const list = await docker.listContainers({ filters: { label: ["sdk=dockerode"] } });
    expect(list.map((x) => x.Names[0])).toEqual(["/node-sdk"]);
    const info = await c.inspect();
    expect(info.State.Running).toBe(true);
    const exec = await c.exec({ Cmd: ["sh", "-c", "echo in exec; exit 5"], AttachStdout: true, AttachStderr: true });
    const es = await exec.start({ hijack: true, stdin: false });
    let execOut = "";
    const demux = new PassThrough();
    demux.on("data", (d) => (execOut += d.toString()));
    docker.modem.demuxStream(es, demux, demux);
    await new Promise((r) => es.on("end", r));
    expect(execOut).toBe("in exec\n");
    expect((await exec.inspect()).ExitCode).toBe(5);
    await c.stop({ t: 0 });
    expect((await c.inspect()).State.Status).toBe("exited");
    await c.remove();
    const vol = await docker.createVolume({ Name: "sdkvol" });
    expect((vol as unknown as { name: string }).name).toBe("sdkvol");
    await docker.getVolume("sdkvol").remove();
  });

  test("dockerode: pause, kill, restart, top, stats, archive both ways, commit, events, networks with a published port", async () => {
    const docker = new Docker({ socketPath: daemon.socket });
    const since = Math.floor(Date.now() / 1000);
    const c = await docker.createContainer({ Image: "busybox", Cmd: ["sh", "-c", "mkdir -p /www; echo sdk-web > /www/index.html; exec busybox httpd -f -p 80 -h /www"], name: "node-more", ExposedPorts: { "80/tcp": {} }, HostConfig: { PortBindings: { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "18095" }] } } });
    await c.start();
    let body = "";
    for (let i = 0; i < 30 && !body; i++) body = await fetch("http://127.0.0.1:18095/").then((r) => r.text(), async () => (await Bun.sleep(100), ""));
    expect(body).toBe("sdk-web\n");
    expect((await c.inspect()).NetworkSettings.Ports["80/tcp"]).toEqual([{ HostIp: "127.0.0.1", HostPort: "18095" }]);
    await c.pause();
    expect((await c.inspect()).State.Paused).toBe(true);
    await c.unpause();
    const top = await c.top();
    expect(top.Processes.some((p: string[]) => p.join(" ").includes("httpd"))).toBe(true);
    const stats = (await c.stats({ stream: false })) as unknown as { memory_stats: { usage: number }; networks: Record<string, { rx_bytes: number }> };
    expect(stats.memory_stats.usage).toBeGreaterThan(0);
    expect(stats.networks.eth0!.rx_bytes).toBeGreaterThan(0);
    // Archive in, then out: a tar with one file.
    const tar = Bun.spawnSync(["tar", "-c", "-C", dir, "busybox.tar"]).stdout;
    await c.putArchive(Buffer.from(tar), { path: "/tmp" });
    const back = await new Response((await c.getArchive({ path: "/tmp/busybox.tar" })) as unknown as ReadableStream).arrayBuffer();
    expect(back.byteLength).toBeGreaterThan(1024);
    const img = await c.commit({ repo: "sdk-committed", tag: "v1" });
    expect((await docker.getImage("sdk-committed:v1").inspect()).Id).toBe(img.Id);
    await c.restart({ t: 0 });
    expect((await c.inspect()).RestartCount).toBeGreaterThanOrEqual(0);
    await c.kill();
    await c.wait();
    expect((await c.inspect()).State.Running).toBe(false);
    // A user network: create, connect, inspect.
    const net = await docker.createNetwork({ Name: "sdknet" });
    await c.start();
    await net.connect({ Container: c.id });
    const ni = await net.inspect();
    expect(Object.keys(ni.Containers ?? {})).toEqual([c.id]);
    await net.disconnect({ Container: c.id });
    await c.remove({ force: true });
    await net.remove();
    await docker.getImage("sdk-committed:v1").remove();
    const events = (await docker.getEvents({ since, until: Math.floor(Date.now() / 1000) + 1 })) as unknown as NodeJS.ReadableStream;
    const text = await new Response(events as unknown as ReadableStream).text();
    const actions = text.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { Type: string; Action: string }).map((e) => `${e.Type}:${e.Action.split(":")[0]}`);
    for (const a of ["container:create", "container:start", "container:pause", "container:unpause", "container:kill", "container:die", "container:destroy", "network:create", "network:connect", "network:disconnect", "network:destroy", "image:delete"]) expect(actions).toContain(a);
  });

  test.skipIf(skipUnless("docker-py: run, detached run, logs, exec_run, list, stop, remove, volumes", { "python3-docker": HAVE_PY_DOCKER }))("docker-py: run, detached run, logs, exec_run, list, stop, remove, volumes", async () => {
    const script = `
import docker, sys
c = docker.DockerClient(base_url="unix://${daemon.socket}")
assert c.ping()
out = c.containers.run("busybox", ["sh", "-c", "echo from docker-py"], remove=True)
assert out == b"from docker-py\\n", out
d = c.containers.run("busybox", ["sh", "-c", "echo ready; sleep 30"], detach=True, name="py-sdk", labels={"sdk": "py"})
import time; time.sleep(0.3)
assert d.logs() == b"ready\\n", d.logs()
r = d.exec_run(["sh", "-c", "echo in exec; exit 4"])
assert r.exit_code == 4 and r.output == b"in exec\\n", r
assert [x.name for x in c.containers.list(filters={"label": "sdk=py"})] == ["py-sdk"]
d.reload(); assert d.status == "running", d.status
d.stop(timeout=0); d.reload(); assert d.status == "exited", d.status
d.remove()
v = c.volumes.create("pyvol"); assert v.name == "pyvol"
w = c.containers.run("busybox", ["sh", "-c", "echo kept > /data/f; sleep 30"], detach=True, volumes={"pyvol": {"bind": "/data", "mode": "rw"}}, ports={"80/tcp": ("127.0.0.1", 18096)})
time.sleep(0.3)
w.pause(); w.reload(); assert w.status == "paused", w.status
w.unpause()
assert any("sleep" in " ".join(p) for p in w.top()["Processes"])
st = w.stats(stream=False); assert st["memory_stats"]["usage"] > 0
bits, stat = w.get_archive("/data/f"); assert stat["name"] == "f"
w.reload(); assert w.ports["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": "18096"}], w.ports
n = c.networks.create("pynet"); n.connect(w); n.reload(); assert [x.name for x in n.containers] == ["pyw"] or len(n.containers) == 1
n.disconnect(w); n.remove()
img = w.commit("py-committed", "v1"); c.images.remove("py-committed:v1")
w.kill(); w.wait(); w.remove(v=True)
v.remove()
try:
    c.containers.get("py-sdk"); sys.exit("still there")
except docker.errors.NotFound:
    pass
print("ok")
`;
    const r = await run([PY, "-c", script]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("ok\n");
    expect(r.code).toBe(0);
  });
});
