/**
 * Builds with the real docker CLI (`DOCKER_BUILDKIT=0`, the classic `POST /build`) against Bunker:
 * Dockerfiles covering the instructions and flags, run and checked; the same Dockerfile built by
 * Debian's dockerd gives an image with an equal filesystem and config; the cache (no change, one
 * COPY source changed, a build arg changed); bad input; a multi-stage build compiling C with gcc
 * into a scratch image (when a gcc root filesystem made by debootstrap is available). URLs for
 * ADD are served on loopback by the test.
 */
import { DOCKER, ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { flatten } from "../helpers/image-fs.ts";
import { BUNKER, cleanup, run, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.ts";
import { BUSYBOX, busyboxLayer, dockerArchive } from "../helpers/images.ts";

const DOCKERD = Bun.which("dockerd");
/** A Debian root filesystem with gcc (debootstrap --include=gcc,libc6-dev), cached between runs. */
const GCC_ROOTFS = process.env.BUNKER_TEST_GCC_ROOTFS ?? "/var/cache/bunker-test/gcc-rootfs";

describe.skipIf(skipUnless("docker build against Bunker (classic builder)", { "the docker CLI": DOCKER, "root": ROOT, "busybox-static": BUSYBOX }))("docker build against Bunker (classic builder)", () => {
  let daemon: TestDaemon;
  let dir: string;
  let env: Record<string, string>;
  let files: ReturnType<typeof Bun.serve>;
  const docker = (...args: string[]) => run([DOCKER!, ...args], env);
  const build = (ctx: string, ...args: string[]) => run([DOCKER!, "build", ...args, ctx], env);
  const ctxDir = (name: string, entries: Record<string, string | Uint8Array>) => {
    const d = join(dir, name);
    for (const [p, body] of Object.entries(entries)) {
      mkdirSync(join(d, p, ".."), { recursive: true });
      writeFileSync(join(d, p), body);
    }
    return d;
  };

  beforeAll(async () => {
    dir = tempDir("bunker-build-");
    daemon = await startDaemon({ dir });
    env = { DOCKER_HOST: daemon.host, DOCKER_BUILDKIT: "0" };
    writeFileSync(join(dir, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer()], gzip: true }));
    expect((await docker("load", "-i", join(dir, "busybox.tar"))).code).toBe(0);
    files = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => (new URL(req.url).pathname === "/remote.txt" ? new Response("fetched over http\n", { headers: { "Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT" } }) : new Response("no", { status: 404 })) });
  });
  afterAll(async () => {
    files.stop(true);
    const ids = (await docker("ps", "-aq")).stdout.split("\n").filter(Boolean);
    if (ids.length) await docker("rm", "-f", ...ids);
    await daemon.stop();
    cleanup(dir);
  });

  /** A Dockerfile the classic builders of both engines understand (no heredocs, no --chmod). */
  const common = () =>
    ctxDir("common", {
      Dockerfile: [
        "# syntax=docker/dockerfile:1",
        "ARG BASE=busybox",
        "FROM ${BASE} AS base",
        "LABEL org.test.name=\"common build\" org.test.version=1",
        "MAINTAINER tests@example.com",
        "ARG WHO=world",
        "ENV GREETING=\"hello ${WHO}\" \\",
        "    OTHER=${UNSET:-fallback}",
        "WORKDIR /work",
        "COPY files/ ./files/",
        "COPY --chown=1000:1000 single.txt owned.txt",
        "COPY *.md /docs/",
        "ADD archive.tar.gz /unpacked/",
        `ADD http://127.0.0.1:${files.port}/remote.txt /remote/`,
        "RUN echo \"$GREETING $OTHER\" > /work/greeting && mkdir -p /var/empty && rm /unpacked/drop.txt",
        "RUN [\"sh\", \"-c\", \"echo exec-form > /work/exec\"]",
        "EXPOSE 8080 9090/udp",
        "VOLUME /data",
        "USER 1000:1000",
        "STOPSIGNAL SIGUSR1",
        "HEALTHCHECK --interval=1s --timeout=1s --retries=2 CMD test -f /work/greeting",
        "ONBUILD USER 0",
        "ONBUILD RUN echo triggered > /tmp/onbuild",
        "ENTRYPOINT [\"sh\", \"-c\"]",
        "CMD [\"cat /work/greeting /work/exec\"]",
        "",
      ].join("\n"),
      "files/a.txt": "a\n",
      "files/nested/b.txt": "b\n",
      "single.txt": "single\n",
      "README.md": "readme\n",
      "NOTES.md": "notes\n",
      "ignored.log": "should not be sent\n",
      ".dockerignore": "*.log\n!keep.log\n",
      "keep.log": "kept\n",
      "archive.tar.gz": gzipSync(Buffer.from(makeTar({ "in-archive.txt": "from the archive\n", "drop.txt": "dropped later\n" }))),
    });

  test("a Dockerfile with every classic instruction builds an image that behaves as written", async () => {
    const ctx = common();
    const r = await build(ctx, "-t", "common:1", "--build-arg", "WHO=bunker", "--label", "from.cli=yes", "--network", "none");
    expect(r.stderr.replace(/DEPRECATED[\s\S]*?variable\.\n+/, "")).toBe("");
    expect(r.stdout).toContain("Step 1/23 : ARG BASE=busybox\nStep 2/23 : FROM ${BASE} AS base\n");
    expect(r.stdout).toContain("Successfully tagged common:1");
    expect((await docker("run", "--rm", "common:1")).stdout).toBe("hello bunker fallback\nexec-form\n");
    expect((await docker("run", "--rm", "--entrypoint", "id", "common:1", "-u")).stdout).toBe("1000\n"); // USER
    const files = await docker("run", "--rm", "--user", "0", "--entrypoint", "sh", "common:1", "-c", "cat /work/files/a.txt /work/files/nested/b.txt /docs/README.md /docs/NOTES.md /unpacked/in-archive.txt /remote/remote.txt; ls /unpacked; stat -c '%u:%g %a' /work/owned.txt /remote/remote.txt; ls /work; ls / | grep -c keep.log");
    expect(files.stdout).toBe("a\nb\nreadme\nnotes\nfrom the archive\nfetched over http\nin-archive.txt\n1000:1000 644\n0:0 600\nexec\nfiles\ngreeting\nowned.txt\n0\n");
    const cfg = JSON.parse((await docker("image", "inspect", "-f", "{{json .Config}}", "common:1")).stdout);
    expect(cfg.Env).toContain("GREETING=hello bunker");
    expect(cfg.Env).toContain("OTHER=fallback");
    expect(cfg.Labels).toEqual({ "org.example.test": "yes", "org.test.name": "common build", "org.test.version": "1", "from.cli": "yes" }); // the base image's label too
    expect(cfg.ExposedPorts).toEqual({ "8080/tcp": {}, "9090/udp": {} });
    expect(cfg.Volumes).toEqual({ "/data": {} });
    expect([cfg.User, cfg.WorkingDir, cfg.StopSignal]).toEqual(["1000:1000", "/work", "SIGUSR1"]);
    expect(cfg.Entrypoint).toEqual(["sh", "-c"]);
    expect(cfg.OnBuild).toEqual(["USER 0", "RUN echo triggered > /tmp/onbuild"]);
    expect(cfg.Healthcheck).toEqual({ Test: ["CMD-SHELL", "test -f /work/greeting"], Interval: 1e9, Timeout: 1e9, Retries: 2 });
    expect((await docker("image", "inspect", "-f", "{{.Author}}", "common:1")).stdout.trim()).toBe("tests@example.com");
    // The health check runs: the container becomes healthy.
    await docker("run", "-d", "--name", "healthy", "common:1", "sleep 30");
    let health = "";
    for (let i = 0; i < 60 && health !== "healthy"; i++) {
      await Bun.sleep(100);
      health = (await docker("inspect", "-f", "{{.State.Health.Status}}", "healthy")).stdout.trim();
    }
    expect(health).toBe("healthy");
    await docker("rm", "-f", "healthy");
    // ONBUILD fires in a child image.
    const child = ctxDir("child", { Dockerfile: "FROM common:1\nRUN test -f /tmp/onbuild && echo child-ok > /child\n" });
    const cr = await build(child, "-t", "child:1", "--network", "none");
    expect(cr.stdout).toContain("# Executing 2 build triggers");
    expect((await docker("run", "--rm", "--entrypoint", "cat", "child:1", "/tmp/onbuild", "/child")).stdout).toBe("triggered\nchild-ok\n");
    // History as Docker writes it.
    const history = (await docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", "common:1")).stdout;
    expect(history).toContain('/bin/sh -c #(nop)  CMD ["cat /work/greeting /work/exec"]');
    expect(history).toContain("|1 WHO=bunker /bin/sh -c echo"); // the global BASE is not in the stage's scope
    expect(history).toMatch(/COPY file:[0-9a-f]{64} in \/work\/owned.txt/);
    expect(history).not.toContain("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    // Build steps are not listed as images; the build cache shows in system df.
    expect((await docker("images", "--format", "{{.Repository}}")).stdout.split("\n").filter(Boolean).sort()).toEqual(["busybox", "child", "common"]);
    expect((await docker("system", "df", "--format", "{{.Type}} {{.TotalCount}}")).stdout).toMatch(/Build Cache [1-9]/);
  });

  test.skipIf(skipUnless("Debian's dockerd builds the same Dockerfile into an equal filesystem and config", { "dockerd (docker.io)": DOCKERD }))("Debian's dockerd builds the same Dockerfile into an equal filesystem and config", async () => {
    const ddir = join("/var/tmp", `bunker-build-dockerd-${process.pid}`);
    const dsock = join(ddir, "docker.sock");
    mkdirSync(ddir, { recursive: true });
    const dockerd = Bun.spawn([DOCKERD!, "--data-root", join(ddir, "data"), "--exec-root", join(ddir, "run"), "-H", `unix://${dsock}`, "--pidfile", join(ddir, "docker.pid"), "--iptables=false", "--ip6tables=false", "--bridge=none"], { stdout: "ignore", stderr: "ignore" });
    try {
      for (let i = 0; i < 300 && !(await fetch("http://x/_ping", { unix: dsock } as RequestInit).then((r) => r.ok, () => false)); i++) await Bun.sleep(100);
      const peer = (...args: string[]) => run([DOCKER!, "-H", `unix://${dsock}`, ...args], { DOCKER_BUILDKIT: "0" });
      expect((await peer("load", "-i", join(dir, "busybox.tar"))).code).toBe(0);
      const ctx = common();
      const theirs = await peer("build", "-t", "cmp:1", "--build-arg", "WHO=bunker", "--network", "none", ctx);
      expect(theirs.code).toBe(0);
      expect((await build(ctx, "-t", "cmp:1", "--build-arg", "WHO=bunker", "--network", "none")).code).toBe(0);
      const save = async (d: (...a: string[]) => Promise<{ stdout: string }>, sock: string) => {
        const out = join(dir, `save-${sock.length}-${Date.now()}.tar`);
        await run([DOCKER!, "-H", sock, "save", "-o", out, "cmp:1"]);
        return new Uint8Array(readFileSync(out));
      };
      const ours = await flatten(await save(docker, daemon.host));
      const ref = await flatten(await save(peer, `unix://${dsock}`));
      // Compare everything but directory entries the engines add for mount points (/proc, /sys, /dev, /etc files).
      const skip = (p: string) => /^(proc|sys|dev)(\/|$)|^etc\/(hosts|hostname|resolv\.conf)$|^\.dockerenv$/.test(p);
      const view = (m: Map<string, string>) => Object.fromEntries([...m].filter(([p]) => !skip(p)).sort(([a], [b]) => a.localeCompare(b)));
      expect(view(ours)).toEqual(view(ref));
      const fields = ["Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels", "Healthcheck", "StopSignal", "OnBuild"];
      const cfgOf = async (host: string) => JSON.parse((await run([DOCKER!, "-H", host, "image", "inspect", "-f", "{{json .Config}}", "cmp:1"])).stdout);
      const a = await cfgOf(daemon.host);
      const b = await cfgOf(`unix://${dsock}`);
      for (const f of fields) expect([f, a[f] ?? null]).toEqual([f, b[f] ?? null]);
    } finally {
      dockerd.kill("SIGTERM");
      await dockerd.exited;
      for (const m of readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4]).filter((p): p is string => !!p?.startsWith(ddir)).reverse()) Bun.spawnSync(["umount", "-l", m]);
      cleanup(ddir);
    }
  }, 120_000);

  test("BuildKit-era syntax: heredocs (RUN and COPY), COPY --chmod and --link, --target, -f outside the context, --iidfile, -q", async () => {
    const ctx = ctxDir("modern", {
      Dockerfile: [
        "FROM busybox AS first",
        "RUN <<EOF",
        "echo from-heredoc > /h1",
        "echo second line >> /h1",
        "EOF",
        "COPY <<EOF /inline.txt",
        "inline content",
        "EOF",
        "COPY --chmod=755 --link run.sh /run.sh",
        "FROM first AS second",
        "RUN echo not-reached > /second",
        "",
      ].join("\n"),
      "run.sh": "#!/bin/sh\necho script\n",
    });
    const iid = join(dir, "iid");
    const r = await build(ctx, "--target", "first", "-t", "modern:1", "--iidfile", iid, "--network", "none");
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("not-reached");
    expect(readFileSync(iid, "utf8")).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await docker("run", "--rm", "modern:1", "sh", "-c", "cat /h1 /inline.txt; stat -c %a /run.sh; /run.sh")).stdout).toBe("from-heredoc\nsecond line\ninline content\n755\nscript\n");
    const outside = join(dir, "Outside.Dockerfile");
    writeFileSync(outside, "FROM busybox\nCOPY run.sh /from-outside\n");
    const q = await build(ctx, "-q", "-f", outside, "--network", "none");
    expect(q.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    // bunker build: the same through Bunker's own CLI, with its step summary.
    const own = await run([BUNKER, "build", "-t", "modern:2", "--target", "first", ctx], { DOCKER_HOST: daemon.host });
    expect(own.code).toBe(0);
    expect(own.stdout).toMatch(/Steps:\n\s+1\s+[\d.]+s\s+FROM busybox AS first\n\s+2\s+[\d.]+s\s+CACHED\s+RUN <<EOF/);
  });

  test("the cache: a rebuild reuses every step; a changed COPY source rebuilds from that step; a changed build arg only from its first use", async () => {
    const ctx = ctxDir("cache", {
      Dockerfile: "FROM busybox\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\nARG B=x\nRUN echo before-use > /before\nRUN echo \"$B\" > /b\nLABEL l=$B\n",
      "a.txt": "first\n",
    });
    const cached = (out: string) => out.split("Step ").slice(1).map((s) => s.includes("Using cache"));
    expect((await build(ctx, "-t", "cache:1", "--network", "none")).code).toBe(0);
    const again = await build(ctx, "-t", "cache:1", "--network", "none");
    expect(cached(again.stdout)).toEqual([false, true, true, true, true, true, true, true]);
    writeFileSync(join(ctx, "a.txt"), "second\n");
    const touched = await build(ctx, "-t", "cache:2", "--network", "none");
    expect(cached(touched.stdout)).toEqual([false, true, false, false, false, false, false, false]);
    expect((await docker("run", "--rm", "cache:2", "cat", "/copy")).stdout).toBe("second\n");
    // B changes: the RUN before its use is still from the cache? No: every RUN after ARG B sees it (as Docker).
    const arg = await build(ctx, "-t", "cache:3", "--build-arg", "B=y", "--network", "none");
    expect(cached(arg.stdout)).toEqual([false, true, true, true, true, false, false, false]);
    expect((await docker("run", "--rm", "cache:3", "cat", "/b")).stdout).toBe("y\n");
    // The cache survives a daemon restart.
    await daemon.stop();
    daemon = await startDaemon({ dir });
    env = { DOCKER_HOST: daemon.host, DOCKER_BUILDKIT: "0" };
    const afterRestart = await build(ctx, "-t", "cache:3", "--build-arg", "B=y", "--network", "none");
    expect(cached(afterRestart.stdout).slice(1).every(Boolean)).toBe(true);
    // builder prune drops the cache; the tagged images stay.
    const pruned = await docker("builder", "prune", "-f");
    expect(pruned.code).toBe(0);
    expect((await docker("run", "--rm", "cache:3", "cat", "/b")).stdout).toBe("y\n");
  });

  test("bad input: unknown instruction, bad flag, missing COPY source, a source outside the context, a failing RUN (its exit code), ADD --checksum, a context that is not a tar", async () => {
    const bad = async (df: string, files: Record<string, string> = {}) => build(ctxDir(`bad-${Math.random().toString(36).slice(2)}`, { Dockerfile: df, ...files }), "--network", "none");
    const unknown = await bad("FROM busybox\nFOO bar\n");
    expect(unknown.stderr).toContain("unknown instruction: FOO");
    expect(unknown.code).not.toBe(0);
    expect((await bad("FROM busybox\nCOPY --bogus=1 a /a\n", { a: "a" })).stderr).toContain("Unknown flag: bogus");
    expect((await bad("FROM busybox\nCOPY missing.txt /x\n")).stderr).toContain("missing.txt");
    expect((await bad("FROM busybox\nCOPY ../outside /x\n")).stderr).toContain("outside the build context");
    const before = (await docker("ps", "-aq")).stdout;
    const failing = await bad("FROM busybox\nRUN echo step-one\nRUN exit 3\n");
    expect(failing.code).toBe(3);
    expect(failing.stderr).toContain("The command '/bin/sh -c exit 3' returned a non-zero code: 3");
    expect((await docker("ps", "-aq")).stdout).toBe(before); // no build container left behind
    const rerun = await bad("FROM busybox\nRUN echo step-one\nRUN exit 3\n");
    expect(rerun.stdout).toContain("Using cache"); // what succeeded stays cached
    // Symlinks in the context never let the daemon read its own files: an ADD of a link to a host
    // archive copies the link, a glob through a link to a host directory finds nothing.
    const hostDir = join(dir, "host-secrets");
    mkdirSync(hostDir, { recursive: true });
    writeFileSync(join(hostDir, "secret.txt"), "host secret\n");
    writeFileSync(join(hostDir, "secret.tar.gz"), gzipSync(Buffer.from(makeTar({ "leaked.txt": "host archive\n" }))));
    const linkCtx = ctxDir("links", { Dockerfile: "FROM busybox\nADD archive.tgz /x/\n" });
    require("node:fs").symlinkSync(join(hostDir, "secret.tar.gz"), join(linkCtx, "archive.tgz"));
    require("node:fs").symlinkSync(hostDir, join(linkCtx, "hostdir"));
    expect((await build(linkCtx, "-t", "links:1", "--network", "none")).code).toBe(0);
    expect((await docker("run", "--rm", "links:1", "sh", "-c", "ls /x; test -e /x/leaked.txt && echo LEAK")).stdout).not.toContain("LEAK");
    writeFileSync(join(linkCtx, "Dockerfile"), "FROM busybox\nCOPY hostdir/* /y/\n");
    const globbed = await build(linkCtx, "-t", "links:2", "--network", "none");
    expect(globbed.code).not.toBe(0);
    expect(globbed.stdout + globbed.stderr).not.toContain("host secret");
    // ADD --checksum: the right digest of a download passes, a wrong one fails the step, a local source refuses the flag.
    const remote = `http://127.0.0.1:${files.port}/remote.txt`;
    const good = new Bun.CryptoHasher("sha256").update("fetched over http\n").digest("hex");
    expect((await bad(`FROM busybox\nADD --checksum=sha256:${good} ${remote} /r.txt\n`)).code).toBe(0);
    const wrong = await bad(`FROM busybox\nADD --checksum=sha256:${"0".repeat(64)} ${remote} /r.txt\n`);
    expect(wrong.stderr).toContain("digest mismatch");
    expect(wrong.code).not.toBe(0);
    expect((await bad(`FROM busybox\nADD --checksum=sha256:${good} a /a\n`, { a: "a" })).stderr).toContain("checksum can't be specified for non-HTTP(S) sources");
    expect((await bad(`FROM busybox\nADD --checksum=md5:abc ${remote} /r.txt\n`)).stderr).toContain("invalid checksum digest format");
    const notTar = await fetch(`http://localhost/v1.51/build`, { unix: daemon.socket, method: "POST", body: "this is not a tar archive at all, no no no".repeat(20) } as RequestInit);
    expect(notTar.status).toBe(400);
    expect(((await notTar.json()) as { message: string }).message).toContain("build context");
  });

  test.skipIf(skipUnless("multi-stage: gcc in a Debian stage (made by debootstrap on the host), only the binary in a scratch stage", { "a Debian rootfs with gcc (test/setup/gcc-rootfs.ts)": existsSync(join(GCC_ROOTFS, "usr/bin/gcc")) }))("multi-stage: gcc in a Debian stage (made by debootstrap on the host), only the binary in a scratch stage", async () => {
    const tarred = Bun.spawnSync(["tar", "--numeric-owner", "-C", GCC_ROOTFS, "-c", "."], { stdout: "pipe", maxBuffer: 1 << 30 });
    writeFileSync(join(dir, "gcc-rootfs.tar"), tarred.stdout);
    expect((await run([DOCKER!, "import", join(dir, "gcc-rootfs.tar"), "debian-gcc:local"], env)).code).toBe(0);
    const ctx = ctxDir("gcc", {
      Dockerfile: "FROM debian-gcc:local AS build\nWORKDIR /src\nCOPY hello.c .\nRUN gcc -static -O2 -o /hello hello.c\nFROM scratch\nCOPY --from=build /hello /hello\nCMD [\"/hello\"]\n",
      "hello.c": '#include <stdio.h>\nint main(void) { printf("hello from gcc\\n"); return 0; }\n',
    });
    const r = await build(ctx, "-t", "hello-c:1", "--network", "none");
    expect(r.code).toBe(0);
    expect((await docker("run", "--rm", "hello-c:1")).stdout).toBe("hello from gcc\n");
    const layers = JSON.parse((await docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", "hello-c:1")).stdout);
    expect(layers.length).toBe(1); // only the binary
  }, 120_000);
});

/** A small tar (for ADD's archive extraction). */
function makeTar(files: Record<string, string>): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const [name, body] of Object.entries(files)) {
    const h = new Uint8Array(512);
    const enc = new TextEncoder();
    h.set(enc.encode(name), 0);
    h.set(enc.encode("0000644\0"), 100);
    h.set(enc.encode("0000000\0"), 108);
    h.set(enc.encode("0000000\0"), 116);
    h.set(enc.encode(`${body.length.toString(8).padStart(11, "0")}\0`), 124);
    h.set(enc.encode("14600000000\0"), 136);
    h.set(enc.encode("        "), 148);
    h[156] = 0x30;
    h.set(enc.encode("ustar\0"), 257);
    h.set(enc.encode("00"), 263);
    const sum = h.reduce((a, b) => a + b, 0);
    h.set(enc.encode(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
    blocks.push(h);
    const data = new Uint8Array(Math.ceil(body.length / 512) * 512);
    data.set(enc.encode(body));
    blocks.push(data);
  }
  blocks.push(new Uint8Array(1024));
  return Buffer.concat(blocks);
}


