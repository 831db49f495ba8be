/**
 * Peer check: Debian's dockerd runs containers with Bunker's runtime (`--add-runtime
 * bunker=<bunker-runc>`): a plain `docker run` that prints, an interactive `-it` one driven
 * through a pty, and `docker exec` into a detached one, which Bunker's runtime lists as its own.
 */
import { DOCKER, ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUNKER, cleanup, ensureBuilt, run, tempDir } from "../helpers/daemon.ts";
import { BUSYBOX, busyboxLayer, dockerArchive } from "../helpers/images.ts";

const DOCKERD = Bun.which("dockerd");
const SCRIPT = Bun.which("script");

describe.skipIf(skipUnless("dockerd with Bunker as its OCI runtime", { "the docker CLI": DOCKER, "dockerd (docker.io)": DOCKERD, "root": ROOT, "busybox-static": BUSYBOX, "script (bsdutils)": SCRIPT }))("dockerd with Bunker as its OCI runtime", () => {
  let dir: string;
  let dockerd: Bun.Subprocess;
  let env: Record<string, string>;
  const docker = (...a: string[]) => run([DOCKER!, ...a], env);

  beforeAll(async () => {
    ensureBuilt();
    dir = tempDir("bunker-ddrt-");
    // The runc face of the executable, chosen by its name.
    symlinkSync(BUNKER, join(dir, "bunker-runc"));
    const host = `unix://${join(dir, "docker.sock")}`;
    env = { DOCKER_HOST: host };
    dockerd = Bun.spawn([DOCKERD!, "--data-root", join(dir, "dd"), "--exec-root", join(dir, "de"), "-H", host, "--pidfile", join(dir, "d.pid"),
      "--iptables=false", "--ip6tables=false", "--bridge=none", "--add-runtime", `bunker=${join(dir, "bunker-runc")}`], { stdout: "ignore", stderr: "ignore" });
    for (let i = 0; i < 300; i++) {
      if ((await docker("version")).code === 0) break;
      await Bun.sleep(100);
    }
    writeFileSync(join(dir, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer()] }));
    expect((await docker("load", "-i", join(dir, "busybox.tar"))).code).toBe(0);
  }, 60_000);
  afterAll(async () => {
    dockerd?.kill("SIGTERM");
    await dockerd?.exited;
    cleanup(dir);
  });

  test("docker run --runtime bunker busybox echo hi", async () => {
    const r = await docker("run", "--rm", "--runtime", "bunker", "busybox", "echo", "hi");
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("hi\n");
    const bad = await docker("run", "--rm", "--runtime", "bunker", "busybox", "no-such-program");
    expect(bad.code).toBe(127);
    expect(bad.stderr).toContain('exec: "no-such-program": executable file not found in $PATH');
  }, 60_000);

  test("an interactive -it container reads what is typed on its terminal", async () => {
    // `script` gives the docker CLI a pty, as a person at a terminal would.
    const r = await run([SCRIPT!, "-qec", `${DOCKER} run --rm -it --runtime bunker busybox sh`, "/dev/null"], env, "echo typed-$((6*7)); tty\nexit 3\n");
    expect(r.stdout).toContain("typed-42");
    expect(r.stdout).toContain("/dev/pts/0");
    expect(r.code).toBe(3);
  }, 60_000);

  test("docker exec into a detached container; Bunker's runtime lists it", async () => {
    expect((await docker("run", "-d", "--name", "bg", "--runtime", "bunker", "busybox", "sleep", "60")).code).toBe(0);
    const t0 = performance.now();
    const e = await docker("exec", "bg", "sh", "-c", "echo exec-ok; ps -o comm | grep -c sleep; exit 4");
    expect(e.stdout).toBe("exec-ok\n1\n");
    expect(e.code).toBe(4); // the shim saw the exec'd process exit (it was reparented to it)
    expect(performance.now() - t0).toBeLessThan(5000);
    // dockerd 20.10 gives every runtime the state root <exec-root>/runtime-runc/moby.
    const rtRoot = join(dir, "de", "runtime-runc", "moby");
    expect(existsSync(rtRoot)).toBe(true);
    const list = await run([BUNKER, "runtime", "--root", rtRoot, "list", "--format", "json"]);
    const id = (await docker("inspect", "--format", "{{.Id}}", "bg")).stdout.trim();
    expect(JSON.parse(list.stdout).map((c: { id: string; status: string }) => `${c.id} ${c.status}`)).toContain(`${id} running`);
    expect((await docker("rm", "-f", "bg")).code).toBe(0);
    expect(readdirSync(rtRoot)).not.toContain(id);
  }, 60_000);
});
