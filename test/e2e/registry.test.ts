/**
 * Registries end to end, on loopback only: Bunker pushing to and pulling from Debian's
 * docker-registry (CNCF distribution 2.8) plain and with htpasswd Basic auth over TLS, through
 * the bunker CLI and through the docker CLI; Bunker's own registry server driven by skopeo and by
 * Debian's dockerd; and faults injected by a proxy (a dropped connection resumes; a flipped byte,
 * a wrong size, a wrong config, a Content-Type mismatch fail and leave no image; kill -9 of the
 * daemon mid-pull, then a pull that completes without fetching twice).
 */
import { DOCKER, ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUNKER, cleanup, run, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.ts";
import { BUSYBOX, busyboxLayer, dockerArchive, filesLayer } from "../helpers/images.ts";

const REGISTRY = Bun.which("docker-registry");
const SKOPEO = Bun.which("skopeo");
const DOCKERD = Bun.which("dockerd");
const OPENSSL = Bun.which("openssl");
const HTPASSWD = Bun.which("htpasswd");

/** Wait until `url` answers at all. */
async function waitFor(url: string, tls?: object): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(url, { tls } as RequestInit).then(() => true, () => false);
    if (ok) return;
    await Bun.sleep(50);
  }
  throw new Error(`${url} did not come up`);
}

describe.skipIf(skipUnless("registries", { "the docker CLI": DOCKER, "root": ROOT, "busybox-static": BUSYBOX }))("registries", () => {
  let daemon: TestDaemon;
  let dir: string;
  let env: Record<string, string>;
  let imageId: string;
  const procs: Bun.Subprocess[] = [];
  const docker = (...args: string[]) => run([DOCKER!, ...args], env);
  const bunker = (...args: string[]) => run([BUNKER, ...args], env);
  const bunkerIn = (stdin: string, ...args: string[]) => run([BUNKER, ...args], env, stdin);
  const config = () => ({ "registry-certs-dir": join(dir, "certs"), "registry-stall-timeout": 1, "registry-addr": "127.0.0.1:15006", "registry-mirrors": ["http://127.0.0.1:15009"] });
  const restartDaemon = async () => {
    daemon = await startDaemon({ dir, configFile: join(dir, "daemon.json") });
    env = { DOCKER_HOST: daemon.host, HOME: join(dir, "home"), BUNKER_CONFIG: join(dir, "bunker-config") };
  };
  const idOf = async (name: string) => (await docker("image", "inspect", "-f", "{{.Id}}", name)).stdout.trim();
  /** The number of layers (chain IDs) the storage driver holds: unchanged after a failed pull. */
  const layerCount = () => readdirSync(join(daemon.dataRoot, "storage.v1.overlay", "snapshots")).length;
  const dropImage = async () => {
    for (const t of (await docker("images", "--format", "{{.Repository}}:{{.Tag}}")).stdout.split("\n").filter((t) => t && !t.startsWith("busybox:"))) await docker("rmi", "-f", t);
    for (const t of (await docker("images", "-q", "--no-trunc")).stdout.split("\n").filter((t) => t && t !== imageIdOfBusybox)) await docker("rmi", "-f", t);
  };
  let imageIdOfBusybox = "";

  beforeAll(async () => {
    dir = tempDir("bunker-reg-");
    mkdirSync(join(dir, "home"), { recursive: true });
    writeFileSync(join(dir, "daemon.json"), JSON.stringify(config()));
    await restartDaemon();
    // A three-layer image: busybox, 6 MB of random bytes (uploaded in chunks), a small file.
    const big = crypto.getRandomValues(new Uint8Array(6 * 1024 * 1024 / 4)).buffer;
    const bigBytes = new Uint8Array(6 * 1024 * 1024);
    for (let i = 0; i < 4; i++) bigBytes.set(new Uint8Array(big), i * big.byteLength); // compressible a little, big enough for chunks
    for (let i = 0; i < bigBytes.length; i += 4096) bigBytes[i] = i & 255;
    const layers = [await busyboxLayer(), await filesLayer({ "data/big.bin": bigBytes }), await filesLayer({ "etc/multi-release": new TextEncoder().encode("multi 1\n") })];
    writeFileSync(join(dir, "multi.tar"), await dockerArchive({ tags: ["multi:v1"], layers, gzip: true, cmd: ["cat", "/etc/multi-release"] }));
    writeFileSync(join(dir, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [layers[0]!], gzip: true }));
    expect((await docker("load", "-i", join(dir, "busybox.tar"))).code).toBe(0);
    imageIdOfBusybox = await idOf("busybox");
    expect((await docker("load", "-i", join(dir, "multi.tar"))).code).toBe(0);
    imageId = await idOf("multi:v1");
  });
  afterAll(async () => {
    for (const p of procs) p.kill();
    await Promise.all(procs.map((p) => p.exited));
    await daemon.stop();
    cleanup(dir);
  });

  /** Start Debian's docker-registry with `extra` YAML under `http:` and at the top. */
  async function distribution(port: number, opts: { auth?: string; tls?: { cert: string; key: string } } = {}): Promise<void> {
    const root = join(dir, `dist-${port}`);
    const yml = [
      "version: 0.1",
      "log:\n  level: error",
      `storage:\n  filesystem:\n    rootdirectory: ${root}\n  delete:\n    enabled: true`,
      `http:\n  addr: 127.0.0.1:${port}${opts.tls ? `\n  tls:\n    certificate: ${opts.tls.cert}\n    key: ${opts.tls.key}` : ""}`,
      ...(opts.auth ? [`auth:\n  htpasswd:\n    realm: test\n    path: ${opts.auth}`] : []),
    ].join("\n");
    writeFileSync(join(dir, `dist-${port}.yml`), yml);
    procs.push(Bun.spawn([REGISTRY!, "serve", join(dir, `dist-${port}.yml`)], { stdout: "ignore", stderr: "ignore" }));
    await waitFor(`${opts.tls ? "https" : "http"}://127.0.0.1:${port}/v2/`, { rejectUnauthorized: false });
  }

  test.skipIf(skipUnless("against docker-registry (plain): bunker push and pull a multi-layer image and get it back identical; docker push and pull through the daemon too", { "docker-registry": REGISTRY }))("against docker-registry (plain): bunker push and pull a multi-layer image and get it back identical; docker push and pull through the daemon too", async () => {
    await distribution(15000);
    expect((await docker("tag", "multi:v1", "127.0.0.1:15000/team/multi:v1")).code).toBe(0);
    const push = await bunker("push", "127.0.0.1:15000/team/multi:v1");
    expect(push.stderr).toBe("");
    expect(push.stdout).toContain("The push refers to repository [127.0.0.1:15000/team/multi]");
    expect(push.stdout).toMatch(/v1: digest: sha256:[0-9a-f]{64} size: \d+/);
    const again = await bunker("push", "127.0.0.1:15000/team/multi:v1");
    expect(again.stdout.match(/Layer already exists/g)?.length).toBe(3);
    await dropImage();
    expect((await docker("image", "inspect", "multi:v1")).code).not.toBe(0);
    const pull = await bunker("pull", "127.0.0.1:15000/team/multi:v1");
    expect(pull.code).toBe(0);
    expect(pull.stdout).toContain("Pull complete");
    expect(pull.stdout).toContain("Status: Downloaded newer image for 127.0.0.1:15000/team/multi:v1");
    expect(await idOf("127.0.0.1:15000/team/multi:v1")).toBe(imageId);
    expect((await docker("run", "--rm", "127.0.0.1:15000/team/multi:v1")).stdout).toBe("multi 1\n");
    // The docker CLI through our daemon: push a new tag, forget it, pull it (missing image pulled by run).
    expect((await docker("tag", "127.0.0.1:15000/team/multi:v1", "127.0.0.1:15000/team/multi:v2")).code).toBe(0);
    const dpush = await docker("push", "127.0.0.1:15000/team/multi:v2");
    expect(dpush.code).toBe(0);
    expect(dpush.stdout).toContain("v2: digest: sha256:");
    await dropImage();
    const drun = await docker("run", "--rm", "127.0.0.1:15000/team/multi:v2");
    expect(drun.stderr).toContain("Unable to find image '127.0.0.1:15000/team/multi:v2' locally");
    expect(drun.stdout).toBe("multi 1\n");
    expect(await idOf("127.0.0.1:15000/team/multi:v2")).toBe(imageId);
    const digests = (await docker("image", "inspect", "-f", "{{json .RepoDigests}}", "127.0.0.1:15000/team/multi:v2")).stdout;
    expect(digests).toContain("127.0.0.1:15000/team/multi@sha256:");
  });

  test.skipIf(skipUnless("against docker-registry with htpasswd Basic auth over TLS: refused without login; login, push, pull", { "docker-registry": REGISTRY, "openssl": OPENSSL, "htpasswd (apache2-utils)": HTPASSWD }))("against docker-registry with htpasswd Basic auth over TLS: refused without login; login, push, pull", async () => {
    const certs = join(dir, "tls");
    mkdirSync(certs, { recursive: true });
    const ssl = Bun.spawnSync([OPENSSL!, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(certs, "key.pem"), "-out", join(certs, "cert.pem")], { stderr: "ignore" });
    expect(ssl.exitCode).toBe(0);
    writeFileSync(join(dir, "htpasswd"), Bun.spawnSync([HTPASSWD!, "-Bbn", "alice", "s3cret"]).stdout);
    mkdirSync(join(dir, "certs", "127.0.0.1:15001"), { recursive: true });
    writeFileSync(join(dir, "certs", "127.0.0.1:15001", "ca.crt"), Bun.file(join(certs, "cert.pem")).size ? await Bun.file(join(certs, "cert.pem")).text() : "");
    await distribution(15001, { auth: join(dir, "htpasswd"), tls: { cert: join(certs, "cert.pem"), key: join(certs, "key.pem") } });
    await docker("tag", imageId, "127.0.0.1:15001/private/multi:v1");
    const denied = await bunker("push", "127.0.0.1:15001/private/multi:v1");
    expect(denied.code).not.toBe(0);
    expect(denied.stderr + denied.stdout).toContain("unauthorized");
    const badLogin = await bunkerIn("wrong\n", "login", "-u", "alice", "--password-stdin", "127.0.0.1:15001");
    expect(badLogin.code).not.toBe(0);
    const login = await bunkerIn("s3cret\n", "login", "-u", "alice", "--password-stdin", "127.0.0.1:15001");
    expect(login.stdout).toBe("Login Succeeded\n");
    expect(existsSync(join(dir, "bunker-config", "config.json"))).toBe(true);
    expect((await bunker("push", "127.0.0.1:15001/private/multi:v1")).code).toBe(0);
    await dropImage();
    expect((await bunker("pull", "127.0.0.1:15001/private/multi:v1")).code).toBe(0);
    expect(await idOf("127.0.0.1:15001/private/multi:v1")).toBe(imageId);
    // The docker CLI logs in through our daemon (POST /auth) and sends its credentials on pull.
    expect((await run([DOCKER!, "login", "-u", "alice", "--password-stdin", "127.0.0.1:15001"], env, "s3cret\n")).code).toBe(0);
    await dropImage();
    expect((await docker("pull", "127.0.0.1:15001/private/multi:v1")).code).toBe(0);
    expect((await bunker("logout", "127.0.0.1:15001")).stdout).toBe("Removing login credentials for 127.0.0.1:15001\n");
  });

  test.skipIf(skipUnless("our registry server: skopeo copies in and out (docker-archive → registry → OCI layout), inspects and lists tags; bad uploads are refused", { "skopeo": SKOPEO }))("our registry server: skopeo copies in and out (docker-archive → registry → OCI layout), inspects and lists tags; bad uploads are refused", async () => {
    const port = 15002;
    const reg = Bun.spawn([BUNKER, "registry", "serve", "--addr", `127.0.0.1:${port}`, "--root", join(dir, "ourreg")], { stdout: "pipe", stderr: "ignore" });
    procs.push(reg);
    await waitFor(`http://127.0.0.1:${port}/v2/`);
    const sk = (...args: string[]) => run([SKOPEO!, ...args]);
    const copyIn = await sk("copy", "--dest-tls-verify=false", `docker-archive:${join(dir, "multi.tar")}`, `docker://127.0.0.1:${port}/lib/multi:v1`);
    expect(copyIn.code).toBe(0);
    expect((await sk("copy", "--src-tls-verify=false", "--dest-tls-verify=false", `docker://127.0.0.1:${port}/lib/multi:v1`, `docker://127.0.0.1:${port}/lib/multi:v2`)).code).toBe(0);
    const inspect = JSON.parse((await sk("inspect", "--tls-verify=false", `docker://127.0.0.1:${port}/lib/multi:v1`)).stdout);
    expect(inspect.Layers.length).toBe(3);
    expect(JSON.parse((await sk("list-tags", "--tls-verify=false", `docker://127.0.0.1:${port}/lib/multi`)).stdout).Tags).toEqual(["v1", "v2"]);
    const out = join(dir, "oci-out");
    expect((await sk("copy", "--src-tls-verify=false", `docker://127.0.0.1:${port}/lib/multi:v1`, `oci:${out}:v1`)).code).toBe(0);
    expect(existsSync(join(out, "index.json"))).toBe(true);
    // The catalog with pagination, and what the server refuses.
    const cat = await fetch(`http://127.0.0.1:${port}/v2/_catalog?n=1`);
    expect(await cat.json()).toEqual({ repositories: ["lib/multi"] });
    const wrong = await fetch(`http://127.0.0.1:${port}/v2/lib/multi/blobs/uploads/?digest=sha256:${"0".repeat(64)}`, { method: "POST", body: "not that" });
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe("DIGEST_INVALID");
    const dangling = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: `sha256:${"1".repeat(64)}`, size: 2 }, layers: [] });
    const bad = await fetch(`http://127.0.0.1:${port}/v2/lib/multi/manifests/bad`, { method: "PUT", body: dangling, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe("MANIFEST_BLOB_UNKNOWN");
    // Bunker pulls from its own server.
    await dropImage();
    expect((await bunker("pull", `127.0.0.1:${port}/lib/multi:v1`)).code).toBe(0);
    expect(await idOf(`127.0.0.1:${port}/lib/multi:v1`)).toBe(imageId);
  });

  test("the daemon's built-in registry (registry-addr): push to it, list its tags, pull back", async () => {
    await docker("tag", imageId, "127.0.0.1:15006/site/multi:v1");
    expect((await bunker("push", "127.0.0.1:15006/site/multi:v1")).code).toBe(0);
    expect(await (await fetch("http://127.0.0.1:15006/v2/site/multi/tags/list")).json()).toEqual({ name: "site/multi", tags: ["v1"] });
    expect(existsSync(join(daemon.dataRoot, "registry", "repositories", "site", "multi"))).toBe(true);
    await dropImage();
    expect((await bunker("pull", "127.0.0.1:15006/site/multi:v1")).code).toBe(0);
    expect(await idOf("127.0.0.1:15006/site/multi:v1")).toBe(imageId);
  });

  test.skipIf(skipUnless("a Docker Hub mirror on loopback serves `docker pull <name>`; search reads a registry's catalog; our server over TLS", { "openssl": OPENSSL }))("a Docker Hub mirror on loopback serves `docker pull <name>`; search reads a registry's catalog; our server over TLS", async () => {
    const mirror = Bun.spawn([BUNKER, "registry", "serve", "--addr", "127.0.0.1:15009", "--root", join(dir, "mirror")], { stdout: "ignore", stderr: "ignore" });
    procs.push(mirror);
    await waitFor("http://127.0.0.1:15009/v2/");
    await docker("tag", imageId, "127.0.0.1:15009/library/mirrored:v1");
    expect((await bunker("push", "127.0.0.1:15009/library/mirrored:v1")).code).toBe(0);
    await dropImage();
    const viaMirror = await docker("pull", "mirrored:v1"); // docker.io/library/mirrored: answered by the mirror
    expect(viaMirror.code).toBe(0);
    expect(await idOf("mirrored:v1")).toBe(imageId);
    const search = await bunker("search", "127.0.0.1:15009/mirr");
    expect(search.stdout).toContain("127.0.0.1:15009/library/mirrored");
    const dsearch = await docker("search", "127.0.0.1:15009/mirr");
    expect(dsearch.stdout).toContain("127.0.0.1:15009/library/mirrored");
    // TLS on our own server.
    const certs = join(dir, "tls-own");
    mkdirSync(certs, { recursive: true });
    Bun.spawnSync([OPENSSL!, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(certs, "key.pem"), "-out", join(certs, "cert.pem")], { stderr: "ignore" });
    const tls = Bun.spawn([BUNKER, "registry", "serve", "--addr", "127.0.0.1:15008", "--root", join(dir, "tlsreg"), "--tls-cert", join(certs, "cert.pem"), "--tls-key", join(certs, "key.pem")], { stdout: "ignore", stderr: "ignore" });
    procs.push(tls);
    const ca = await Bun.file(join(certs, "cert.pem")).text();
    await waitFor("https://127.0.0.1:15008/v2/", { ca });
    expect((await fetch("https://127.0.0.1:15008/v2/", { tls: { ca } } as RequestInit)).status).toBe(200); // verified against its certificate
    await docker("tag", imageId, "127.0.0.1:15008/sec/multi:v1");
    expect((await bunker("push", "127.0.0.1:15008/sec/multi:v1")).code).toBe(0);
    expect(await (await fetch("https://127.0.0.1:15008/v2/sec/multi/tags/list", { tls: { ca } } as RequestInit)).json()).toEqual({ name: "sec/multi", tags: ["v1"] });
  });

  test.skipIf(skipUnless("Debian's dockerd pulls from and pushes to our registry server", { "dockerd (docker.io)": DOCKERD }))("Debian's dockerd pulls from and pushes to our registry server", async () => {
    const port = 15004;
    const reg = Bun.spawn([BUNKER, "registry", "serve", "--addr", `127.0.0.1:${port}`, "--root", join(dir, "ourreg2")], { stdout: "ignore", stderr: "ignore" });
    procs.push(reg);
    await waitFor(`http://127.0.0.1:${port}/v2/`);
    expect((await docker("tag", imageId, `127.0.0.1:${port}/x/multi:v1`)).code).toBe(0);
    expect((await bunker("push", `127.0.0.1:${port}/x/multi:v1`)).code).toBe(0);
    const ddir = join("/var/tmp", `bunker-reg-dockerd-${process.pid}`);
    const dsock = join(ddir, "docker.sock");
    mkdirSync(ddir, { recursive: true });
    const dockerd = Bun.spawn([DOCKERD!, "--data-root", join(ddir, "data"), "--exec-root", join(ddir, "run"), "-H", `unix://${dsock}`, "--pidfile", join(ddir, "docker.pid"), "--iptables=false", "--ip6tables=false", "--bridge=none", "--insecure-registry", `127.0.0.1:${port}`], { stdout: "ignore", stderr: "ignore" });
    try {
      for (let i = 0; i < 300 && !(await fetch("http://x/_ping", { unix: dsock } as RequestInit).then((r) => r.ok, () => false)); i++) await Bun.sleep(100);
      const peer = (...args: string[]) => run([DOCKER!, "-H", `unix://${dsock}`, ...args]);
      const pulled = await peer("pull", `127.0.0.1:${port}/x/multi:v1`);
      expect(pulled.code).toBe(0);
      expect((await peer("image", "inspect", "-f", "{{.Id}}", `127.0.0.1:${port}/x/multi:v1`)).stdout.trim()).toBe(imageId);
      expect((await peer("tag", `127.0.0.1:${port}/x/multi:v1`, `127.0.0.1:${port}/y/from-dockerd:v1`)).code).toBe(0);
      const pushed = await peer("push", `127.0.0.1:${port}/y/from-dockerd:v1`);
      expect(pushed.code).toBe(0);
      expect(pushed.stdout).toMatch(/Mounted from x\/multi|Layer already exists|Pushed/);
      expect((await bunker("pull", `127.0.0.1:${port}/y/from-dockerd:v1`)).code).toBe(0);
      expect(await idOf(`127.0.0.1:${port}/y/from-dockerd:v1`)).toBe(imageId);
    } finally {
      dockerd.kill("SIGTERM");
      await dockerd.exited;
      for (const m of require("node:fs").readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l: string) => l.split(" ")[4]).filter((p: string | undefined) => p?.startsWith(ddir)).reverse()) Bun.spawnSync(["umount", "-l", m]);
      cleanup(ddir);
    }
  });

  test("faults through a proxy: a dropped connection resumes; a flipped byte, a wrong size, a wrong config digest, a Content-Type mismatch and a stall fail the pull and leave no image; kill -9 mid-pull, then a pull that completes", async () => {
    const port = 15005;
    const reg = Bun.spawn([BUNKER, "registry", "serve", "--addr", `127.0.0.1:${port}`, "--root", join(dir, "faultreg")], { stdout: "ignore", stderr: "ignore" });
    procs.push(reg);
    await waitFor(`http://127.0.0.1:${port}/v2/`);
    const upstream = `127.0.0.1:${port}`;
    await docker("tag", imageId, `${upstream}/f/multi:v1`);
    expect((await bunker("push", `${upstream}/f/multi:v1`)).code).toBe(0);
    const manifest = JSON.parse(await (await fetch(`http://${upstream}/v2/f/multi/manifests/v1`)).text()) as { config: { digest: string }; layers: { digest: string; size: number }[] };
    const bigLayer = [...manifest.layers].sort((a, b) => b.size - a.size)[0]!.digest;
    let mode: "pass" | "drop" | "flip" | "short" | "config" | "ctype" | "stall" | "stallOnce" = "pass";
    const ranges: string[] = [];
    let stalledOnce: () => void = () => {};
    const stalled = new Promise<void>((r) => (stalledOnce = r));
    const proxy = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const url = new URL(req.url);
        const range = req.headers.get("range");
        if (range && url.pathname.includes(bigLayer.slice(7))) ranges.push(range);
        const up = await fetch(`http://${upstream}${url.pathname}${url.search}`, { method: req.method, headers: req.headers, body: req.body });
        const headers = new Headers(up.headers);
        if (mode === "ctype" && url.pathname.includes("/manifests/")) {
          headers.set("content-type", "application/vnd.docker.distribution.manifest.list.v2+json");
          return new Response(await up.arrayBuffer(), { status: up.status, headers });
        }
        if (mode === "config" && url.pathname.endsWith(manifest.config.digest)) {
          const body = new Uint8Array(await up.arrayBuffer());
          body[body.length - 3] = body[body.length - 3]! ^ 1;
          return new Response(body, { status: up.status, headers });
        }
        if (!url.pathname.endsWith(bigLayer) || req.method !== "GET") return new Response(up.body, { status: up.status, headers });
        const body = new Uint8Array(await up.arrayBuffer());
        if (mode === "flip") {
          body[body.length >> 1] = body[body.length >> 1]! ^ 0xff;
          return new Response(body, { status: up.status, headers });
        }
        if (mode === "short") {
          headers.delete("content-length");
          return new Response(body.subarray(0, body.length - 100), { status: up.status, headers });
        }
        if (mode === "drop" || mode === "stall" || mode === "stallOnce") {
          if (mode !== "stall" && range) return new Response(body, { status: up.status, headers }); // the resumed part, as the registry sent it
          const first = mode;
          headers.delete("content-length");
          return new Response(
            new ReadableStream({
              start(c) {
                c.enqueue(body.subarray(0, 1024 * 1024));
                if (first === "drop") setTimeout(() => c.error(new Error("connection dropped by the test proxy")), 50);
                else stalledOnce(); // never ends: the client must give up on its own (every time in "stall")
              },
            }),
            { status: up.status, headers },
          );
        }
        return new Response(body, { status: up.status, headers });
      },
    });
    const via = `127.0.0.1:${proxy.port}/f/multi:v1`;
    try {
      await dropImage();
      const before = layerCount();
      // The config first: once a pull fetched and verified it, it stays for the next attempt.
      for (const m of ["config", "ctype", "flip", "short", "stall"] as const) {
        mode = m;
        const r = await bunker("pull", via);
        if (m === "stall") expect(r.stderr).toContain("stalled");
        expect(r.code).not.toBe(0);
        expect(r.stderr.length).toBeGreaterThan(0);
        expect((await docker("image", "inspect", via)).code).not.toBe(0);
        expect(layerCount()).toBe(before);
      }
      // A dropped connection: the pull resumes the big layer with a Range request and completes.
      mode = "drop";
      ranges.length = 0;
      const resumed = await bunker("pull", via);
      expect(resumed.code).toBe(0);
      expect(ranges.some((r) => /^bytes=[1-9]\d*-$/.test(r))).toBe(true);
      expect(await idOf(via)).toBe(imageId);
      // kill -9 of the daemon while the big layer is half-way; the next pull resumes from disk.
      await dropImage();
      mode = "stallOnce";
      ranges.length = 0;
      writeFileSync(join(dir, "daemon.json"), JSON.stringify({ ...config(), "registry-stall-timeout": 30 }));
      await daemon.stop();
      await restartDaemon();
      const pulling = bunker("pull", via);
      await stalled;
      await Bun.sleep(300);
      daemon.proc.kill("SIGKILL");
      await daemon.proc.exited;
      await pulling;
      writeFileSync(join(dir, "daemon.json"), JSON.stringify(config()));
      await restartDaemon();
      mode = "pass";
      const done = await bunker("pull", via);
      expect(done.code).toBe(0);
      expect(ranges.some((r) => /^bytes=[1-9]\d*-$/.test(r))).toBe(true); // continued, not restarted
      expect(await idOf(via)).toBe(imageId);
      expect(readdirSync(join(daemon.dataRoot, "content", "ingest"))).toEqual([]); // no half download left
      const blobs = readdirSync(join(daemon.dataRoot, "content", "blobs", "sha256"));
      expect(new Set(blobs).size).toBe(blobs.length);
    } finally {
      proxy.stop(true);
    }
  }, 120_000);
});
