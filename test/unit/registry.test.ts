/**
 * Registry pieces that need no root: the auth helpers (challenges, X-Registry-Auth, the
 * credentials file, insecure registries) and the registry server in-process (chunked and
 * monolithic uploads, digest checks, mounts, manifests by tag and digest, pagination, referrers,
 * Basic authentication, garbage collection).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { digestOf } from "../../src/core/content/digest.ts";
import { createLogger } from "../../src/core/log.ts";
import { decodeRegistryAuth, encodeRegistryAuth, parseChallenges, removeCredentials, storeCredentials, storedCredentials } from "../../src/core/registry/auth.ts";
import { isInsecure } from "../../src/core/registry/client.ts";
import { type RegistryServer, startRegistryServer } from "../../src/core/registry/server.ts";

describe("registry auth helpers", () => {
  test("challenges, X-Registry-Auth both ways, the credentials file, insecure hosts", () => {
    expect(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"')).toEqual([
      { scheme: "bearer", params: { realm: "https://auth.example/token", service: "registry.example", scope: "repository:a/b:pull" } },
    ]);
    expect(parseChallenges('Basic realm="x"')[0]!.scheme).toBe("basic");
    const header = encodeRegistryAuth({ username: "u", password: "p:w", serveraddress: "h:5000" });
    expect(decodeRegistryAuth(header)).toEqual({ username: "u", password: "p:w", serveraddress: "h:5000" });
    expect(decodeRegistryAuth(Buffer.from(JSON.stringify({ auth: Buffer.from("a:b").toString("base64") })).toString("base64"))).toMatchObject({ username: "a", password: "b" });
    expect(decodeRegistryAuth(Buffer.from("{}").toString("base64url"))).toBeUndefined();
    expect(() => decodeRegistryAuth("%%%")).toThrow("X-Registry-Auth");
    const dir = mkdtempSync(join(tmpdir(), "bunker-cred-"));
    try {
      const file = join(dir, "config.json");
      storeCredentials("h:5000", { username: "alice", password: "s" }, file);
      storeCredentials("docker.io", { username: "bob", password: "t" }, file);
      expect(storedCredentials("h:5000", file)).toMatchObject({ username: "alice", password: "s" });
      expect(JSON.parse(require("node:fs").readFileSync(file, "utf8")).auths["https://index.docker.io/v1/"]).toBeDefined();
      expect(removeCredentials("h:5000", file)).toBe(true);
      expect(storedCredentials("h:5000", file)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(isInsecure("127.0.0.1:5000", [])).toBe(true);
    expect(isInsecure("localhost:5000", [])).toBe(true);
    expect(isInsecure("10.1.2.3:5000", ["10.0.0.0/8"])).toBe(true);
    expect(isInsecure("reg.example:5000", ["reg.example:5000"])).toBe(true);
    expect(isInsecure("reg.example", [])).toBe(false);
  });
});

describe("registry server (in-process)", () => {
  let server: RegistryServer;
  let dir: string;
  let base: string;
  const log = createLogger({ level: "error" });
  const blob = new TextEncoder().encode("a".repeat(10_000));
  const blobDigest = digestOf(blob);
  const config = new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
  const manifestFor = (layers: string[], extra: Record<string, unknown> = {}) =>
    JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: digestOf(config), size: config.length }, layers: layers.map((d) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: d, size: blob.length })), ...extra });
  const code = async (r: Response) => ((await r.json()) as { errors: { code: string }[] }).errors[0]!.code;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "bunker-regsrv-"));
    server = await startRegistryServer({ root: join(dir, "root"), addr: "127.0.0.1:0", log });
    base = server.url;
  });
  afterAll(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("chunked upload with Content-Range checks, then the closing PUT verifies the digest", async () => {
    const start = await fetch(`${base}/v2/a/b/blobs/uploads/`, { method: "POST" });
    expect(start.status).toBe(202);
    const loc = start.headers.get("location")!;
    const p1 = await fetch(`${base}${loc}`, { method: "PATCH", body: blob.subarray(0, 4000), headers: { "Content-Range": "0-3999" } });
    expect(p1.status).toBe(202);
    expect(p1.headers.get("range")).toBe("0-3999");
    const out = await fetch(`${base}${loc}`, { method: "PATCH", body: blob.subarray(5000), headers: { "Content-Range": "5000-9999" } });
    expect(out.status).toBe(416); // a gap: refused, the upload keeps its 4000 bytes
    await fetch(`${base}${loc}`, { method: "PATCH", body: blob.subarray(4000), headers: { "Content-Range": "4000-9999" } });
    const wrong = await fetch(`${base}${loc}?digest=sha256:${"0".repeat(64)}`, { method: "PUT" });
    expect(wrong.status).toBe(400);
    expect(await code(wrong)).toBe("DIGEST_INVALID");
    expect((await fetch(`${base}/v2/a/b/blobs/${blobDigest}`, { method: "HEAD" })).status).toBe(404); // nothing stored
    const again = (await fetch(`${base}/v2/a/b/blobs/uploads/`, { method: "POST" })).headers.get("location")!;
    const put = await fetch(`${base}${again}?digest=${blobDigest}`, { method: "PUT", body: blob });
    expect(put.status).toBe(201);
    expect(put.headers.get("docker-content-digest")).toBe(blobDigest);
    const ranged = await fetch(`${base}/v2/a/b/blobs/${blobDigest}`, { headers: { Range: "bytes=9990-" } });
    expect(ranged.status).toBe(206);
    expect((await ranged.text()).length).toBe(10);
  });

  test("monolithic upload, cross-repository mount, manifests by tag and digest, missing blobs refused, pagination, referrers, deletion and GC", async () => {
    expect((await fetch(`${base}/v2/a/b/blobs/uploads/?digest=${digestOf(config)}`, { method: "POST", body: config })).status).toBe(201);
    const mount = await fetch(`${base}/v2/c/d/blobs/uploads/?mount=${blobDigest}&from=a/b`, { method: "POST" });
    expect(mount.status).toBe(201);
    expect((await fetch(`${base}/v2/c/d/blobs/${blobDigest}`, { method: "HEAD" })).status).toBe(200);
    const missing = await fetch(`${base}/v2/c/d/manifests/v1`, { method: "PUT", body: manifestFor([blobDigest]), headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } });
    expect(await code(missing)).toBe("MANIFEST_BLOB_UNKNOWN"); // the config was not mounted into c/d
    const m = manifestFor([blobDigest]);
    const put = await fetch(`${base}/v2/a/b/manifests/v1`, { method: "PUT", body: m, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } });
    expect(put.status).toBe(201);
    const md = put.headers.get("docker-content-digest")!;
    expect(md).toBe(digestOf(m));
    const byDigestWrong = await fetch(`${base}/v2/a/b/manifests/sha256:${"2".repeat(64)}`, { method: "PUT", body: m, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } });
    expect(byDigestWrong.status).toBe(400);
    const mismatch = await fetch(`${base}/v2/a/b/manifests/v9`, { method: "PUT", body: m, headers: { "Content-Type": "application/vnd.docker.distribution.manifest.list.v2+json" } });
    expect(await code(mismatch)).toBe("MANIFEST_INVALID");
    for (const t of ["v2", "v3"]) await fetch(`${base}/v2/a/b/manifests/${t}`, { method: "PUT", body: m, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } });
    const page = await fetch(`${base}/v2/a/b/tags/list?n=2`);
    expect(await page.json()).toEqual({ name: "a/b", tags: ["v1", "v2"] });
    expect(page.headers.get("link")).toBe('</v2/a/b/tags/list?n=2&last=v2>; rel="next"');
    expect(await (await fetch(`${base}/v2/a/b/tags/list?n=2&last=v2`)).json()).toEqual({ name: "a/b", tags: ["v3"] });
    const got = await fetch(`${base}/v2/a/b/manifests/v1`);
    expect(got.headers.get("content-type")).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(await got.text()).toBe(m);
    // A referrer (an artifact whose subject is the image) listed by the referrers API.
    const ref = manifestFor([], { artifactType: "application/example.sbom", subject: { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: md, size: m.length } });
    const rput = await fetch(`${base}/v2/a/b/manifests/${digestOf(ref)}`, { method: "PUT", body: ref, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } });
    expect(rput.headers.get("oci-subject")).toBe(md);
    const refs = (await (await fetch(`${base}/v2/a/b/referrers/${md}`)).json()) as { manifests: { digest: string; artifactType: string }[] };
    expect(refs.manifests).toEqual([expect.objectContaining({ digest: digestOf(ref), artifactType: "application/example.sbom" })]);
    // An orphan blob goes at GC; what manifests reference stays.
    const orphan = new TextEncoder().encode("orphan");
    await fetch(`${base}/v2/a/b/blobs/uploads/?digest=${digestOf(orphan)}`, { method: "POST", body: orphan });
    const removed = server.store.collect();
    expect(removed).toEqual([digestOf(orphan)]);
    expect((await fetch(`${base}/v2/a/b/blobs/${blobDigest}`)).status).toBe(200);
    expect((await fetch(`${base}/v2/a/b/manifests/v3`, { method: "DELETE" })).status).toBe(202);
    expect((await fetch(`${base}/v2/a/b/manifests/v3`)).status).toBe(404);
  });

  test("Basic authentication from an htpasswd file (bcrypt)", async () => {
    const file = join(dir, "htpasswd");
    writeFileSync(file, `alice:${await Bun.password.hash("secret", { algorithm: "bcrypt", cost: 4 })}\n`);
    const authed = await startRegistryServer({ root: join(dir, "root2"), addr: "127.0.0.1:0", log, htpasswd: file });
    try {
      const none = await fetch(`${authed.url}/v2/`);
      expect(none.status).toBe(401);
      expect(none.headers.get("www-authenticate")).toContain("Basic");
      const bad = await fetch(`${authed.url}/v2/`, { headers: { Authorization: `Basic ${btoa("alice:nope")}` } });
      expect(bad.status).toBe(401);
      expect((await fetch(`${authed.url}/v2/`, { headers: { Authorization: `Basic ${btoa("alice:secret")}` } })).status).toBe(200);
    } finally {
      await authed.stop();
    }
    writeFileSync(file, "bob:{SHA}abc\n");
    await expect(startRegistryServer({ root: join(dir, "root3"), addr: "127.0.0.1:0", log, htpasswd: file })).rejects.toThrow("bcrypt");
  });
});
