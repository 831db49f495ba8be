/**
 * The OCI runtime on the real kernel, through `bunker runtime` (runc's command line) and the
 * compiled executable: namespaces, mounts, masked and read-only paths, capabilities, rlimits,
 * the create/start/state/kill/delete lifecycle, and bad input that must leave nothing behind.
 */
import { ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Spec } from "../../src/core/runtime/oci.ts";
import { BUNKER, cleanup, ensureBuilt, run, tempDir } from "../helpers/daemon.ts";
import { busyboxRootfs, testSpec, writeBundle } from "../helpers/bundle.ts";
import { BUSYBOX } from "../helpers/images.ts";


describe.skipIf(skipUnless("bunker runtime on the real kernel", { "root": ROOT, "busybox-static": BUSYBOX }))("bunker runtime on the real kernel", () => {
  let dir: string;
  let rootfs: string;
  let stateRoot: string;
  let n = 0;
  const rt = (...args: string[]) => run([BUNKER, "runtime", "--root", stateRoot, ...args]);
  /** `bunker runtime run` of `args` in a fresh bundle; returns the result. */
  async function runIn(args: string[], edit?: (s: Spec) => void) {
    const id = `c${++n}`;
    const bundle = writeBundle(join(dir, id), rootfs, testSpec(args, edit));
    return { id, ...(await rt("run", "--bundle", bundle, id)) };
  }

  beforeAll(async () => {
    ensureBuilt();
    dir = tempDir("bunker-rt-");
    rootfs = await busyboxRootfs(dir);
    stateRoot = join(dir, "state");
  });
  afterAll(() => cleanup(dir));

  test("PID 1, its own hostname, and no host processes in sight", async () => {
    const r = await runIn(["sh", "-c", "echo pid=$$; hostname; ps -o pid,comm; true"], (s) => void (s.hostname = "box1"));
    expect(r.stderr).toBe("");
    const [pid, host, header, ...procs] = r.stdout.trim().split("\n");
    expect([pid, host, header?.trim()]).toEqual(["pid=1", "box1", "PID   COMMAND"]);
    // Only the shell (PID 1) and ps itself: nothing of the host's.
    expect(procs.map((l) => l.trim().split(/\s+/)[1])).toEqual(["sh", "ps"]);
    expect(procs[0]!.trim().split(/\s+/)[0]).toBe("1");
    expect(r.code).toBe(0);
  });

  test.skipIf(skipUnless("runc's own default bundle (`runc spec`: ambient capabilities, no inheritable ones) runs", { "runc": Bun.which("runc") }))("runc's own default bundle (`runc spec`: ambient capabilities, no inheritable ones) runs", async () => {
    const bundle = join(dir, "runc-default");
    require("node:fs").mkdirSync(bundle, { recursive: true });
    expect(Bun.spawnSync([Bun.which("runc")!, "spec", "--bundle", bundle]).exitCode).toBe(0);
    const spec = JSON.parse(require("node:fs").readFileSync(join(bundle, "config.json"), "utf8"));
    expect(spec.process.capabilities.ambient.length).toBeGreaterThan(0);
    spec.process.terminal = false;
    spec.process.args = ["sh", "-c", "grep CapAmb /proc/self/status; echo ran"];
    spec.root.path = rootfs;
    require("node:fs").writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
    const r = await rt("run", "--bundle", bundle, "runcdefault");
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("ran");
    expect(r.code).toBe(0);
  });

  test("the exit code comes back; state is removed after run", async () => {
    const r = await runIn(["sh", "-c", "exit 7"]);
    expect(r.code).toBe(7);
    expect(existsSync(join(stateRoot, r.id))).toBe(false);
  });

  test("mounts as specified: proc, a tmpfs /dev with the default devices, devpts, sysfs read-only, a bind mount", async () => {
    require("node:fs").mkdirSync(join(dir, "data-src"), { recursive: true });
    require("node:fs").writeFileSync(join(dir, "data-src", "hello"), "hi\n");
    const r2 = await runIn(["sh", "-c", "grep -E ' /(proc|dev|dev/pts|sys|data) ' /proc/mounts | cut -d' ' -f2,3,4 | cut -d, -f1; ls /dev; cat /data/hello; touch /data/x"], (s) => {
      s.mounts!.push({ destination: "/data", type: "bind", source: join(dir, "data-src"), options: ["rbind", "ro"] });
    });
    const lines = r2.stdout.split("\n");
    expect(lines).toContain("/proc proc rw");
    expect(lines).toContain("/dev tmpfs rw");
    expect(lines).toContain("/dev/pts devpts rw");
    expect(lines).toContain("/sys sysfs ro");
    expect(lines.find((l) => l.startsWith("/data "))?.endsWith(" ro")).toBe(true);
    for (const d of ["null", "zero", "full", "random", "urandom", "tty", "ptmx", "fd", "stdin", "stdout", "stderr"]) expect(lines).toContain(d);
    expect(lines).toContain("hi");
    expect(r2.stderr).toContain("Read-only file system");
  });

  test("a masked path reads empty, a read-only path refuses writes", async () => {
    const r = await runIn(["sh", "-c", "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/ns_last_pid; echo rc=$?"]);
    expect(r.stdout).toBe("0\n0\nrc=1\n");
    expect(r.stderr).toContain("Read-only file system");
  });

  test("only the listed capabilities remain; a dropped one is missing from /proc/self/status", async () => {
    const r = await runIn(["sh", "-c", "grep -E '^Cap(Eff|Bnd|Prm)' /proc/self/status"], (s) => {
      const caps = ["CAP_KILL", "CAP_CHOWN"];
      s.process!.capabilities = { bounding: caps, effective: caps, permitted: caps };
    });
    // CAP_CHOWN = bit 0, CAP_KILL = bit 5: 0x21.
    expect(r.stdout).toBe("CapPrm:\t0000000000000021\nCapEff:\t0000000000000021\nCapBnd:\t0000000000000021\n");
  });

  test("user, groups, cwd (created when missing), env and rlimits are applied", async () => {
    const r = await runIn(["sh", "-c", "id; pwd; echo $FOO; ulimit -n; ulimit -Hn"], (s) => {
      s.process!.user = { uid: 65534, gid: 65534, additionalGids: [5] };
      s.process!.cwd = "/work/dir";
      s.process!.env = ["PATH=/bin", "FOO=bar"];
      s.process!.rlimits = [{ type: "RLIMIT_NOFILE", soft: 100, hard: 200 }];
    });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("uid=65534(nobody) gid=65534(nogroup) groups=5\n/work/dir\nbar\n100\n200\n");
  });

  test("the default seccomp profile: unshare and mount fail with EPERM, ordinary programs run; without it they work", async () => {
    const { defaultSeccompProfile } = await import("../../src/core/container/seccomp-default.ts");
    const script = "grep Seccomp: /proc/self/status; unshare -m true; echo unshare=$?; mkdir -p /mnt; mount -t tmpfs t /mnt; echo mount=$?; ls / >/dev/null && echo ls=ok";
    // CAP_SYS_ADMIN is granted, so only the filter can refuse these calls.
    const caps = ["CAP_SYS_ADMIN", "CAP_KILL"];
    const withCaps = (s: Spec) => void (s.process!.capabilities = { bounding: caps, effective: caps, permitted: caps });
    const filtered = await runIn(["sh", "-c", script], (s) => {
      withCaps(s);
      s.linux!.seccomp = defaultSeccompProfile(["CAP_KILL"]);
    });
    expect(filtered.stdout).toBe("Seccomp:\t2\nunshare=1\nmount=1\nls=ok\n");
    expect(filtered.stderr).toContain("Operation not permitted");
    const open = await runIn(["sh", "-c", script], withCaps);
    expect(open.stdout).toBe("Seccomp:\t0\nunshare=0\nmount=0\nls=ok\n");
  });

  test("a memory limit OOM-kills a process that exceeds it, and the kill is reported", async () => {
    const r = await runIn(["sh", "-c", "echo start; x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"], (s) => {
      s.linux!.resources = { memory: { limit: 32 * 1024 * 1024, swap: 32 * 1024 * 1024 } };
    });
    expect(r.stdout).toBe("start\n");
    expect(r.stderr).toContain("was killed for running out of memory");
    expect(r.code).not.toBe(0);
  });

  test("a pids limit stops a fork bomb", async () => {
    // The bomb runs in an inner shell (which dies when fork fails); the outer one then uses only
    // builtins, since forking is exactly what no longer works.
    const r = await runIn(["sh", "-c", "sh -c 'for i in $(seq 40); do sleep 2 & done' 2>/dev/null; read cur < /sys/fs/cgroup/pids/pids.current; read ev < /sys/fs/cgroup/pids/pids.events; echo current=$cur $ev"], (s) => {
      s.mounts!.push({ destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["ro"] });
      s.linux!.resources = { pids: { limit: 12 } };
    });
    expect(r.stdout).toMatch(/^current=\d+ max \d+\n$/);
    expect(Number(r.stdout.match(/current=(\d+)/)![1])).toBeLessThanOrEqual(12);
    expect(Number(r.stdout.match(/max (\d+)/)![1])).toBeGreaterThan(0); // forks were refused
  });

  test("cgroup limits land in the container's cgroup; pause and resume freeze it; ps lists it; the cgroup goes with delete", async () => {
    const bundle = writeBundle(join(dir, "cg"), rootfs, testSpec(["sleep", "30"], (s) => {
      s.linux!.resources = { cpu: { shares: 512, quota: 50000, period: 100000 }, pids: { limit: 50 } };
      s.linux!.cgroupsPath = "/bunker-test/cg";
    }));
    const create = Bun.spawn([BUNKER, "runtime", "--root", stateRoot, "create", "--bundle", bundle, "cg"], { stdio: ["ignore", "ignore", "inherit"] });
    expect(await create.exited).toBe(0);
    const cpuDir = existsSync("/sys/fs/cgroup/cpu/bunker-test/cg") ? "/sys/fs/cgroup/cpu/bunker-test/cg" : "/sys/fs/cgroup/bunker-test/cg";
    if (cpuDir.startsWith("/sys/fs/cgroup/cpu/")) {
      expect(readFileSync(join(cpuDir, "cpu.shares"), "utf8").trim()).toBe("512");
      expect(readFileSync(join(cpuDir, "cpu.cfs_quota_us"), "utf8").trim()).toBe("50000");
      expect(readFileSync("/sys/fs/cgroup/pids/bunker-test/cg/pids.max", "utf8").trim()).toBe("50");
    } else {
      expect(readFileSync(join(cpuDir, "cpu.max"), "utf8").trim()).toBe("50000 100000");
    }
    expect((await rt("start", "cg")).code).toBe(0);
    const pid = JSON.parse((await rt("state", "cg")).stdout).pid;
    expect(JSON.parse((await rt("ps", "--format", "json", "cg")).stdout)).toEqual([pid]);
    expect((await rt("pause", "cg")).code).toBe(0);
    expect(JSON.parse((await rt("state", "cg")).stdout).status).toBe("paused");
    expect(readFileSync(`/proc/${pid}/status`, "utf8")).toMatch(/State:\s+[SD]/);
    expect((await rt("resume", "cg")).code).toBe(0);
    expect(JSON.parse((await rt("state", "cg")).stdout).status).toBe("running");
    expect((await rt("delete", "--force", "cg")).code).toBe(0);
    expect(existsSync(cpuDir)).toBe(false);
  });

  test("the cgroup mount shows the container's own cgroup hierarchy", async () => {
    const r = await runIn(["sh", "-c", "grep pids /proc/self/cgroup; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"], (s) => {
      s.mounts!.push({ destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] });
      s.linux!.resources = { pids: { limit: 33 } };
    });
    expect(r.stderr).toBe("");
    const lines = r.stdout.trim().split("\n");
    expect(lines.at(-1)).toBe("33");
    if (lines.length > 1) expect(lines[0]).toMatch(/:pids:\/$/); // the container's cgroup is its namespace's root
  });

  test("a user namespace maps root in the container to an unprivileged host uid", async () => {
    const bundle = writeBundle(join(dir, "userns"), rootfs, testSpec(["sh", "-c", "id -u; cat /proc/self/uid_map; sleep 1"], (s) => {
      s.linux!.namespaces!.push({ type: "user" });
      s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      s.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    }));
    // The mapped root is an unprivileged host user: the path to the rootfs must be searchable by it.
    chmodSync(dir, 0o755);
    const p = Bun.spawn([BUNKER, "runtime", "--root", stateRoot, "run", "--bundle", bundle, "userns"], { stdout: "pipe", stderr: "pipe" });
    // While it sleeps, the host sees the process under the mapped uid.
    let hostUid: string | undefined;
    for (let i = 0; i < 100 && !hostUid; i++) {
      await Bun.sleep(20);
      try {
        const pid = JSON.parse(readFileSync(join(stateRoot, "userns", "state.json"), "utf8")).pid;
        hostUid = readFileSync(`/proc/${pid}/status`, "utf8").match(/^Uid:\s+(\d+)/m)?.[1];
      } catch {
        /* not there yet */
      }
    }
    const code = await p.exited;
    expect(await new Response(p.stderr).text()).toBe("");
    expect(code).toBe(0);
    expect((await new Response(p.stdout).text()).replace(/[ \t]+/g, " ")).toBe("0\n 0 100000 65536\n");
    expect(hostUid).toBe("100000");
  });

  test("exec enters every namespace and the cgroup of a running container", async () => {
    const bundle = writeBundle(join(dir, "ex"), rootfs, testSpec(["sh", "-c", "echo marker > /tmp/inside; sleep 30"], (s) => void (s.hostname = "exbox")));
    const p = Bun.spawn([BUNKER, "runtime", "--root", stateRoot, "run", "--detach", "--bundle", bundle, "ex"], { stdio: ["ignore", "ignore", "inherit"] });
    expect(await p.exited).toBe(0);
    await Bun.sleep(100);
    const init = JSON.parse((await rt("state", "ex")).stdout).pid;
    const r = await rt("exec", "--env", "X=1", "ex", "sh", "-c", "hostname; cat /tmp/inside; echo pid=$$ x=$X; ps -o pid | wc -l; exit 3");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(3);
    const [host, marker, pidLine] = r.stdout.split("\n");
    expect([host, marker]).toEqual(["exbox", "marker"]);
    expect(Number(pidLine!.match(/pid=(\d+)/)![1])).toBeLessThan(100); // a pid of the container's namespace
    expect(pidLine).toContain("x=1");
    for (const ns of ["mnt", "pid", "uts", "ipc", "net"]) {
      const r2 = await rt("exec", "ex", "readlink", `/proc/self/ns/${ns}`);
      expect(r2.stdout.trim()).toBe(require("node:fs").readlinkSync(`/proc/${init}/ns/${ns}`));
    }
    // In the container's cgroup namespace and cgroup: every hierarchy shows the namespace root.
    const cg = await rt("exec", "ex", "cat", "/proc/self/cgroup");
    for (const line of cg.stdout.trim().split("\n")) expect(line).toMatch(/:\/$/);
    expect((await rt("exec", "ex", "no-such-program")).stderr).toContain('exec: "no-such-program": executable file not found in $PATH');
    expect((await rt("delete", "--force", "ex")).code).toBe(0);
  });

  test("a terminal container gets a working pty, its master sent over the console socket", async () => {
    const sock = join(dir, "console.sock");
    const receiver = Bun.spawn(["python3", join(import.meta.dir, "../fixtures/console-receiver.py"), sock, "echo typed-$((6*7))\nexit 5\n"], { stdout: "pipe", stderr: "pipe" });
    const reader = receiver.stdout.getReader();
    await reader.read(); // "listening"
    const bundle = writeBundle(join(dir, "tty"), rootfs, testSpec(["sh"], (s) => {
      s.process!.terminal = true;
      s.process!.consoleSize = { height: 33, width: 101 };
      s.process!.env = ["PATH=/bin", "PS1=$ "];
    }));
    const create = Bun.spawn([BUNKER, "runtime", "--root", stateRoot, "create", "--bundle", bundle, "--console-socket", sock, "tty"], { stdio: ["ignore", "ignore", "pipe"] });
    expect(await create.exited).toBe(0);
    const wait = Bun.spawn([BUNKER, "runtime", "--root", stateRoot, "start", "tty"], { stdio: ["ignore", "ignore", "inherit"] });
    expect(await wait.exited).toBe(0);
    let out = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    expect(await receiver.exited).toBe(0);
    expect(out).toContain("typed-42"); // the shell read our input from the pty and answered on it
    const sizes = await rt("delete", "--force", "tty");
    expect(sizes.code).toBe(0);
    // The size was set: check in a second container through the same path.
    const sock2 = join(dir, "console2.sock");
    const rec2 = Bun.spawn(["python3", join(import.meta.dir, "../fixtures/console-receiver.py"), sock2], { stdout: "pipe", stderr: "pipe" });
    const r2 = rec2.stdout.getReader();
    await r2.read();
    const b2 = writeBundle(join(dir, "tty2"), rootfs, testSpec(["sh", "-c", "stty size; tty"], (s) => {
      s.process!.terminal = true;
      s.process!.consoleSize = { height: 33, width: 101 };
    }));
    const c2 = Bun.spawn([BUNKER, "runtime", "--root", stateRoot, "run", "--detach", "--bundle", b2, "--console-socket", sock2, "tty2"], { stdio: ["ignore", "ignore", "inherit"] });
    expect(await c2.exited).toBe(0);
    let out2 = "";
    for (;;) {
      const { done, value } = await r2.read();
      if (done) break;
      out2 += new TextDecoder().decode(value);
    }
    expect(out2.replaceAll("\r", "").trim()).toBe("33 101\n/dev/pts/0");
    await rt("delete", "--force", "tty2");
  });

  test("hooks run in order with the state on stdin: createRuntime at create, poststart, poststop; a failing one fails create", async () => {
    const log = join(dir, "hooks.log");
    const hook = (name: string) => ({ path: "/bin/sh", args: ["sh", "-c", `read s; echo "${name} $s" >> ${log}`] });
    const bundle = writeBundle(join(dir, "hk"), rootfs, testSpec(["true"], (s) => {
      s.hooks = { createRuntime: [hook("createRuntime")], poststart: [hook("poststart")], poststop: [hook("poststop")] };
    }));
    const r = await rt("run", "--bundle", bundle, "hk");
    expect(r.code).toBe(0);
    const lines = readFileSync(log, "utf8").trim().split("\n");
    expect(lines.map((l) => l.split(" ")[0])).toEqual(["createRuntime", "poststart", "poststop"]);
    expect(JSON.parse(lines[0]!.slice("createRuntime ".length))).toMatchObject({ id: "hk", status: "creating", bundle });
    expect(JSON.parse(lines[2]!.slice("poststop ".length))).toMatchObject({ id: "hk", status: "stopped" });
    const bad = writeBundle(join(dir, "hkbad"), rootfs, testSpec(["true"], (s) => void (s.hooks = { createRuntime: [{ path: "/bin/false" }] })));
    const f = await rt("run", "--bundle", bad, "hkbad");
    expect(f.code).toBe(1);
    expect(f.stderr).toContain("createRuntime hook #0 (/bin/false) failed with exit 1");
    expect(existsSync(join(stateRoot, "hkbad"))).toBe(false);
  });

  test("createContainer and startContainer hooks run inside the container, with the state on stdin; a failing or overdue one fails it", async () => {
    const log = join(dir, "inhooks.log");
    const startLog = join(rootfs, "start-hook.log"); // the startContainer hook writes inside the container's root
    const bundle = writeBundle(join(dir, "ih"), rootfs, testSpec(["true"], (s) => {
      s.hooks = {
        createRuntime: [{ path: "/bin/sh", args: ["sh", "-c", `echo createRuntime $(readlink /proc/self/ns/mnt) >> ${log}`] }],
        createContainer: [{ path: "/bin/sh", args: ["sh", "-c", `read s; echo "createContainer $(readlink /proc/self/ns/mnt) $s" >> ${log}`] }],
        startContainer: [{ path: "/bin/sh", args: ["sh", "-c", "read s; echo \"$s\" > /start-hook.log"], env: ["PATH=/bin"] }],
      };
    }));
    try {
      const r = await rt("run", "--bundle", bundle, "ih");
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const [createRuntime, createContainer] = readFileSync(log, "utf8").trim().split("\n");
      const hostMnt = require("node:fs").readlinkSync("/proc/self/ns/mnt");
      expect(createRuntime!.split(" ")[1]).toBe(hostMnt); // the runtime's namespace
      const [, mnt, ...state] = createContainer!.split(" ");
      expect(mnt).toMatch(/^mnt:\[\d+\]$/);
      expect(mnt).not.toBe(hostMnt); // the container's
      expect(JSON.parse(state.join(" "))).toMatchObject({ id: "ih", status: "creating" });
      expect(JSON.parse(readFileSync(startLog, "utf8"))).toMatchObject({ id: "ih", status: "created" });
    } finally {
      require("node:fs").rmSync(startLog, { force: true });
    }
    const bad = writeBundle(join(dir, "ihbad"), rootfs, testSpec(["true"], (s) => void (s.hooks = { createContainer: [{ path: "/bin/false" }] })));
    const f = await rt("run", "--bundle", bad, "ihbad");
    expect(f.code).toBe(1);
    expect(f.stderr).toContain("createContainer hook #0 (/bin/false): exited with status 1");
    expect(existsSync(join(stateRoot, "ihbad"))).toBe(false);
    const slow = writeBundle(join(dir, "ihslow"), rootfs, testSpec(["true"], (s) => void (s.hooks = { startContainer: [{ path: "/bin/sleep", args: ["sleep", "10"], timeout: 1 }] })));
    const t0 = performance.now();
    const sl = await rt("run", "--bundle", slow, "ihslow");
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(sl.code).not.toBe(0);
    expect(sl.stderr).toContain("startContainer hook #0 (/bin/sleep): killed by signal 14");
  });

  test("a new time namespace with offsets: the container's boot time is shifted, and exec joins it", async () => {
    const bundle = writeBundle(join(dir, "tns"), rootfs, testSpec(["sh", "-c", "cut -d. -f1 /proc/uptime; sleep 5"], (s) => {
      s.linux!.namespaces!.push({ type: "time" });
      s.linux!.timeOffsets = { boottime: { secs: 864000, nanosecs: 0 }, monotonic: { secs: 3600 } };
    }));
    const proc = Bun.spawn([BUNKER, "runtime", "--root", stateRoot, "run", "--bundle", bundle, "tns"], { stdout: "pipe", stderr: "pipe" });
    const reader = proc.stdout.getReader();
    const first = Number(new TextDecoder().decode((await reader.read()).value).trim());
    const hostUptime = Number(readFileSync("/proc/uptime", "utf8").split(".")[0]);
    expect(first - hostUptime).toBeGreaterThanOrEqual(864000 - 2);
    expect(first - hostUptime).toBeLessThanOrEqual(864000 + 2);
    const ex = await rt("exec", "tns", "cut", "-d.", "-f1", "/proc/uptime");
    expect(Number(ex.stdout.trim()) - hostUptime).toBeGreaterThanOrEqual(864000 - 2);
    await rt("kill", "tns", "KILL");
    await proc.exited;
    // Offsets without a new time namespace are refused, not ignored.
    const r = await runIn(["true"], (s) => void (s.linux!.timeOffsets = { boottime: { secs: 1 } }));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("linux.timeOffsets: needs a new time namespace");
  });

  test("SIGKILL of the caller: the container keeps running, its output keeps reaching its log, the exit code is recorded", async () => {
    const bundle = writeBundle(join(dir, "mon"), rootfs, testSpec(["sh", "-c", "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.2; done; echo bye >&2; exit 7"]));
    const spool = join(dir, "mon.spool");
    const caller = Bun.spawn([process.execPath, join(import.meta.dir, "../fixtures/runtime-caller.ts"), stateRoot, bundle, "mon", spool], { stdout: "ignore", stderr: "pipe" });
    const reader = caller.stderr.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toStartWith("started ");
    caller.kill("SIGKILL");
    await caller.exited;
    const { LinuxRuntime } = await import("../../src/plugins/runtime-linux/runtime.ts");
    const { linuxSys } = await import("../../src/core/sys/sys.ts");
    const again = new LinuxRuntime(linuxSys(), stateRoot); // as a restarted engine would
    expect(again.state("mon").status).toBe("running");
    const stored = JSON.parse(readFileSync(join(stateRoot, "mon", "state.json"), "utf8"));
    const rss = readFileSync(`/proc/${stored.monitorPid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)?.[1];
    console.log(`monitor RSS while the container runs: ${rss} kB`);
    expect(Number(rss)).toBeLessThan(2048); // the budget: under 2 MB per running container
    // The container moved itself into its cgroup; its monitor stays out (not limited, not frozen by pause).
    const inCgroup = (pid: number) => readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n").filter((l) => l.endsWith("/bunker/mon")).length;
    expect(inCgroup(stored.pid)).toBeGreaterThan(0);
    expect(inCgroup(stored.monitorPid)).toBe(0);
    expect(again.exitCode("mon")).toBeUndefined();
    for (let i = 0; i < 100 && again.exitCode("mon") === undefined; i++) await Bun.sleep(50);
    expect(again.exitCode("mon")).toBe(7);
    expect(again.state("mon").status).toBe("stopped");
    // Every line reached the spool, the ones written after the caller died too, each stream tagged.
    const { readSpool } = await import("../../src/core/container/spool.ts");
    const recs = readSpool(spool, 0).records;
    const text = (stream: number) => recs.filter((r) => r.stream === stream).map((r) => new TextDecoder().decode(r.data)).join("");
    expect(text(1)).toBe("tick 1\ntick 2\ntick 3\ntick 4\ntick 5\ntick 6\n");
    expect(text(2)).toBe("bye\n");
    const times = recs.map((r) => r.timeNs);
    expect(times).toEqual([...times].sort());
    expect(Number(times.at(-1)! - times[0]!) / 1e6).toBeGreaterThan(900); // spread over the run: captured as written
    await again.delete("mon");
  });

  test("create waits at the door; start runs it; state follows; kill and delete", async () => {
    const bundle = writeBundle(join(dir, "life"), rootfs, testSpec(["sleep", "30"]));
    // The container inherits create's stdio (as with runc), so do not wait on captured pipes here.
    const create = Bun.spawn([BUNKER, "runtime", "--root", stateRoot, "create", "--bundle", bundle, "--pid-file", join(dir, "life.pid"), "life"], { stdio: ["ignore", "ignore", "ignore"] });
    expect(await create.exited).toBe(0);
    const created = JSON.parse((await rt("state", "life")).stdout);
    expect(created.status).toBe("created");
    expect(Number(readFileSync(join(dir, "life.pid"), "utf8"))).toBe(created.pid);
    expect(readFileSync(`/proc/${created.pid}/cmdline`, "utf8")).not.toContain("sleep"); // not exec'd yet
    expect((await rt("start", "life")).code).toBe(0);
    const running = JSON.parse((await rt("state", "life")).stdout);
    expect(running.status).toBe("running");
    await Bun.sleep(50);
    expect(readFileSync(`/proc/${running.pid}/cmdline`, "utf8")).toContain("sleep");
    const del = await rt("delete", "life");
    expect(del.code).toBe(1);
    expect(del.stderr).toContain("cannot delete container life that is not stopped: running");
    expect((await rt("kill", "life", "KILL")).code).toBe(0);
    for (let i = 0; i < 100 && JSON.parse((await rt("state", "life")).stdout).status !== "stopped"; i++) await Bun.sleep(20);
    expect(JSON.parse((await rt("state", "life")).stdout).status).toBe("stopped");
    expect((await rt("delete", "life")).code).toBe(0);
    expect((await rt("state", "life")).stderr).toContain("container life does not exist");
  });

  test("a process waiting at the door holds none of its caller's descriptors (a daemon's lock and socket stay the daemon's)", async () => {
    const bundle = writeBundle(join(dir, "door"), rootfs, testSpec(["sleep", "30"]));
    const marker = join(dir, "caller-lock");
    require("node:fs").writeFileSync(marker, "");
    const held = require("node:fs").openSync(marker, "r"); // as the daemon's lock: inherited by whatever it clones
    try {
      const create = Bun.spawn([BUNKER, "runtime", "--root", stateRoot, "create", "--bundle", bundle, "door"], { stdio: ["ignore", "ignore", "ignore", held, held, held] });
      expect(await create.exited).toBe(0);
      const { pid, status } = JSON.parse((await rt("state", "door")).stdout);
      expect(status).toBe("created");
      const links = readdirSync(`/proc/${pid}/fd`).map((fd) => ({ fd: Number(fd), to: require("node:fs").readlinkSync(`/proc/${pid}/fd/${fd}`) as string }));
      expect(links.filter((l) => l.to === marker)).toEqual([]);
      // Its stdio, the exec fifo it waits on, its status pipe and the sync pipe: nothing else.
      expect(links.filter((l) => l.fd > 2).map((l) => l.to.replace(/^pipe:\[\d+\]$/, "pipe:[N]")).sort()).toEqual([join(stateRoot, "door", "exec.fifo"), "pipe:[N]", "pipe:[N]"].sort());
    } finally {
      require("node:fs").closeSync(held);
      await rt("kill", "door", "KILL");
      for (let i = 0; i < 100 && JSON.parse((await rt("state", "door")).stdout || "{}").status !== "stopped"; i++) await Bun.sleep(20);
      await rt("delete", "--force", "door");
    }
  });

  test("bad input: a field named, an unknown namespace, a missing rootfs, a missing program; nothing left behind", async () => {
    const bad = async (spec: unknown, want: string) => {
      const id = `bad${++n}`;
      const b = join(dir, id);
      require("node:fs").mkdirSync(b, { recursive: true });
      require("node:fs").writeFileSync(join(b, "config.json"), JSON.stringify(spec));
      const r = await rt("--log", join(dir, "log.json"), "--log-format", "json", "create", "--bundle", b, id);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(want);
      expect(existsSync(join(stateRoot, id))).toBe(false);
    };
    const good = { ...testSpec(["true"]), root: { path: rootfs } };
    await bad({ ...good, process: { ...good.process, args: "true" } }, "process.args: Invalid type");
    await bad({ ...good, linux: { ...good.linux, namespaces: [{ type: "pdi" }] } }, "linux.namespaces.0.type: must be one of mount, pid, network, uts, ipc, user, cgroup, time");
    await bad({ ...good, root: { path: join(dir, "nope") } }, `root.path: rootfs ${join(dir, "nope")} does not exist`);
    await bad({ ...good, process: { ...good.process, args: ["no-such-program"] } }, 'exec: "no-such-program": executable file not found in $PATH');
    await bad({ ...good, process: { ...good.process, rlimits: [{ type: "RLIMIT_NOFILE", soft: 1024, hard: 1 << 30 }] } }, "setrlimit RLIMIT_NOFILE");
    // The error is also in the log file as runc writes it, for containerd to read.
    const last = JSON.parse(readFileSync(join(dir, "log.json"), "utf8").trim().split("\n").at(-1)!);
    expect(last).toMatchObject({ level: "error" });
    expect(last.msg).toContain("RLIMIT_NOFILE");
    await Bun.sleep(50);
    // No container process survived, and no cgroup of the failed containers is left.
    const inBadCgroup = readdirSync("/proc")
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return /\/bunker\/bad\d+$/m.test(readFileSync(`/proc/${p}/cgroup`, "utf8"));
        } catch {
          return false;
        }
      });
    expect(inBadCgroup).toEqual([]);
    for (let i = n - 4; i <= n; i++) expect(existsSync(`/sys/fs/cgroup/pids/bunker/bad${i}`) || existsSync(`/sys/fs/cgroup/unified/bunker/bad${i}`)).toBe(false);
  });
});
