/**
 * The registry server (OCI distribution spec v1.1): `/v2/`, blobs (GET with ranges, HEAD,
 * DELETE), uploads (monolithic POST, chunked PATCH, closing PUT, cross-repository mount, status,
 * cancel), manifests by tag or digest (GET, HEAD, PUT, DELETE), tag lists and the catalog with
 * pagination, referrers; Basic authentication from an htpasswd file (bcrypt) and TLS. Uploads
 * whose digest does not match and manifests that reference blobs the repository does not have
 * are refused with the spec's error codes. Used by `bunker registry serve` and by the daemon's
 * `registry-addr`.
 */
import { ignore } from "../log.ts";
import { readFileSync } from "node:fs";
import { type Digest, isDigest } from "../content/digest.ts";
import { EngineError, messageOf } from "../errors.ts";
import type { Logger } from "../log.ts";
import { parseManifest } from "../image/manifest.ts";
import { manifestRefs, REPO_NAME, RegistryStore, TAG } from "./registry-store.ts";

/** Server settings. */
export interface RegistryServerOptions {
  root: string;
  /** `host:port` to listen on (port 0: any). */
  addr: string;
  /** htpasswd file (bcrypt entries) enabling Basic authentication. */
  htpasswd?: string;
  tls?: { cert: string; key: string };
  log: Logger;
  /** Largest manifest accepted (bytes). */
  maxManifest?: number;
}

/** A running server. */
export interface RegistryServer {
  readonly url: string;
  readonly port: number;
  readonly store: RegistryStore;
  stop(): Promise<void>;
}

const API_HEADER = { "Docker-Distribution-API-Version": "registry/2.0" };

/** The spec's error body. */
function error(status: number, code: string, message: string, detail?: unknown): Response {
  return Response.json({ errors: [{ code, message, ...(detail !== undefined ? { detail } : {}) }] }, { status, headers: API_HEADER });
}

/** Users and bcrypt hashes from an htpasswd file (other hash kinds are refused at start). */
function readHtpasswd(path: string): Map<string, string> {
  const users = new Map<string, string>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const t = line.trim();
    if (!t || t.startsWith("#")) continue;
    const i = t.indexOf(":");
    const hash = t.slice(i + 1);
    if (i < 1 || !/^\$2[aby]\$/.test(hash)) throw new EngineError("invalid-argument", `${path}: only bcrypt entries (htpasswd -B) are supported`);
    users.set(t.slice(0, i), hash);
  }
  return users;
}

/** Split `/v2/<name>/<kind>/<rest>` where name may contain slashes. */
function route(path: string): { name: string; kind: "blobs" | "uploads" | "manifests" | "tags" | "referrers"; rest: string } | undefined {
  const m = /^\/v2\/(.+?)\/(blobs\/uploads|blobs|manifests|tags|referrers)(?:\/(.*))?$/.exec(path);
  if (!m) return undefined;
  const kind = m[2] === "blobs/uploads" ? "uploads" : (m[2] as "blobs" | "manifests" | "tags" | "referrers");
  return { name: m[1]!, kind, rest: m[3] ?? "" };
}

/** Start serving. */
export async function startRegistryServer(opts: RegistryServerOptions): Promise<RegistryServer> {
  const store = new RegistryStore(opts.root);
  const users = opts.htpasswd ? readHtpasswd(opts.htpasswd) : undefined;
  const maxManifest = opts.maxManifest ?? 4 * 1024 * 1024;
  const [host, portText] = splitAddr(opts.addr);

  async function authorized(req: Request): Promise<boolean> {
    if (!users) return true;
    const h = req.headers.get("authorization") ?? "";
    if (!h.toLowerCase().startsWith("basic ")) return false;
    const [user, ...pw] = Buffer.from(h.slice(6), "base64").toString("utf8").split(":");
    const hash = users.get(user ?? "");
    return !!hash && (await Bun.password.verify(pw.join(":"), hash).catch(() => false));
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (!url.pathname.startsWith("/v2")) return error(404, "NOT_FOUND", "not found");
    if (!(await authorized(req))) {
      return Response.json({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }, { status: 401, headers: { ...API_HEADER, "WWW-Authenticate": 'Basic realm="bunker-registry"' } });
    }
    if (url.pathname === "/v2/" || url.pathname === "/v2") return Response.json({}, { headers: API_HEADER });
    if (url.pathname === "/v2/_catalog") return paginate(url, store.repositories(), (list) => ({ repositories: list }), "/v2/_catalog");
    const r = route(url.pathname);
    if (!r || !REPO_NAME.test(r.name)) return error(404, "NAME_INVALID", "invalid repository name");
    switch (r.kind) {
      case "blobs":
        return blob(store, req, r.name, r.rest);
      case "uploads":
        return upload(store, req, url, r.name, r.rest);
      case "manifests":
        return manifest(store, maxManifest, req, r.name, r.rest);
      case "tags":
        if (r.rest !== "list" || req.method !== "GET") return error(405, "UNSUPPORTED", "unsupported");
        if (!store.exists(r.name)) return error(404, "NAME_UNKNOWN", "repository name not known to registry", { name: r.name });
        return paginate(url, store.tags(r.name), (tags) => ({ name: r.name, tags }), `/v2/${r.name}/tags/list`);
      case "referrers":
        return referrers(store, url, r.name, r.rest);
    }
  }

  const server = Bun.serve({
    hostname: host,
    port: Number(portText),
    maxRequestBodySize: 64 * 1024 * 1024 * 1024,
    ...(opts.tls ? { tls: { cert: Bun.file(opts.tls.cert), key: Bun.file(opts.tls.key) } } : {}),
    async fetch(req) {
      try {
        return await handle(req);
      } catch (err) {
        opts.log.warn("registry request failed", { method: req.method, url: req.url, error: messageOf(err) });
        return error(500, "UNKNOWN", messageOf(err));
      }
    },
  });
  const scheme = opts.tls ? "https" : "http";
  return {
    url: `${scheme}://${host.includes(":") ? `[${host}]` : host}:${server.port}`,
    port: server.port!,
    store,
    stop: async () => {
      await server.stop(true);
    },
  };
}

function paginate(url: URL, all: string[], body: (list: string[]) => unknown, path: string): Response {
  const n = url.searchParams.get("n");
  const last = url.searchParams.get("last");
  let list = last ? all.filter((x) => x > last) : all;
  const headers: Record<string, string> = { ...API_HEADER };
  if (n !== null) {
    const limit = Number(n);
    if (!Number.isInteger(limit) || limit < 0) return error(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested");
    if (list.length > limit) {
      list = list.slice(0, limit);
      headers.Link = `<${path}?n=${limit}&last=${encodeURIComponent(list.at(-1) ?? "")}>; rel="next"`;
    } else list = list.slice(0, limit);
  }
  return Response.json(body(list), { headers });
}

function blob(store: RegistryStore, req: Request, name: string, ref: string): Response {
  if (!isDigest(ref)) return error(400, "DIGEST_INVALID", "invalid digest");
  const d = ref as Digest;
  if (req.method === "DELETE") return store.unlinkBlob(name, d) ? new Response(null, { status: 202, headers: API_HEADER }) : error(404, "BLOB_UNKNOWN", "blob unknown to registry", { digest: d });
  if (req.method !== "GET" && req.method !== "HEAD") return error(405, "UNSUPPORTED", "unsupported");
  if (!store.hasBlob(name, d)) return error(404, "BLOB_UNKNOWN", "blob unknown to registry", { digest: d });
  const size = store.content.info(d).size;
  const headers: Record<string, string> = { ...API_HEADER, "Docker-Content-Digest": d, "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", ETag: `"${d}"` };
  if (req.method === "HEAD") return new Response(null, { headers: { ...headers, "Content-Length": String(size) } });
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("range") ?? "");
  const file = Bun.file(store.content.blobPath(d));
  if (range) {
    const start = Number(range[1]);
    const end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    if (start >= size || end < start) return new Response(null, { status: 416, headers: { ...headers, "Content-Range": `bytes */${size}` } });
    return new Response(file.slice(start, end + 1), { status: 206, headers: { ...headers, "Content-Range": `bytes ${start}-${end}/${size}`, "Content-Length": String(end - start + 1) } });
  }
  return new Response(file, { headers: { ...headers, "Content-Length": String(size) } });
}

async function upload(store: RegistryStore, req: Request, url: URL, name: string, id: string): Promise<Response> {
  const location = (uuid: string) => `/v2/${name}/blobs/uploads/${uuid}`;
  const created = (d: Digest) => new Response(null, { status: 201, headers: { ...API_HEADER, Location: `/v2/${name}/blobs/${d}`, "Docker-Content-Digest": d } });
  const body = req.body as unknown as AsyncIterable<Uint8Array> | null;
  if (!id) {
    if (req.method !== "POST") return error(405, "UNSUPPORTED", "unsupported");
    const mount = url.searchParams.get("mount");
    const from = url.searchParams.get("from");
    if (mount && from && isDigest(mount) && REPO_NAME.test(from) && store.hasBlob(from, mount)) {
      store.linkBlob(name, mount);
      return created(mount);
    }
    const digest = url.searchParams.get("digest");
    if (digest) {
      // Monolithic upload: the whole blob in this request.
      if (!isDigest(digest)) return error(400, "DIGEST_INVALID", "invalid digest");
      try {
        await store.content.ingest(body ?? [], { digest });
      } catch (err) {
        return error(400, "DIGEST_INVALID", "provided digest did not match uploaded content", messageOf(err));
      }
      store.linkBlob(name, digest);
      return created(digest);
    }
    const uuid = crypto.randomUUID();
    const w = await store.content.writer(`upload-${uuid}`);
    await w.suspend();
    return new Response(null, { status: 202, headers: { ...API_HEADER, Location: location(uuid), Range: "0-0", "Docker-Upload-UUID": uuid } });
  }
  if (!/^[0-9a-f-]{36}$/.test(id)) return error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry");
  const ref = `upload-${id}`;
  if (!store.content.ingests().some((i) => i.ref === ref)) return error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry");
  const w = await store.content.writer(ref);
  const range = (n: number) => (n > 0 ? `0-${n - 1}` : "0-0");
  try {
    if (req.method === "DELETE") {
      await w.abort();
      return new Response(null, { status: 204, headers: API_HEADER });
    }
    if (req.method === "GET") {
      await w.suspend();
      return new Response(null, { status: 204, headers: { ...API_HEADER, Location: location(id), Range: range(w.offset), "Docker-Upload-UUID": id } });
    }
    if (req.method === "PATCH" || req.method === "PUT") {
      const cr = /^(\d+)-(\d+)$/.exec(req.headers.get("content-range") ?? "");
      if (cr && Number(cr[1]) !== w.offset) {
        await w.suspend();
        return new Response(null, { status: 416, headers: { ...API_HEADER, Location: location(id), Range: range(w.offset) } });
      }
      if (body) for await (const c of body) await w.write(c);
    }
    if (req.method === "PATCH") {
      await w.suspend();
      return new Response(null, { status: 202, headers: { ...API_HEADER, Location: location(id), Range: range(w.offset), "Docker-Upload-UUID": id } });
    }
    if (req.method === "PUT") {
      const digest = url.searchParams.get("digest");
      if (!digest || !isDigest(digest)) {
        await w.suspend();
        return error(400, "DIGEST_INVALID", "a digest is required to complete an upload");
      }
      try {
        await w.commit({ digest });
      } catch (err) {
        return error(400, "DIGEST_INVALID", "provided digest did not match uploaded content", messageOf(err));
      }
      store.linkBlob(name, digest);
      return created(digest);
    }
    await w.suspend();
    return error(405, "UNSUPPORTED", "unsupported");
  } catch (err) {
    await w.suspend().catch(ignore("registry upload: suspending the ingest failed"));
    throw err;
  }
}

async function manifest(store: RegistryStore, maxManifest: number, req: Request, name: string, ref: string): Promise<Response> {
  if (!ref || (!isDigest(ref) && !TAG.test(ref))) return error(400, "MANIFEST_INVALID", "invalid tag or digest");
  if (req.method === "GET" || req.method === "HEAD") {
    const m = store.manifest(name, ref);
    if (!m) return error(404, "MANIFEST_UNKNOWN", "manifest unknown", { name, reference: ref });
    const headers = { ...API_HEADER, "Content-Type": m.mediaType, "Docker-Content-Digest": m.digest, "Content-Length": String(m.size), ETag: `"${m.digest}"` };
    return new Response(req.method === "HEAD" ? null : m.bytes, { headers });
  }
  if (req.method === "DELETE") return store.deleteManifest(name, ref) ? new Response(null, { status: 202, headers: API_HEADER }) : error(404, "MANIFEST_UNKNOWN", "manifest unknown");
  if (req.method !== "PUT") return error(405, "UNSUPPORTED", "unsupported");
  const bytes = new Uint8Array(await req.arrayBuffer());
  if (bytes.length > maxManifest) return error(413, "SIZE_INVALID", `manifest larger than ${maxManifest} bytes`);
  const contentType = (req.headers.get("content-type") ?? "").split(";")[0]!.trim();
  let mediaType: string;
  try {
    const parsed = parseManifest(bytes, contentType || undefined);
    mediaType = parsed.mediaType;
  } catch (err) {
    return error(400, "MANIFEST_INVALID", "manifest invalid", messageOf(err));
  }
  // Everything it references must be here already (a subject may come later: referrers).
  const refs = manifestRefs(bytes, mediaType);
  const missingBlobs = refs.blobs.filter((d) => !store.hasBlob(name, d));
  if (missingBlobs.length) return error(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", { digests: missingBlobs });
  const missingManifests = refs.manifests.filter((d) => !store.manifest(name, d));
  if (missingManifests.length) return error(400, "MANIFEST_UNKNOWN", "manifest unknown", { digests: missingManifests });
  if (isDigest(ref)) {
    const got = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
    if (ref !== `sha256:${got}`) return error(400, "DIGEST_INVALID", "manifest digest does not match the reference");
  }
  const stored = await store.putManifest(name, bytes, mediaType, isDigest(ref) ? undefined : ref);
  const headers: Record<string, string> = { ...API_HEADER, Location: `/v2/${name}/manifests/${stored.digest}`, "Docker-Content-Digest": stored.digest };
  const subject = (JSON.parse(new TextDecoder().decode(bytes)) as { subject?: { digest?: string } }).subject?.digest;
  if (subject) headers["OCI-Subject"] = subject;
  return new Response(null, { status: 201, headers });
}

function referrers(store: RegistryStore, url: URL, name: string, ref: string): Response {
  if (!isDigest(ref)) return error(400, "DIGEST_INVALID", "invalid digest");
  const filter = url.searchParams.get("artifactType");
  const manifests = [];
  for (const rev of store.revisions(name)) {
    const bytes = store.content.readBytes(rev.digest);
    const doc = JSON.parse(new TextDecoder().decode(bytes)) as { subject?: { digest?: string }; artifactType?: string; config?: { mediaType?: string }; annotations?: Record<string, string> };
    if (doc.subject?.digest !== ref) continue;
    const artifactType = doc.artifactType ?? doc.config?.mediaType;
    if (filter && artifactType !== filter) continue;
    manifests.push({ mediaType: rev.mediaType, digest: rev.digest, size: bytes.length, ...(artifactType ? { artifactType } : {}), ...(doc.annotations ? { annotations: doc.annotations } : {}) });
  }
  return Response.json(
    { schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests },
    { headers: { ...API_HEADER, "Content-Type": "application/vnd.oci.image.index.v1+json", ...(filter ? { "OCI-Filters-Applied": "artifactType" } : {}) } },
  );
}

/** `host:port` → [host, port]. */
function splitAddr(addr: string): [string, string] {
  const i = addr.lastIndexOf(":");
  if (i < 0) throw new EngineError("invalid-argument", `invalid address ${addr}: want host:port`);
  return [addr.slice(0, i).replace(/^\[|\]$/g, "") || "0.0.0.0", addr.slice(i + 1)];
}
