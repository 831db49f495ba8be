/**
 * Findings of a user's bad day (issue 15), each checked through the docker CLI or the API as a
 * user meets it: an image a container uses is not deleted (Docker's conflicts and words), an
 * out-of-range integer is refused before anything is stored, HOME and /.dockerenv are set as
 * Docker sets them, and a named volume takes the image directory's owner and mode on first use.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { apiClient } from "../helpers/api.ts";
import { cleanupMounted, run, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.ts";
import { DOCKER, ROOT, skipUnless } from "../helpers/env.ts";
import { BUSYBOX, busyboxLayer, dockerArchive } from "../helpers/images.ts";

describe.skipIf(skipUnless("a user's bad day", { root: ROOT, "the docker CLI": DOCKER, "busybox-static": BUSYBOX }))("a user's bad day", () => {
  let daemon: TestDaemon;
  let dir: string;
  const docker = (...args: string[]) => run([DOCKER!, ...args], { DOCKER_HOST: daemon.host, DOCKER_BUILDKIT: "0" });
  const idOf = async (name: string) => (await docker("image", "inspect", "-f", "{{.Id}}", name)).stdout.trim();

  beforeAll(async () => {
    dir = tempDir("bunker-badday-");
    daemon = await startDaemon({ dir });
    writeFileSync(join(dir, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer({ full: true })] }));
    expect((await docker("load", "-i", join(dir, "busybox.tar"))).code).toBe(0);
  });
  afterAll(async () => {
    const ids = (await docker("ps", "-aq")).stdout.split("\n").filter(Boolean);
    if (ids.length) await docker("rm", "-f", ...ids);
    await daemon.stop();
    cleanupMounted(dir);
  });

  test("an image a container uses is not deleted: rmi by ID, by its only tag, -f, and prune -a keep it, with Docker's words", async () => {
    expect((await docker("tag", "busybox", "inuse:1")).code).toBe(0);
    expect((await docker("tag", "busybox", "stopped:1")).code).toBe(0);
    // inuse:1 and stopped:1 name the same image as busybox; give each its own image to test alone.
    const own = async (tag: string, text: string) => {
      const ctx = join(dir, `ctx-${tag.replace(":", "-")}`);
      require("node:fs").mkdirSync(ctx, { recursive: true });
      writeFileSync(join(ctx, "Dockerfile"), `FROM busybox\nRUN echo ${text} > /marker\n`);
      expect((await docker("build", "-q", "-t", tag, ctx)).code).toBe(0);
      return idOf(tag);
    };
    const running = await own("inuse:1", "running");
    const stopped = await own("stopped:1", "stopped");
    const r = (await docker("run", "-d", "--name", "user-running", "inuse:1", "sleep", "60")).stdout.trim();
    const s = (await docker("create", "--name", "user-stopped", "stopped:1", "true")).stdout.trim();
    const byId = await docker("rmi", running);
    expect(byId.code).not.toBe(0);
    expect(byId.stderr).toContain(`conflict: unable to delete ${running.slice(7, 19)} (cannot be forced) - image is being used by running container ${r.slice(0, 12)}`);
    expect((await docker("rmi", "-f", running)).stderr).toContain("(cannot be forced) - image is being used by running container");
    const byTag = await docker("rmi", "stopped:1");
    expect(byTag.code).not.toBe(0);
    expect(byTag.stderr).toContain(`conflict: unable to remove repository reference "stopped:1" (must force) - container ${s.slice(0, 12)} is using its referenced image ${stopped.slice(7, 19)}`);
    const stoppedById = await docker("rmi", stopped);
    expect(stoppedById.stderr).toContain(`conflict: unable to delete ${stopped.slice(7, 19)} (must be forced) - image is being used by stopped container ${s.slice(0, 12)}`);
    expect((await docker("image", "prune", "-a", "-f")).code).toBe(0);
    expect(await idOf("inuse:1")).toBe(running);
    expect(await idOf("stopped:1")).toBe(stopped);
    // The running container's base is still there: commit works.
    expect((await docker("commit", "user-running", "committed:1")).code).toBe(0);
    // With -f by tag, the running container's image is untagged but kept.
    const untag = await docker("rmi", "-f", "inuse:1");
    expect(untag.code).toBe(0);
    expect(untag.stdout).toContain("Untagged: inuse:1");
    expect((await docker("image", "inspect", running)).code).toBe(0);
    expect((await docker("rm", "-f", "user-running", "user-stopped")).code).toBe(0);
  }, 60_000);

  test("an integer past int64 is refused with 400 and nothing is created", async () => {
    const api = apiClient(daemon.socket);
    const before = (await api("GET", "/containers/json?all=1")).json.length;
    const r = await fetch("http://x/containers/create?name=huge", { unix: daemon.socket, method: "POST", headers: { "Content-Type": "application/json" }, body: '{"Image":"busybox","Cmd":["true"],"HostConfig":{"Memory":9223372036854775808}}' } as RequestInit);
    expect(r.status).toBe(400);
    expect(((await r.json()) as { message: string }).message).toContain("HostConfig.Memory");
    expect((await api("GET", "/containers/json?all=1")).json.length).toBe(before);
  });

  test("HOME comes from the user's passwd entry (/ without one), the environment's wins; /.dockerenv exists", async () => {
    expect((await docker("run", "--rm", "busybox", "sh", "-c", 'echo "$HOME"')).stdout).toBe("/root\n");
    expect((await docker("run", "--rm", "-u", "nobody", "busybox", "sh", "-c", 'echo "$HOME"')).stdout).toBe("/nonexistent\n");
    expect((await docker("run", "--rm", "-u", "4242", "busybox", "sh", "-c", 'echo "$HOME"')).stdout).toBe("/\n");
    expect((await docker("run", "--rm", "-e", "HOME=/custom", "busybox", "sh", "-c", 'echo "$HOME"')).stdout).toBe("/custom\n");
    expect((await docker("run", "--rm", "busybox", "sh", "-c", "test -f /.dockerenv && echo marked")).stdout).toBe("marked\n");
    // Like the /etc files, it is the engine's, not a change of the container's (Docker's init layer).
    expect((await docker("run", "--name", "marked", "busybox", "true")).code).toBe(0);
    expect((await docker("diff", "marked")).stdout).not.toContain(".dockerenv");
    expect((await docker("rm", "marked")).code).toBe(0);
    expect((await docker("run", "-d", "--name", "homes", "busybox", "sleep", "30")).code).toBe(0);
    expect((await docker("exec", "-u", "nobody", "homes", "sh", "-c", 'echo "$HOME"')).stdout).toBe("/nonexistent\n");
    expect((await docker("rm", "-f", "homes")).code).toBe(0);
  });

  test("a new named volume takes the image directory's owner, mode and contents (PostgreSQL's data directory)", async () => {
    const ctx = join(dir, "ctx-pg");
    require("node:fs").mkdirSync(ctx, { recursive: true });
    writeFileSync(join(ctx, "Dockerfile"), "FROM busybox\nRUN mkdir -p /var/lib/postgresql/data && echo seed > /var/lib/postgresql/data/seed && chown -R 70:70 /var/lib/postgresql/data && chmod 0700 /var/lib/postgresql/data\n");
    expect((await docker("build", "-q", "-t", "pgish:1", ctx)).code).toBe(0);
    const out = await docker("run", "--rm", "-v", "pgdata:/var/lib/postgresql/data", "pgish:1", "sh", "-c", "stat -c '%u:%g %a' /var/lib/postgresql/data; cat /var/lib/postgresql/data/seed");
    expect(out.stdout).toBe("70:70 700\nseed\n");
    // As the directory's owner, the entrypoint can chmod it (the step that failed as root 0755).
    expect((await docker("run", "--rm", "-u", "postgres", "-v", "pgdata:/var/lib/postgresql/data", "pgish:1", "chmod", "0700", "/var/lib/postgresql/data")).code).toBe(0);
    expect((await docker("volume", "rm", "pgdata")).code).toBe(0);
  });
  test("execs and failed starts leak nothing: the daemon's descriptors stay put, no zombie children", async () => {
    const pid = daemon.proc.pid;
    const fds = () => readdirSync(`/proc/${pid}/fd`).length;
    const zombies = () =>
      readdirSync("/proc")
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            const st = readFileSync(`/proc/${p}/stat`, "utf8");
            const [state, ppid] = st.slice(st.lastIndexOf(")") + 2).split(" ");
            return state === "Z" && ppid === String(pid);
          } catch {
            return false; // exited meanwhile
          }
        }).length;
    expect((await docker("run", "-d", "--name", "execs", "busybox", "sleep", "60")).code).toBe(0);
    expect((await docker("exec", "execs", "true")).code).toBe(0);
    const before = fds();
    for (let i = 0; i < 30; i++) expect((await docker("exec", "execs", "sh", "-c", "echo out; echo err >&2")).stdout).toBe("out\n");
    expect(fds()).toBeLessThanOrEqual(before + 3); // two per exec leaked before
    for (let i = 0; i < 5; i++) expect((await docker("run", "--rm", "busybox", "nosuchprogram")).code).toBe(127);
    for (let i = 0; i < 5; i++) expect((await docker("run", "--rm", "busybox", "true")).code).toBe(0);
    expect(zombies()).toBe(0); // one per failed start before
    expect((await docker("rm", "-f", "execs")).code).toBe(0);
  }, 60_000);
  test("pause answers once the container is frozen, not when the freeze was asked for", async () => {
    // A container forking all the time is what keeps a v1 freezer in FREEZING for a while.
    const id = (await docker("run", "-d", "--name", "forker", "busybox", "sh", "-c", "while :; do busybox true; done")).stdout.trim();
    const v1 = `/sys/fs/cgroup/freezer/bunker/${id}/freezer.state`;
    const v2 = [`/sys/fs/cgroup/bunker/${id}/cgroup.events`, `/sys/fs/cgroup/unified/bunker/${id}/cgroup.events`].find((p) => require("node:fs").existsSync(p));
    expect(require("node:fs").existsSync(v1) || v2 !== undefined).toBe(true); // the freezer is where this test looks
    for (let i = 0; i < 5; i++) {
      expect((await docker("pause", "forker")).code).toBe(0);
      if (require("node:fs").existsSync(v1)) expect(readFileSync(v1, "utf8").trim()).toBe("FROZEN");
      else if (v2) expect(readFileSync(v2, "utf8")).toMatch(/^frozen 1$/m);
      expect((await docker("unpause", "forker")).code).toBe(0);
    }
    expect((await docker("rm", "-f", "forker")).code).toBe(0);
  });
  test("a container keeps its address across restarts while the address is free", async () => {
    expect((await docker("network", "create", "keepnet")).code).toBe(0);
    const ip = async (name: string, net: string) => (await docker("inspect", "-f", `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, name)).stdout.trim();
    expect((await docker("run", "-d", "--name", "first", "--network", "keepnet", "busybox", "sleep", "60")).code).toBe(0);
    expect((await docker("run", "-d", "--name", "second", "--network", "keepnet", "busybox", "sleep", "60")).code).toBe(0);
    const a = await ip("second", "keepnet");
    const b = await ip("first", "keepnet");
    // With first's (lower) address free, a restarted second still gets its own back, not the lowest free one.
    expect((await docker("stop", "-t", "0", "first")).code).toBe(0);
    expect((await docker("restart", "-t", "0", "second")).code).toBe(0);
    expect(await ip("second", "keepnet")).toBe(a);
    expect((await docker("start", "first")).code).toBe(0);
    expect(await ip("first", "keepnet")).toBe(b);
    // On the default bridge too.
    expect((await docker("run", "-d", "--name", "onbridge", "busybox", "sleep", "60")).code).toBe(0);
    const c = await ip("onbridge", "bridge");
    expect((await docker("restart", "-t", "0", "onbridge")).code).toBe(0);
    expect(await ip("onbridge", "bridge")).toBe(c);
    expect((await docker("rm", "-f", "first", "second", "onbridge")).code).toBe(0);
    expect((await docker("network", "rm", "keepnet")).code).toBe(0);
  });
  test("docker cp of a volume's directory never returns host files, while another container swaps it for a symlink to /", async () => {
    const marker = `bunker-host-marker-${process.pid}`;
    writeFileSync(`/${marker}`, "host only\n");
    try {
      expect((await docker("volume", "create", "racevol")).code).toBe(0);
      const target = (await docker("run", "-d", "--name", "cptarget", "-v", "racevol:/vol", "busybox", "sh", "-c", "mkdir -p /vol/dir/sub && echo in > /vol/dir/sub/f && sleep 600")).stdout.trim();
      expect(target).toMatch(/^[0-9a-f]{64}$/);
      await Bun.sleep(200);
      // A second container on the same volume (not paused by the copy) swaps the directory, over and over.
      // A subdirectory is swapped: the walk lists it, then reads it a moment later (after it has
      // written the entry before): the window a walk by path string leaves open.
      const swap = "while true; do mv /vol/dir/sub /vol/real 2>/dev/null; ln -s / /vol/dir/sub; rm -f /vol/dir/sub; mv /vol/real /vol/dir/sub 2>/dev/null; done";
      expect((await docker("run", "-d", "--name", "cpswapper", "-v", "racevol:/vol", "busybox", "sh", "-c", swap)).code).toBe(0);
      let leaked = 0;
      let archives = 0;
      for (let i = 0; i < 40; i++) {
        const out = Bun.spawnSync([DOCKER!, "cp", "cptarget:/vol/dir", "-"], { env: { ...process.env, DOCKER_HOST: daemon.host } });
        if (out.exitCode !== 0) continue; // the directory was gone at that instant: an error, not a leak
        archives++;
        const names = Bun.spawnSync(["tar", "-t"], { stdin: out.stdout }).stdout.toString();
        if (names.includes(marker)) leaked++;
      }
      expect(archives).toBeGreaterThan(0);
      expect(leaked).toBe(0);
    } finally {
      await docker("rm", "-f", "cptarget", "cpswapper");
      await docker("volume", "rm", "racevol");
      require("node:fs").rmSync(`/${marker}`, { force: true });
    }
  });
});
