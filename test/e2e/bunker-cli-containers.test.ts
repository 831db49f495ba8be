/**
 * The `bunker` CLI's container commands against a Bunker daemon, side by side with the real
 * docker CLI on the same daemon: same output for `ps`, and run/exec/logs/stop/rm/volume working
 * as docker's do (flags after the image belong to the command; `-i` piped; `-it` under a pty).
 */
import { DOCKER, ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUNKER, cleanup, run, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.ts";
import { BUSYBOX, busyboxLayer, dockerArchive } from "../helpers/images.ts";


describe.skipIf(skipUnless("bunker CLI: containers", { "root": ROOT, "busybox-static": BUSYBOX }))("bunker CLI: containers", () => {
  let daemon: TestDaemon;
  let dir: string;
  let env: Record<string, string>;
  const bunker = (...args: string[]) => run([BUNKER, ...args], env);

  beforeAll(async () => {
    dir = tempDir("bunker-cli-ctr-");
    daemon = await startDaemon({ dir });
    env = { DOCKER_HOST: daemon.host };
    writeFileSync(join(dir, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer()], gzip: true }));
    await fetch("http://localhost/images/load", { unix: daemon.socket, method: "POST", body: Bun.file(join(dir, "busybox.tar")) } as RequestInit).then((r) => r.text());
  });
  afterAll(async () => {
    // Containers outlive a stopped daemon (live restore): remove what a failed test left running.
    const left = (await fetch("http://localhost/containers/json?all=1", { unix: daemon.socket } as RequestInit).then((r) => r.json())) as { Id: string }[];
    for (const c of left) await fetch(`http://localhost/containers/${c.Id}?force=1&v=1`, { unix: daemon.socket, method: "DELETE" } as RequestInit);
    await daemon.stop();
    cleanup(dir);
  });

  test("run: output, exit code, --rm, flags after the image are the command's, -e/-w/-v", async () => {
    const r = await bunker("run", "--rm", "-e", "A=1", "-w", "/tmp", "-v", `${dir}:/h:ro`, "busybox", "sh", "-c", "echo $A $(pwd); ls /h/busybox.tar; echo err >&2; exit 3");
    expect([r.stdout, r.stderr, r.code]).toEqual(["1 /tmp\n/h/busybox.tar\n", "err\n", 3]);
    const piped = await run([BUNKER, "run", "-i", "--rm", "busybox", "cat"], env, "piped\n");
    expect(piped.stdout).toBe("piped\n");
    expect((await bunker("run", "--rm", "busybox", "/no/such")).code).toBe(127);
    expect((await bunker("run", "--rm", "hello-world")).stdout).toContain("Hello from Bunker!");
  });

  test("run -d, ps (same table as docker's), logs, exec, inspect, stop, rm", async () => {
    const id = (await bunker("run", "-d", "--name", "clibox", "busybox", "sh", "-c", "echo started; sleep 30")).stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    await Bun.sleep(300);
    if (DOCKER) {
      const mine = (await bunker("ps", "-a")).stdout.split("\n");
      const theirs = (await run([DOCKER, "ps", "-a"], env)).stdout.split("\n");
      // The header, column for column (the spacing after CREATED follows the ages, which may differ by a second).
      expect(mine[0]!.split(/ {2,}/)).toEqual(theirs[0]!.split(/ {2,}/));
      expect(mine[0]!.indexOf("CREATED")).toBe(theirs[0]!.indexOf("CREATED"));
      expect(mine[1]!.slice(0, 40)).toBe(theirs[1]!.slice(0, 40));
    }
    expect((await bunker("ps", "-q")).stdout).toBe(`${id.slice(0, 12)}\n`);
    expect((await bunker("ps", "--format", "{{.Names}}:{{.State}}")).stdout).toBe("clibox:running\n");
    expect((await bunker("logs", "clibox")).stdout).toBe("started\n");
    const ex = await bunker("exec", "clibox", "sh", "-c", "echo in exec; exit 4");
    expect([ex.stdout, ex.code]).toEqual(["in exec\n", 4]);
    expect((await bunker("inspect", "-f", "{{.State.Running}} {{.Name}}", "clibox")).stdout).toBe("true /clibox\n");
    expect((await bunker("stop", "-t", "0", "clibox")).stdout).toBe("clibox\n");
    expect((await bunker("rm", "clibox")).stdout).toBe("clibox\n");
    expect((await bunker("rm", "clibox")).stderr).toContain("No such container: clibox");
  });

  test("-it under a pseudo-terminal", async () => {
    const script = Bun.which("script");
    if (!script) return;
    const p = Bun.spawn([script, "-qec", `${BUNKER} run -it --rm busybox sh -c 'tty; exit 6'`, "/dev/null"], { env: { ...process.env, ...env }, stdin: "pipe", stdout: "pipe" });
    expect(await new Response(p.stdout).text()).toContain("/dev/pts/0");
    expect(await p.exited).toBe(6);
  });

  test("cp both ways, diff, commit, export, update, stats", async () => {
    writeFileSync(join(dir, "in.txt"), "from host\n");
    await bunker("run", "-d", "--name", "ops", "busybox", "sleep", "30");
    expect((await bunker("cp", join(dir, "in.txt"), "ops:/tmp/")).code).toBe(0);
    expect((await bunker("exec", "ops", "cat", "/tmp/in.txt")).stdout).toBe("from host\n");
    expect((await bunker("cp", "ops:/etc/passwd", join(dir, "pw"))).code).toBe(0);
    expect(require("node:fs").readFileSync(join(dir, "pw"), "utf8")).toContain("root:x:0:0");
    expect((await bunker("diff", "ops")).stdout.split("\n")).toContain("A /tmp/in.txt");
    expect((await bunker("commit", "-c", 'CMD ["cat", "/tmp/in.txt"]', "ops", "cliimg:1")).stdout).toMatch(/^sha256:/);
    expect((await bunker("run", "--rm", "cliimg:1")).stdout).toBe("from host\n");
    expect((await bunker("export", "-o", join(dir, "ops.tar"), "ops")).code).toBe(0);
    expect(require("node:fs").statSync(join(dir, "ops.tar")).size).toBeGreaterThan(100_000);
    expect((await bunker("update", "--pids-limit", "77", "ops")).stdout).toBe("ops\n");
    expect((await bunker("inspect", "-f", "{{.HostConfig.PidsLimit}}", "ops")).stdout).toBe("77\n");
    const st = await bunker("stats", "--no-stream", "ops");
    expect(st.stdout.split("\n")[0]).toMatch(/^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/);
    expect(st.stdout).toMatch(/ops\s+\d+\.\d\d%/);
    expect((await bunker("rm", "-f", "ops")).code).toBe(0);
  });

  test("volume create, ls, inspect, rm", async () => {
    expect((await bunker("volume", "create", "clivol")).stdout).toBe("clivol\n");
    expect((await bunker("volume", "ls", "-q")).stdout).toContain("clivol\n");
    expect(JSON.parse((await bunker("volume", "inspect", "clivol")).stdout)[0].Name).toBe("clivol");
    expect((await bunker("volume", "rm", "clivol")).stdout).toBe("clivol\n");
  });

  test("network create, ls (same table as docker's), run --network/-p, port, ps PORTS, connect, disconnect, rm", async () => {
    const id = (await bunker("network", "create", "--subnet", "10.234.0.0/24", "clinet")).stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    if (DOCKER) expect((await bunker("network", "ls")).stdout).toBe((await run([DOCKER, "network", "ls"], env)).stdout);
    expect((await bunker("run", "-d", "--name", "cliweb", "--network", "clinet", "--ip", "10.234.0.50", "-p", "127.0.0.1:18090:80", "busybox", "sleep", "30")).code).toBe(0);
    expect((await bunker("port", "cliweb")).stdout).toBe("80/tcp -> 127.0.0.1:18090\n");
    expect((await bunker("port", "cliweb", "80")).stdout).toBe("127.0.0.1:18090\n");
    expect((await bunker("ps", "--format", "{{.Ports}}")).stdout).toContain("127.0.0.1:18090->80/tcp");
    if (DOCKER) expect((await bunker("port", "cliweb")).stdout).toBe((await run([DOCKER, "port", "cliweb"], env)).stdout);
    const attached = JSON.parse((await bunker("network", "inspect", "clinet")).stdout)[0].Containers as Record<string, { Name: string; IPv4Address: string }>;
    expect(Object.values(attached)).toEqual([expect.objectContaining({ Name: "cliweb", IPv4Address: "10.234.0.50/24" })]);
    expect((await bunker("network", "connect", "bridge", "cliweb")).code).toBe(0);
    expect((await bunker("exec", "cliweb", "sh", "-c", "ls /sys/class/net | grep -c eth")).stdout.trim()).toBe("2");
    expect((await bunker("network", "disconnect", "bridge", "cliweb")).code).toBe(0);
    expect((await bunker("rm", "-f", "cliweb")).code).toBe(0);
    expect((await bunker("network", "rm", "clinet")).stdout).toBe("clinet\n");
    const bad = await bunker("run", "--rm", "-p", "1:2:3:4", "busybox", "true");
    expect(bad.stderr).toContain("invalid port specification");
  });

  test("images (same table as docker's), tag, save, rmi, load", async () => {
    expect((await bunker("tag", "busybox", "local/copy:1")).code).toBe(0);
    if (DOCKER) {
      // The same rows and cells; docker prints the tags of one image in Go map order (random), so
      // rows are compared as a set, and an image made seconds ago may be "1 second" old for one
      // command and "2 seconds" for the next, so those ages are compared as "seconds".
      const cells = (line: string) => line.split(/ {2,}/).map((c) => c.trim().replace(/^(\d+ seconds?|Less than a second) ago$/, "seconds ago"));
      const rows = (text: string) => [text.split("\n")[0], ...text.split("\n").slice(1).sort()].map((l) => cells(l ?? ""));
      expect(rows((await bunker("images")).stdout)).toEqual(rows((await run([DOCKER, "images"], env)).stdout));
    }
    expect((await bunker("images", "-q")).stdout).toMatch(/^[0-9a-f]{12}\n/);
    const out = join(dir, "saved.tar");
    expect((await bunker("save", "-o", out, "local/copy:1")).code).toBe(0);
    expect((await bunker("rmi", "local/copy:1")).stdout).toBe("Untagged: local/copy:1\n");
    expect((await bunker("load", "-i", out)).stdout).toBe("Loaded image: local/copy:1\n");
    expect((await bunker("rmi", "local/copy:1")).code).toBe(0);
    const missing = await bunker("rmi", "no/such:image");
    expect(missing.stderr).toContain("No such image: no/such:image");
  });
});
