/**
 * Containers through the real docker CLI against Bunker (DOCKER_HOST): run in its forms (--rm,
 * piped stdin, -d, -it under a pty), exit codes, logs (tail, timestamps, follow), ps and its
 * filters, inspect, top, stop/kill/restart/rm, pause, rename, wait, bad input with Docker's
 * messages, and the live-restore sequence (SIGKILL the daemon while a container runs).
 */
import { DOCKER, ROOT, skipUnless, waitFor } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, run, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.ts";
import { BUSYBOX, busyboxLayer, dockerArchive } from "../helpers/images.ts";
import { startPluginProcess } from "../helpers/plugin-process.ts";


describe.skipIf(skipUnless("containers through the docker CLI", { "the docker CLI": DOCKER, "root": ROOT, "busybox-static": BUSYBOX }))("containers through the docker CLI", () => {
  let daemon: TestDaemon;
  let dir: string;
  let env: Record<string, string>;
  const docker = (...args: string[]) => run([DOCKER!, ...args], env);
  const dockerIn = (stdin: string, ...args: string[]) => run([DOCKER!, ...args], env, stdin);

  beforeAll(async () => {
    dir = tempDir("bunker-ctr-");
    daemon = await startDaemon({ dir });
    env = { DOCKER_HOST: daemon.host };
    writeFileSync(join(dir, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer()], gzip: true }));
    expect((await docker("load", "-i", join(dir, "busybox.tar"))).code).toBe(0);
  });
  afterAll(async () => {
    await docker("rm", "-f", ...(await docker("ps", "-aq")).stdout.split("\n").filter(Boolean));
    await daemon.stop();
    cleanup(dir);
  });

  test("run --rm prints the output and returns the exit code; the container is gone", async () => {
    const r = await docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3");
    expect(r.stdout).toBe("out\n");
    expect(r.stderr).toBe("err\n");
    expect(r.code).toBe(3);
    expect((await docker("ps", "-aq")).stdout).toBe("");
  });

  test("piped stdin reaches the container and its end of file too (run -i)", async () => {
    const r = await dockerIn("hi\nthere\n", "run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done");
    expect(r.stdout).toBe("hi\nthere\ndone\n");
    expect(r.code).toBe(0);
  });

  test("the image's config and the request merge: env, workdir, user, hostname, entrypoint", async () => {
    const r = await docker("run", "--rm", "-e", "FOO=bar", "-w", "/tmp/work", "-u", "1000:1000", "--hostname", "box", "busybox", "sh", "-c", 'echo $FOO; pwd; id -u; id -g; hostname; echo $PATH');
    expect(r.stdout.split("\n")).toEqual(["bar", "/tmp/work", "1000", "1000", "box", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ""]);
    const e = await docker("run", "--rm", "--entrypoint", "echo", "busybox", "a", "b");
    expect(e.stdout).toBe("a b\n");
  });

  test("Docker's defaults: default capabilities, masked paths, seccomp; --privileged lifts them", async () => {
    const r = await docker("run", "--rm", "busybox", "sh", "-c", "grep CapEff /proc/self/status; cat /proc/kcore | wc -c; grep Seccomp: /proc/self/status");
    expect(r.stdout).toBe("CapEff:\t00000000a80425fb\n0\nSeccomp:\t2\n");
    const p = await docker("run", "--rm", "--privileged", "busybox", "sh", "-c", "grep Seccomp: /proc/self/status; grep CapEff /proc/self/status");
    // Every capability the engine itself holds (this machine's bounding set lacks CAP_SYS_RESOURCE).
    const bounding = /CapBnd:\s+([0-9a-f]+)/.exec(require("node:fs").readFileSync("/proc/self/status", "utf8"))![1];
    expect(p.stdout).toBe(`Seccomp:\t0\nCapEff:\t${bounding}\n`);
    const d = await docker("run", "--rm", "--cap-drop", "ALL", "--cap-add", "CHOWN", "busybox", "grep", "CapEff", "/proc/self/status");
    expect(d.stdout).toBe("CapEff:\t0000000000000001\n");
  });

  test("run -d, logs (tail, timestamps, follow), ps, inspect, top, stop", async () => {
    const d = await docker("run", "-d", "--name", "ticker", "--label", "role=test", "busybox", "sh", "-c", "i=0; while [ $i -lt 1000 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done");
    expect(d.code).toBe(0);
    const id = d.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    await Bun.sleep(600);
    const ps = await docker("ps", "--format", "{{.Names}} {{.Status}}");
    expect(ps.stdout).toMatch(/^ticker Up (Less than a second|\d+ seconds?)\n$/);
    expect((await docker("ps", "-q", "--filter", "label=role=test")).stdout.trim()).toBe(id.slice(0, 12));
    expect((await docker("ps", "-q", "--filter", "label=role=other")).stdout).toBe("");
    expect((await docker("ps", "-q", "--filter", "name=tick", "--filter", "status=running")).stdout.trim()).toBe(id.slice(0, 12));
    const tail = await docker("logs", "--tail", "2", "ticker");
    expect(tail.stdout).toMatch(/^tick \d+\ntick \d+\n$/);
    const ts = await docker("logs", "-t", "--tail", "1", "ticker");
    expect(ts.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z tick \d+\n$/);
    const follow = Bun.spawn([DOCKER!, "logs", "-f", "--tail", "0", "ticker"], { env: { ...process.env, ...env }, stdout: "pipe" });
    const reader = follow.stdout.getReader();
    const got = new TextDecoder().decode((await reader.read()).value);
    expect(got).toMatch(/^tick \d+\n/);
    const insp = JSON.parse((await docker("inspect", "ticker")).stdout)[0];
    expect(insp.State.Running).toBe(true);
    expect(insp.State.Pid).toBeGreaterThan(0);
    expect(insp.Config.Labels.role).toBe("test");
    expect(insp.Name).toBe("/ticker");
    const top = await docker("top", "ticker");
    expect(top.stdout).toContain("sh -c i=0");
    const t0 = performance.now();
    expect((await docker("stop", "-t", "1", "ticker")).code).toBe(0);
    expect(performance.now() - t0).toBeGreaterThan(900); // sh as PID 1 ignores SIGTERM: killed after the timeout
    expect(await follow.exited).toBe(0); // the follower ends with the container
    const after = JSON.parse((await docker("inspect", "ticker")).stdout)[0];
    expect(after.State.Status).toBe("exited");
    expect(after.State.ExitCode).toBe(137);
    expect((await docker("ps", "-aq", "--filter", "exited=137")).stdout.trim()).toBe(id.slice(0, 12));
    expect((await docker("rm", "ticker")).code).toBe(0);
  });

  test("kill, pause/unpause, rename, wait, restart", async () => {
    // PID 1 ignores signals it has no handler for (as with Docker): the shell traps USR1.
    const id = (await docker("run", "-d", "--name", "sleeper", "busybox", "sh", "-c", "trap 'exit 10' USR1; while true; do sleep 0.1; done")).stdout.trim();
    expect((await docker("pause", "sleeper")).code).toBe(0);
    expect((await docker("inspect", "-f", "{{.State.Status}}", "sleeper")).stdout).toBe("paused\n");
    expect((await docker("unpause", "sleeper")).code).toBe(0);
    expect((await docker("rename", "sleeper", "napper")).code).toBe(0);
    expect((await docker("inspect", "-f", "{{.Name}}", id)).stdout).toBe("/napper\n");
    expect((await docker("restart", "-t", "0", "napper")).code).toBe(0);
    expect((await docker("inspect", "-f", "{{.State.Running}}", "napper")).stdout).toBe("true\n");
    const waiting = docker("wait", "napper");
    expect((await docker("kill", "-s", "USR1", "napper")).code).toBe(0);
    expect((await waiting).stdout).toBe("10\n");
    const rm = await docker("rm", "napper");
    expect(rm.code).toBe(0);
  });

  test("exec: output and exit code, piped stdin with end of file, user/env/workdir, -it, -d", async () => {
    await docker("run", "-d", "--name", "execbox", "busybox", "sleep", "60");
    const r = await docker("exec", "execbox", "sh", "-c", "echo in exec; echo err >&2; exit 3");
    expect([r.stdout, r.stderr, r.code]).toEqual(["in exec\n", "err\n", 3]);
    const piped = await dockerIn("one\ntwo\n", "exec", "-i", "execbox", "sh", "-c", "cat; echo eof");
    expect(piped.stdout).toBe("one\ntwo\neof\n");
    const who = await docker("exec", "-u", "1000:1000", "-e", "X=1", "-w", "/tmp", "execbox", "sh", "-c", "echo $(id -u) $X $(pwd)");
    expect(who.stdout).toBe("1000 1 /tmp\n");
    // The exec is in the container's namespaces: same hostname, PID 1 is the container's process.
    const ns = await docker("exec", "execbox", "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '");
    const id = (await docker("inspect", "-f", "{{.Id}}", "execbox")).stdout.trim();
    expect(ns.stdout).toBe(`${id.slice(0, 12)}\nsleep 60 `);
    const script = Bun.which("script");
    if (script) {
      const tty = Bun.spawn([script, "-qec", `${DOCKER} exec -it execbox sh -c 'tty; exit 2'`, "/dev/null"], { env: { ...process.env, ...env }, stdin: "pipe", stdout: "pipe" });
      expect(await new Response(tty.stdout).text()).toContain("/dev/pts/");
      expect(await tty.exited).toBe(2);
    }
    expect(JSON.parse((await docker("inspect", "-f", "{{json .ExecIDs}}", "execbox")).stdout).length).toBeGreaterThanOrEqual(4);
    const sized = (await docker("ps", "-s", "--format", "{{.Size}}", "--filter", "name=execbox")).stdout;
    expect(sized).toMatch(/^\d+(\.\d+)?[kMG]?B \(virtual \d/);
    expect((await docker("exec", "-d", "execbox", "sh", "-c", "echo detached > /tmp/d")).code).toBe(0);
    await waitFor("the detached exec's file", async () => (await docker("exec", "execbox", "cat", "/tmp/d")).code === 0);
    expect((await docker("exec", "execbox", "cat", "/tmp/d")).stdout).toBe("detached\n");
    const noprog = await docker("exec", "execbox", "nosuchprogram");
    expect(noprog.code).toBe(126); // dockerd 20.10: 126 for any exec that cannot start
    expect(noprog.stderr + noprog.stdout).toContain("executable file not found");
    const stopped = await docker("exec", "nonexistent", "true");
    expect(stopped.stderr).toContain("No such container: nonexistent");
    expect((await docker("rm", "-f", "execbox")).code).toBe(0);
  });

  test("volumes and mounts: bind ro, named volume persistence and copy-up, anonymous volumes with rm -v, tmpfs, the volume API", async () => {
    const host = join(dir, "hostdir");
    require("node:fs").mkdirSync(host, { recursive: true });
    writeFileSync(join(host, "f"), "hostfile\n");
    const ro = await docker("run", "--rm", "-v", `${host}:/h:ro`, "busybox", "sh", "-c", "cat /h/f; touch /h/x");
    expect(ro.stdout).toBe("hostfile\n");
    expect(ro.stderr).toContain("Read-only file system");
    expect((await docker("run", "--rm", "--mount", `type=bind,source=${host},target=/h`, "busybox", "sh", "-c", "echo w > /h/w")).code).toBe(0);
    expect(require("node:fs").readFileSync(join(host, "w"), "utf8")).toBe("w\n");
    expect((await docker("run", "--rm", "-v", "vol1:/data", "busybox", "sh", "-c", "echo kept > /data/k")).code).toBe(0);
    expect((await docker("run", "--rm", "-v", "vol1:/data", "busybox", "cat", "/data/k")).stdout).toBe("kept\n");
    // Copy-up: an empty volume mounted over /etc gets the image's /etc.
    expect((await docker("run", "--rm", "-v", "etcvol:/etc", "busybox", "cat", "/etc/passwd")).stdout).toContain("root:x:0:0");
    const t = await docker("run", "--rm", "--tmpfs", "/t:size=1m", "busybox", "sh", "-c", "grep ' /t ' /proc/mounts");
    expect(t.stdout).toMatch(/^tmpfs \/t tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k/);
    expect((await docker("run", "--name", "anon", "-v", "/anon", "busybox", "sh", "-c", "touch /anon/a")).code).toBe(0);
    const mounts = JSON.parse((await docker("inspect", "-f", "{{json .Mounts}}", "anon")).stdout);
    expect(mounts).toHaveLength(1);
    expect(mounts[0]).toMatchObject({ Type: "volume", Destination: "/anon", Driver: "local", RW: true });
    const anonName = mounts[0].Name;
    expect((await docker("volume", "ls", "-q")).stdout.split("\n")).toContain(anonName);
    await docker("run", "-d", "--name", "holder", "-v", "vol1:/x", "busybox", "sleep", "30");
    const busy = await docker("volume", "rm", "vol1");
    expect(busy.stderr).toContain("remove vol1: volume is in use");
    expect((await docker("rm", "-f", "holder")).code).toBe(0);
    expect((await docker("rm", "-v", "anon")).code).toBe(0);
    expect((await docker("volume", "ls", "-q")).stdout.split("\n")).not.toContain(anonName);
    const insp = JSON.parse((await docker("volume", "inspect", "vol1")).stdout)[0];
    expect(insp).toMatchObject({ Name: "vol1", Driver: "local", Scope: "local" });
    expect((await docker("volume", "rm", "vol1", "etcvol")).code).toBe(0);
    expect((await docker("volume", "inspect", "vol1")).stderr).toContain("no such volume");
    const bad = await docker("run", "--rm", "-v", "bad name:/x", "busybox", "true");
    expect(bad.code).toBe(125);
  });

  test("restart policies: on-failure:N retries N times, always restarts until stopped, no does nothing", async () => {
    await docker("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3");
    for (let i = 0; i < 50 && (await docker("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "flaky")).stdout !== "2 exited\n"; i++) await Bun.sleep(100);
    expect((await docker("inspect", "-f", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", "flaky")).stdout).toBe("2 exited 3\n");
    await docker("run", "-d", "--name", "phoenix", "--restart", "always", "busybox", "sh", "-c", "sleep 0.1");
    for (let i = 0; i < 50 && Number((await docker("inspect", "-f", "{{.RestartCount}}", "phoenix")).stdout) < 3; i++) await Bun.sleep(100);
    expect(Number((await docker("inspect", "-f", "{{.RestartCount}}", "phoenix")).stdout)).toBeGreaterThanOrEqual(3);
    expect((await docker("stop", "phoenix")).code).toBe(0);
    const n = (await docker("inspect", "-f", "{{.RestartCount}}", "phoenix")).stdout;
    await Bun.sleep(1000);
    expect((await docker("inspect", "-f", "{{.RestartCount}} {{.State.Running}}", "phoenix")).stdout).toBe(`${n.trim()} false\n`); // stopped means stopped
    await docker("run", "-d", "--name", "once", "busybox", "sh", "-c", "exit 1");
    await waitFor("once to exit", async () => (await docker("inspect", "-f", "{{.State.Status}}", "once")).stdout === "exited\n");
    expect((await docker("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "once")).stdout).toBe("0 exited\n");
    expect((await docker("rm", "-f", "flaky", "phoenix", "once")).code).toBe(0);
  });

  test("cp both ways inside the container's root (a symlink cannot lead out), diff, commit, export", async () => {
    const src = join(dir, "cpsrc");
    require("node:fs").mkdirSync(join(src, "sub"), { recursive: true });
    writeFileSync(join(src, "a.txt"), "a\n");
    writeFileSync(join(src, "sub", "b.txt"), "b\n");
    await docker("run", "-d", "--name", "cpbox", "busybox", "sh", "-c", "ln -s /etc /tmp/evil; sleep 60");
    await waitFor("cpbox's symlink", async () => (await docker("exec", "cpbox", "sh", "-c", "test -L /tmp/evil")).code === 0);
    expect((await docker("cp", src, "cpbox:/tmp/")).code).toBe(0);
    expect((await docker("exec", "cpbox", "cat", "/tmp/cpsrc/a.txt", "/tmp/cpsrc/sub/b.txt")).stdout).toBe("a\nb\n");
    const back = join(dir, "cpback");
    expect((await docker("cp", "cpbox:/tmp/cpsrc", back)).code).toBe(0);
    expect(require("node:fs").readFileSync(join(back, "sub", "b.txt"), "utf8")).toBe("b\n");
    expect((await docker("cp", "cpbox:/etc/passwd", join(dir, "passwd.out"))).code).toBe(0);
    expect(require("node:fs").readFileSync(join(dir, "passwd.out"), "utf8")).toContain("root:x:0:0");
    // A symlink in the container pointing at /etc: copying through it lands in the container's /etc, not the host's.
    const hostEtcBefore = require("node:fs").existsSync("/etc/a.txt");
    expect((await docker("cp", join(src, "a.txt"), "cpbox:/tmp/evil/")).code).toBe(0);
    expect((await docker("exec", "cpbox", "cat", "/etc/a.txt")).stdout).toBe("a\n");
    expect(require("node:fs").existsSync("/etc/a.txt")).toBe(hostEtcBefore);
    const diff = (await docker("diff", "cpbox")).stdout.split("\n");
    expect(diff).toContain("A /tmp/cpsrc/a.txt");
    expect(diff).toContain("A /etc/a.txt");
    expect(diff.some((l) => l === "A /proc" || l === "A /dev")).toBe(false);
    const commit = await docker("commit", "-c", 'CMD ["cat", "/tmp/cpsrc/a.txt"]', "cpbox", "committed:v1");
    expect(commit.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect((await docker("run", "--rm", "committed:v1")).stdout).toBe("a\n");
    const exp = Bun.spawn([DOCKER!, "export", "cpbox"], { env: { ...process.env, ...env }, stdout: "pipe" });
    const names = (await Array.fromAsync((await import("../../src/core/layer/tar-stream.ts")).readTar(exp.stdout as unknown as AsyncIterable<Uint8Array>))).map((e) => e.header.name);
    expect(names).toContain("tmp/cpsrc/sub/b.txt");
    expect(names).toContain("bin/busybox");
    const missing = await docker("cp", "cpbox:/no/such", join(dir, "x"));
    expect(missing.stderr).toContain("Could not find the file /no/such in container");
    expect((await docker("rm", "-f", "cpbox")).code).toBe(0);
    // Paths under a volume or a bind mount are read and written in that mount, not in the root below it.
    await docker("run", "-d", "--name", "cpvol", "-v", "cpdata:/data", "-v", `${src}:/bound:ro`, "busybox", "sh", "-c", "echo in-volume > /data/f; sleep 60");
    for (let i = 0; i < 50 && (await docker("exec", "cpvol", "cat", "/data/f")).stdout !== "in-volume\n"; i++) await Bun.sleep(50);
    expect((await docker("cp", "cpvol:/data/f", join(dir, "vol.out"))).code).toBe(0);
    expect(require("node:fs").readFileSync(join(dir, "vol.out"), "utf8")).toBe("in-volume\n");
    expect((await docker("cp", join(src, "a.txt"), "cpvol:/data/")).code).toBe(0);
    expect((await docker("exec", "cpvol", "cat", "/data/a.txt")).stdout).toBe("a\n");
    expect((await docker("cp", "cpvol:/bound/sub/b.txt", join(dir, "bound.out"))).code).toBe(0);
    expect(require("node:fs").readFileSync(join(dir, "bound.out"), "utf8")).toBe("b\n");
    expect((await docker("cp", "cpvol:/etc/hostname", join(dir, "hostname.out"))).code).toBe(0);
    expect(require("node:fs").readFileSync(join(dir, "hostname.out"), "utf8")).toMatch(/^[0-9a-f]{12}\n$/);
    expect((await docker("rm", "-f", "-v", "cpvol")).code).toBe(0);
    expect((await docker("volume", "rm", "cpdata")).code).toBe(0);
    expect((await docker("rmi", "committed:v1")).code).toBe(0);
  });

  test("stats from the cgroup, events for the lifecycle, system df, container prune", async () => {
    const since = Math.floor(Date.now() / 1000) - 1;
    await docker("run", "-d", "--name", "busy", "-m", "64m", "--pids-limit", "50", "busybox", "sh", "-c", "while true; do :; done");
    await Bun.sleep(600);
    const st = await docker("stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}", "busy");
    const [name, cpu, usage, , limit, pids] = st.stdout.trim().split(" ");
    expect(name).toBe("busy");
    expect(Number.parseFloat(cpu!)).toBeGreaterThan(20); // a busy loop
    expect(usage).toMatch(/B$/);
    expect(limit).toBe("64MiB");
    expect(pids).toBe("1");
    expect((await docker("rm", "-f", "busy")).code).toBe(0);
    await docker("run", "--name", "short", "busybox", "true");
    const df = await docker("system", "df", "--format", "{{.Type}} {{.TotalCount}}");
    expect(df.stdout).toContain("Containers 1");
    const prune = await docker("container", "prune", "-f");
    expect(prune.stdout).toContain("Deleted Containers:");
    expect((await docker("ps", "-aq")).stdout).toBe("");
    const ev = await docker("events", "--since", String(since), "--until", String(Math.floor(Date.now() / 1000) + 1), "--filter", "container=short", "--format", "{{.Action}}");
    expect(ev.stdout.split("\n").filter(Boolean)).toEqual(["create", "attach", "start", "die", "destroy"]); // docker run attaches before it starts
  });

  test("health checks: healthy and unhealthy with Docker's rules, shown in inspect and ps, filterable", async () => {
    await docker("run", "-d", "--name", "hgood", "--health-cmd", "test -e /bin/sh", "--health-interval", "100ms", "busybox", "sleep", "30");
    await docker("run", "-d", "--name", "hbad", "--health-cmd", "exit 3", "--health-interval", "100ms", "--health-retries", "2", "busybox", "sleep", "30");
    const status = async (n: string) => (await docker("inspect", "-f", "{{.State.Health.Status}}", n)).stdout.trim();
    for (let i = 0; i < 40 && ((await status("hgood")) !== "healthy" || (await status("hbad")) !== "unhealthy"); i++) await Bun.sleep(100);
    expect(await status("hgood")).toBe("healthy");
    expect(await status("hbad")).toBe("unhealthy");
    const log = JSON.parse((await docker("inspect", "-f", "{{json .State.Health}}", "hbad")).stdout);
    expect(log.FailingStreak).toBeGreaterThanOrEqual(2);
    expect(log.Log.at(-1).ExitCode).toBe(3);
    expect((await docker("ps", "--format", "{{.Names}} {{.Status}}", "--filter", "name=hgood")).stdout).toMatch(/^hgood Up .* \(healthy\)\n$/);
    expect((await docker("ps", "-q", "--filter", "health=unhealthy")).stdout.trim().length).toBe(12);
    expect((await docker("rm", "-f", "hgood", "hbad")).code).toBe(0);
  });

  test("--init: PID 1 is a minimal init that forwards signals (stop is quick) and reaps orphans", async () => {
    await docker("run", "-d", "--init", "--name", "withinit", "busybox", "sleep", "30");
    await waitFor("withinit's program", async () => /\n\s*\d+ sleep\n/.test((await docker("exec", "withinit", "ps", "-o", "pid,comm")).stdout));
    const ps = await docker("exec", "withinit", "ps", "-o", "pid,comm");
    expect(ps.stdout).toMatch(/\n\s*\d+ sleep\n/); // the program is not PID 1…
    expect(ps.stdout).not.toMatch(/\n\s*1 sleep\n/);
    const t0 = performance.now();
    expect((await docker("stop", "-t", "10", "withinit")).code).toBe(0);
    expect(performance.now() - t0).toBeLessThan(5000); // …so SIGTERM reaches it (PID 1 would ignore it)
    expect((await docker("inspect", "-f", "{{.State.ExitCode}}", "withinit")).stdout).toBe("143\n");
    // Orphans are reaped: a background child whose parent exited leaves no zombie.
    const z = await docker("run", "--rm", "--init", "busybox", "sh", "-c", "sh -c 'sleep 0.2 &'; sleep 0.6; ps -o stat,comm | grep -c '^Z' || true");
    expect(z.stdout.trim()).toBe("0");
    const code = await docker("run", "--rm", "--init", "busybox", "sh", "-c", "exit 7");
    expect(code.code).toBe(7);
    expect((await docker("rm", "withinit")).code).toBe(0);
  });

  test("update changes a running container's limits in its cgroup; logs rotate at max-size", async () => {
    const id = (await docker("run", "-d", "--name", "upd", "-m", "64m", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "busybox", "sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done; sleep 30")).stdout.trim();
    expect((await docker("update", "-m", "256m", "--memory-swap", "512m", "--pids-limit", "99", "upd")).code).toBe(0);
    const cg = (ctrl: string, file: string) => require("node:fs").readFileSync(`/sys/fs/cgroup/${ctrl}/bunker/${id}/${file}`, "utf8").trim();
    if (require("node:fs").existsSync(`/sys/fs/cgroup/memory/bunker/${id}`)) {
      expect(cg("memory", "memory.limit_in_bytes")).toBe(String(256 * 1024 * 1024));
      expect(cg("pids", "pids.max")).toBe("99");
    }
    expect((await docker("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}", "upd")).stdout).toBe(`${256 * 1024 * 1024} 99\n`);
    let logs: string[] = [];
    for (let i = 0; i < 50; i++) {
      logs = (await docker("logs", "upd")).stdout.split("\n").filter(Boolean);
      if (logs.at(-1)?.startsWith("line-199")) break;
      await Bun.sleep(100);
    }
    expect(logs.length).toBeLessThan(200); // rotated: only the last files are kept
    expect(logs.at(-1)).toBe("line-199-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    const files = require("node:fs").readdirSync(join(daemon.dataRoot, "containers", id)).filter((f: string) => f.includes("-json.log"));
    expect(files.sort()).toEqual([`${id}-json.log`, `${id}-json.log.1`]);
    expect((await docker("rm", "-f", "upd")).code).toBe(0);
  });

  test("the local log driver: Docker's framed files, rotated and gzip-compressed; logs reads them back, partial last line included", async () => {
    const id = (await docker("run", "-d", "--log-driver", "local", "--log-opt", "max-size=1k", "--log-opt", "max-file=3", "busybox", "sh", "-c", "i=0; while [ $i -lt 200 ]; do echo local-$i-xxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done; printf no-newline >&2")).stdout.trim();
    expect((await docker("wait", id)).stdout.trim()).toBe("0");
    const logs = await docker("logs", id);
    const out = logs.stdout.split("\n").filter(Boolean);
    expect(out.at(-1)).toBe("local-199-xxxxxxxxxxxxxxxxxxxxxxxx");
    expect(out.length).toBeLessThan(200); // rotated: only three files are kept
    expect(logs.stderr).toBe("no-newline");
    const dir = join(daemon.dataRoot, "containers", id, "local-logs");
    expect(require("node:fs").readdirSync(dir).sort()).toEqual(["container.log", "container.log.1.gz", "container.log.2.gz"]);
    expect(require("node:fs").readdirSync(join(daemon.dataRoot, "containers", id)).some((f: string) => f.includes("-json.log"))).toBe(false);
    expect((await docker("inspect", "-f", "{{.HostConfig.LogConfig.Type}}|{{.LogPath}}", id)).stdout.trim()).toBe("local|");
    const tail = await docker("logs", "--tail", "2", id); // the last two entries, of both streams
    expect([tail.stdout, tail.stderr]).toEqual(["local-199-xxxxxxxxxxxxxxxxxxxxxxxx\n", "no-newline"]);
    expect((await docker("rm", id)).code).toBe(0);
  });

  test("attach to a running terminal container and leave with the detach keys", async () => {
    // docker attach to a running terminal container, leaving with the detach keys (ctrl-p ctrl-q):
    // it keeps running (Docker offers detaching only with -i -t).
    await docker("run", "-dit", "--name", "att", "busybox", "sh");
    const script = Bun.which("script");
    if (script) {
      const a = Bun.spawn([script, "-qec", `${DOCKER} attach att`, "/dev/null"], { env: { ...process.env, ...env }, stdin: "pipe", stdout: "pipe" });
      await Bun.sleep(500);
      a.stdin.write("echo attached-$((40+2))\r");
      a.stdin.flush();
      await Bun.sleep(300);
      a.stdin.write(new Uint8Array([16, 17]));
      a.stdin.flush();
      const out = await new Response(a.stdout).text();
      expect(out).toContain("attached-42");
      expect(out).toContain("read escape sequence");
      expect((await docker("inspect", "-f", "{{.State.Running}}", "att")).stdout).toBe("true\n");
    }
    expect((await docker("rm", "-f", "att")).code).toBe(0);
  });

  test("a volume plugin (Docker's VolumeDriver protocol, out of process) creates, mounts, unmounts and removes a volume", async () => {
    const pluginDir = join(daemon.dir, "plugins");
    require("node:fs").mkdirSync(pluginDir, { recursive: true });
    const plugin = await startPluginProcess("volume-plugin.ts", [join(pluginDir, "testvd.sock"), join(dir, "testvd-data")]);
    const lines = plugin.lines;
    try {
      // The daemon finds plugins in its docker-plugin-dirs (a restart with the config key).
      await daemon.stop();
      writeFileSync(join(daemon.dir, "daemon.json"), JSON.stringify({ "docker-plugin-dirs": [pluginDir] }));
      daemon = await startDaemon({ dir: daemon.dir, configFile: join(daemon.dir, "daemon.json") });
      env = { DOCKER_HOST: daemon.host };
      expect((await docker("volume", "create", "-d", "testvd", "pv1")).stdout).toBe("pv1\n");
      expect((await docker("volume", "inspect", "-f", "{{.Driver}}", "pv1")).stdout).toBe("testvd\n");
      expect((await docker("run", "--rm", "-v", "pv1:/data", "busybox", "sh", "-c", "echo via-plugin > /data/f")).code).toBe(0);
      expect(require("node:fs").readFileSync(join(dir, "testvd-data", "pv1", "f"), "utf8")).toBe("via-plugin\n");
      // The plugin's Get gives inspect its mountpoint; its List adds volumes made on its side.
      expect((await docker("volume", "inspect", "-f", "{{.Mountpoint}}", "pv1")).stdout.trim()).toBe(join(dir, "testvd-data", "pv1"));
      require("node:fs").mkdirSync(join(dir, "testvd-data", "made-outside"));
      expect((await docker("volume", "ls", "--format", "{{.Driver}} {{.Name}}")).stdout).toContain("testvd made-outside");
      expect((await docker("volume", "rm", "pv1")).code).toBe(0);
      expect(require("node:fs").existsSync(join(dir, "testvd-data", "pv1"))).toBe(false);
      const calls = lines.map((l) => l.split(" ")[0]);
      for (const m of ["Plugin.Activate", "VolumeDriver.Create", "VolumeDriver.Mount", "VolumeDriver.Unmount", "VolumeDriver.Remove", "VolumeDriver.Get", "VolumeDriver.List"]) expect(calls).toContain(m);
      const missing = await docker("volume", "create", "-d", "nosuchdriver", "pv2");
      expect(missing.stderr).toContain('plugin "nosuchdriver" not found');
    } finally {
      plugin.kill();
    }
  });

  test("bad input gets Docker's status and message", async () => {
    const missing = await docker("run", "--rm", "--pull", "never", "nosuchimage:1");
    expect(missing.stderr).toContain("No such image: nosuchimage:1");
    expect(missing.code).toBe(125);
    // A program that does not exist fails the start; the container's cgroup goes with it.
    const noexec = (await docker("create", "busybox", "/no/such")).stdout.trim();
    expect((await docker("start", noexec)).code).not.toBe(0);
    for (const ctrl of ["pids", "memory", "cpu,cpuacct"]) expect(existsSync(`/sys/fs/cgroup/${ctrl}/bunker/${noexec}`)).toBe(false);
    await docker("rm", noexec);
    await docker("create", "--name", "dup", "busybox", "true");
    const dup = await docker("create", "--name", "dup", "busybox", "true");
    expect(dup.stderr).toContain('Conflict. The container name "/dup" is already in use by container');
    const mem = await docker("create", "-m", "1k", "busybox", "true");
    expect(mem.stderr).toContain("Minimum memory limit allowed is 6MB");
    const api = (path: string, body: unknown) =>
      fetch(`http://localhost/v1.51${path}`, { unix: daemon.socket, method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } } as RequestInit);
    const restart = await api("/containers/create", { Image: "busybox", HostConfig: { AutoRemove: true, RestartPolicy: { Name: "always" } } });
    expect(restart.status).toBe(400);
    expect(((await restart.json()) as { message: string }).message).toBe("can't create 'AutoRemove' container with restart policy");
    const policy = await api("/containers/create", { Image: "busybox", HostConfig: { RestartPolicy: { Name: "sometimes" } } });
    expect(policy.status).toBe(400);
    const bind = await docker("create", "-v", "/no/such/dir:/x", "busybox", "true");
    expect(bind.stderr).toContain("bind source path does not exist: /no/such/dir");
    const noprog = await docker("run", "--rm", "busybox", "/no/such/program");
    expect(noprog.code).toBe(127);
    const body = await api("/containers/create", { Image: "busybox", Env: "notalist" });
    expect(body.status).toBe(400);
    expect(((await body.json()) as { message: string }).message).toContain("Env");
    expect((await docker("rm", "dup")).code).toBe(0);
    expect((await docker("version")).code).toBe(0); // still serving
  });

  test("-it under a pseudo-terminal: a shell with a tty, input echoed, exit code back", async () => {
    const script = Bun.which("script");
    if (!script) return;
    const p = Bun.spawn([script, "-qec", `${DOCKER} run -it --rm busybox sh -c 'tty; read x; echo got:$x; exit 4'`, "/dev/null"], { env: { ...process.env, ...env }, stdin: "pipe", stdout: "pipe" });
    // Type only once the shell has printed its terminal (it then reads), and give up with what
    // was seen rather than hang.
    let out = "";
    const reader = p.stdout.getReader();
    const deadline = Date.now() + 15_000;
    let typed = false;
    while (Date.now() < deadline) {
      const r = await Promise.race([reader.read(), Bun.sleep(500).then(() => undefined)]);
      if (r?.done) break;
      if (r?.value) out += new TextDecoder().decode(r.value);
      if (!typed && out.includes("/dev/pts/")) {
        p.stdin.write("hello\r");
        p.stdin.flush();
        typed = true;
      }
    }
    if (Date.now() >= deadline) p.kill();
    expect(out).toContain("/dev/pts/0");
    expect(out).toContain("got:hello");
    expect(await p.exited).toBe(4);
  });

  test("live restore: the daemon is SIGKILLed while a container runs; it keeps running and logging; a restarted daemon re-attaches and records the exit", async () => {
    const id = (await docker("run", "-d", "--name", "survivor", "busybox", "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; sleep 0.3; done; exit 5")).stdout.trim();
    const goner = (await docker("run", "-d", "--name", "goner", "busybox", "sleep", "60")).stdout.trim();
    const phoenix = (await docker("run", "-d", "--name", "phoenix2", "--restart", "always", "busybox", "sleep", "60")).stdout.trim();
    await Bun.sleep(400);
    daemon.proc.kill("SIGKILL");
    await daemon.proc.exited;
    // While the daemon is away: one container dies with its monitor (nothing recorded: 255, as
    // Docker reports a container found dead); one exits normally and its policy says restart.
    const runtimeState = (cid: string) => JSON.parse(require("node:fs").readFileSync(join(daemon.execRoot, "runtime.v1.linux", cid, "state.json"), "utf8"));
    const g = runtimeState(goner);
    process.kill(g.monitorPid, "SIGKILL");
    process.kill(g.pid, "SIGKILL");
    process.kill(runtimeState(phoenix).pid, "SIGKILL");
    const pid = JSON.parse(await Bun.file(join(daemon.dataRoot, "containers", id, "config.v2.json")).text()).State.Pid;
    expect(existsSync(`/proc/${pid}`)).toBe(true); // still running without the daemon
    await Bun.sleep(1200);
    daemon = await startDaemon({ dir });
    env = { DOCKER_HOST: daemon.host };
    expect((await docker("ps", "--format", "{{.Names}}", "--filter", "name=survivor")).stdout).toBe("survivor\n");
    expect((await docker("wait", "survivor")).stdout).toBe("5\n");
    const logs = await docker("logs", "survivor");
    expect(logs.stdout).toBe([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((i) => `line ${i}\n`).join(""));
    expect((await docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "survivor")).stdout).toBe("exited 5\n");
    expect((await docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "goner")).stdout).toBe("exited 255\n");
    for (let i = 0; i < 30 && (await docker("inspect", "-f", "{{.State.Running}}", "phoenix2")).stdout !== "true\n"; i++) await Bun.sleep(100);
    expect((await docker("inspect", "-f", "{{.State.Running}} {{.RestartCount}}", "phoenix2")).stdout).toBe("true 1\n");
    expect((await docker("rm", "-f", "survivor", "goner", "phoenix2")).code).toBe(0);
  });
});
