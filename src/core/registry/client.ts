/**
 * The distribution (OCI registry) client for one repository: endpoint choice (HTTPS; plain HTTP
 * or unverified TLS only for insecure registries, loopback being one by default; Docker Hub's
 * mirrors first), per-registry CA and client certificates from `<certs-dir>/<host>/`, the 401
 * handshake (Basic, or Bearer tokens for the repository scope; a second 401 ends it), manifests
 * by tag or digest, blobs with ranges, uploads, mounts and tag lists.
 */
import { ignored } from "../log.ts";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { EngineError } from "../errors.ts";
import { MediaTypes } from "../image/manifest.ts";
import { type AuthConfig, type Challenge, parseChallenges, type TokenCache } from "./auth.ts";

/** Engine-wide registry settings (daemon.json). */
export interface RegistrySettings {
  /** Hosts (`host:port`) or CIDRs reachable over plain HTTP or unverified TLS. */
  insecure: string[];
  /** Mirrors of Docker Hub, tried before it (`https://mirror:5000`). */
  mirrors: string[];
  /** Per-registry certificates: `<dir>/<host:port>/ca.crt`, `client.cert`, `client.key`. */
  certsDir: string;
  tokens: TokenCache;
  /** A transfer that receives nothing for this long is dropped (and resumed). */
  stallMs: number;
  /** Attempts per blob before a pull gives up. */
  attempts: number;
}

/** Media types a pull accepts, in preference order. */
export const MANIFEST_ACCEPT = [MediaTypes.ociIndex, MediaTypes.dockerManifestList, MediaTypes.ociManifest, MediaTypes.dockerManifest].join(", ");

const HUB = "docker.io";

/** Whether `host` may be reached without verified TLS. */
export function isInsecure(host: string, insecure: readonly string[]): boolean {
  const bare = host.replace(/:\d+$/, "");
  if (bare === "localhost" || /^127\./.test(bare) || bare === "[::1]") return true;
  for (const entry of insecure) {
    if (entry === host || entry === bare) return true;
    const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(entry);
    if (m && /^\d+\.\d+\.\d+\.\d+$/.test(bare)) {
      const toN = (ip: string) => ip.split(".").reduce((a, p) => (a << 8) + Number(p), 0) >>> 0;
      const mask = Number(m[2]) === 0 ? 0 : (~0 << (32 - Number(m[2]))) >>> 0;
      if ((toN(bare) & mask) >>> 0 === (toN(m[1]!) & mask) >>> 0) return true;
    }
  }
  return false;
}

/** TLS options for `host` from the certs directory (CA, client certificate). */
function tlsFor(host: string, certsDir: string, verify: boolean): Record<string, unknown> {
  const dir = join(certsDir, host);
  const tls: Record<string, unknown> = { rejectUnauthorized: verify };
  if (!existsSync(dir)) return tls;
  const files = readdirSync(dir);
  const cas = files.filter((f) => f.endsWith(".crt")).map((f) => readFileSync(join(dir, f), "utf8"));
  if (cas.length) tls.ca = cas;
  const cert = files.find((f) => f.endsWith(".cert"));
  if (cert && existsSync(join(dir, cert.replace(/\.cert$/, ".key")))) {
    tls.cert = readFileSync(join(dir, cert), "utf8");
    tls.key = readFileSync(join(dir, cert.replace(/\.cert$/, ".key")), "utf8");
  }
  return tls;
}

/** A fetched manifest: its exact bytes, the Content-Type it came with, and its digest. */
export interface FetchedManifest {
  bytes: Uint8Array;
  contentType: string;
  digest: string;
}

/** The client for one repository. */
export class RegistryClient {
  private endpoint: { base: string; tls: Record<string, unknown> } | undefined;
  private authorization: string | undefined;

  constructor(
    readonly domain: string,
    readonly repo: string,
    private readonly settings: RegistrySettings,
    private readonly auth: AuthConfig | undefined,
    /** `pull` or `pull,push`. */
    private readonly actions: string,
  ) {}

  /** Candidate endpoints in order: mirrors (Docker Hub only), then the registry itself. */
  private candidates(): { base: string; tls: Record<string, unknown> }[] {
    const out: { base: string; tls: Record<string, unknown> }[] = [];
    const insecure = isInsecure(this.domain, this.settings.insecure);
    if (this.domain === HUB) {
      for (const m of this.settings.mirrors) out.push({ base: m.replace(/\/+$/, ""), tls: tlsFor(new URL(m).host, this.settings.certsDir, true) });
      out.push({ base: "https://registry-1.docker.io", tls: tlsFor("registry-1.docker.io", this.settings.certsDir, true) });
      return out;
    }
    out.push({ base: `https://${this.domain}`, tls: tlsFor(this.domain, this.settings.certsDir, !insecure) });
    if (insecure) out.push({ base: `http://${this.domain}`, tls: {} });
    return out;
  }

  /** Pick the first endpoint that answers `/v2/` at all (any HTTP status counts as an answer). */
  private async resolve(): Promise<{ base: string; tls: Record<string, unknown> }> {
    if (this.endpoint) return this.endpoint;
    const errors: string[] = [];
    for (const c of this.candidates()) {
      let res: Response;
      try {
        res = await fetch(`${c.base}/v2/`, { tls: c.tls, signal: AbortSignal.timeout(Math.max(this.settings.stallMs, 5000)) } as RequestInit);
        await res.arrayBuffer();
      } catch (err) {
        errors.push(`${c.base}: ${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      this.endpoint = c;
      // Only the transport decides the endpoint; a 401 here is answered (or fails) on this one.
      if (res.status === 401) await this.authenticate(res);
      return c;
    }
    throw new EngineError("unavailable", `cannot reach registry ${this.domain}: ${errors.join("; ")}`);
  }

  /** Answer a 401: Basic with the credentials, or a Bearer token for this repository. */
  private async authenticate(res: Response): Promise<void> {
    const challenges = parseChallenges(res.headers.get("www-authenticate") ?? "");
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basic = challenges.find((c) => c.scheme === "basic");
    if (bearer) {
      this.authorization = `Bearer ${await this.token(bearer)}`;
      return;
    }
    if (basic && this.auth?.username) {
      this.authorization = `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password ?? ""}`).toString("base64")}`;
      return;
    }
    throw new EngineError("permission-denied", `unauthorized: authentication required for ${this.domain}`);
  }

  private async token(ch: Challenge): Promise<string> {
    const realm = ch.params.realm;
    if (!realm) throw new EngineError("permission-denied", `registry ${this.domain}: Bearer challenge without a realm`);
    const scope = `repository:${this.repo}:${this.actions}`;
    const key = `${realm}|${ch.params.service ?? ""}|${scope}|${this.auth?.username ?? ""}`;
    const cached = this.settings.tokens.get(key);
    if (cached) return cached;
    const url = new URL(realm);
    if (ch.params.service) url.searchParams.set("service", ch.params.service);
    url.searchParams.set("scope", scope);
    const headers: Record<string, string> = {};
    if (this.auth?.registrytoken) return this.auth.registrytoken;
    if (this.auth?.username) headers.Authorization = `Basic ${Buffer.from(`${this.auth.username}:${this.auth.password ?? ""}`).toString("base64")}`;
    const res = await fetch(url, { headers, tls: this.endpoint?.tls, signal: AbortSignal.timeout(this.settings.stallMs) } as RequestInit);
    if (!res.ok) throw new EngineError("permission-denied", `unauthorized: token request to ${url.origin} answered ${res.status}`);
    const body = (await res.json()) as { token?: string; access_token?: string; expires_in?: number };
    const token = body.token ?? body.access_token;
    if (!token) throw new EngineError("permission-denied", `unauthorized: no token from ${url.origin}`);
    this.settings.tokens.set(key, token, body.expires_in ?? 60);
    return token;
  }

  /**
   * A request under `/v2/<repo>/` (or an absolute URL the registry gave, such as an upload
   * location). A 401 is answered once; a second one is an authentication failure, not a loop.
   */
  async request(method: string, path: string, init: { headers?: Record<string, string>; body?: Uint8Array | ReadableStream<Uint8Array> | string; timeoutMs?: number } = {}): Promise<Response> {
    const ep = await this.resolve();
    const url = /^https?:\/\//.test(path) ? path : path.startsWith("/") ? `${ep.base}${path}` : `${ep.base}/v2/${this.repo}/${path}`;
    for (let round = 0; ; round++) {
      const headers: Record<string, string> = { ...(init.headers ?? {}) };
      if (this.authorization) headers.Authorization = this.authorization;
      const res = await fetch(url, {
        method,
        headers,
        ...(init.body !== undefined ? { body: init.body } : {}),
        tls: ep.tls,
        ...(init.timeoutMs ? { signal: AbortSignal.timeout(init.timeoutMs) } : {}),
      } as RequestInit);
      if (res.status !== 401) return res;
      await res.arrayBuffer();
      if (round > 0 || init.body instanceof ReadableStream) throw new EngineError("permission-denied", `unauthorized: authentication required (${method} ${new URL(url).pathname})`);
      await this.authenticate(res);
    }
  }

  /** A manifest by tag or digest, as the registry sent it. */
  async manifest(ref: string): Promise<FetchedManifest> {
    const res = await this.request("GET", `manifests/${ref}`, { headers: { Accept: MANIFEST_ACCEPT }, timeoutMs: this.settings.stallMs });
    if (res.status === 404) {
      await res.arrayBuffer();
      throw new EngineError("not-found", `manifest for ${this.domain}/${this.repo}:${ref} not found: manifest unknown`);
    }
    if (!res.ok) throw await registryError(res, `manifest ${ref}`);
    const length = Number(res.headers.get("content-length") ?? 0);
    if (length > 4 * 1024 * 1024) throw new EngineError("failed-precondition", `manifest ${ref} is larger than 4 MB`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (bytes.length > 4 * 1024 * 1024) throw new EngineError("failed-precondition", `manifest ${ref} is larger than 4 MB`);
    const digest = `sha256:${new Bun.CryptoHasher("sha256").update(bytes).digest("hex")}`;
    return { bytes, contentType: (res.headers.get("content-type") ?? "").split(";")[0]!.trim(), digest };
  }

  /** GET a blob from byte `offset` (a Range request when not 0). */
  async blob(digest: string, offset = 0): Promise<Response> {
    const res = await this.request("GET", `blobs/${digest}`, { headers: offset ? { Range: `bytes=${offset}-` } : {} });
    if (!res.ok) throw await registryError(res, `blob ${digest}`);
    return res;
  }

  /** Whether the repository has blob `digest`. */
  async hasBlob(digest: string): Promise<boolean> {
    const res = await this.request("HEAD", `blobs/${digest}`);
    await res.arrayBuffer();
    if (res.status === 404) return false;
    if (!res.ok) throw await registryError(res, `blob ${digest}`);
    return true;
  }

  /** Try to mount `digest` from repository `from`: true when mounted, else the upload session it started (or undefined). */
  async mount(digest: string, from: string): Promise<{ mounted: true } | { mounted: false; location?: string }> {
    const res = await this.request("POST", `blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`);
    await res.arrayBuffer();
    if (res.status === 201) return { mounted: true };
    if (res.status === 202) return { mounted: false, location: this.absolute(res.headers.get("location")) };
    return { mounted: false };
  }

  /** Start an upload session; returns its location. */
  async startUpload(): Promise<string> {
    const res = await this.request("POST", "blobs/uploads/");
    await res.arrayBuffer();
    if (res.status !== 202) throw await registryError(res, "upload");
    return this.absolute(res.headers.get("location"));
  }

  /** Absolute URL of a Location header (registries may answer relative paths). */
  private absolute(location: string | null): string {
    if (!location) throw new EngineError("unavailable", `registry ${this.domain} sent no upload location`);
    return new URL(location, this.endpoint!.base).toString();
  }

  /** Append a chunk (PATCH with Content-Range); returns the next location. */
  async patch(location: string, chunk: Uint8Array, start: number): Promise<string> {
    const res = await this.request("PATCH", location, { headers: { "Content-Type": "application/octet-stream", "Content-Range": `${start}-${start + chunk.length - 1}`, "Content-Length": String(chunk.length) }, body: chunk });
    await res.arrayBuffer();
    if (res.status !== 202) throw await registryError(res, "upload chunk");
    return this.absolute(res.headers.get("location") ?? location);
  }

  /** Close an upload with the blob's digest (and an optional last body). */
  async finish(location: string, digest: string, body?: Uint8Array): Promise<void> {
    const url = new URL(location);
    url.searchParams.set("digest", digest);
    const res = await this.request("PUT", url.toString(), { headers: { "Content-Type": "application/octet-stream", "Content-Length": String(body?.length ?? 0) }, ...(body ? { body } : {}) });
    await res.arrayBuffer();
    if (res.status !== 201) throw await registryError(res, `upload of ${digest}`);
  }

  /** PUT a manifest's exact bytes; returns the digest the registry reports. */
  async putManifest(ref: string, bytes: Uint8Array, mediaType: string): Promise<string | null> {
    const res = await this.request("PUT", `manifests/${ref}`, { headers: { "Content-Type": mediaType }, body: bytes });
    await res.arrayBuffer();
    if (res.status !== 201) throw await registryError(res, `manifest ${ref}`);
    return res.headers.get("docker-content-digest");
  }

  /** Repositories from `/v2/_catalog` (registries that offer it). */
  async catalog(limit = 1000): Promise<string[]> {
    const res = await this.request("GET", `/v2/_catalog?n=${limit}`);
    if (!res.ok) throw await registryError(res, "catalog");
    return ((await res.json()) as { repositories?: string[] }).repositories ?? [];
  }

  /** Check the credentials against `/v2/` (for `login`). */
  async ping(): Promise<void> {
    const res = await this.request("GET", "/v2/");
    await res.arrayBuffer();
    if (!res.ok) throw new EngineError(res.status === 401 ? "permission-denied" : "unavailable", `login to ${this.domain} failed: HTTP ${res.status}`);
  }
}

/** The registry's error body (`{"errors":[{code,message}]}`) as an EngineError. */
export async function registryError(res: Response, what: string): Promise<EngineError> {
  let detail = "";
  try {
    const body = (await res.json()) as { errors?: { code?: string; message?: string }[] };
    detail = (body.errors ?? []).map((e) => `${(e.code ?? "").toLowerCase().replace(/_/g, " ")}: ${e.message ?? ""}`).join("; ");
  } catch (err) {
    ignored("not JSON", err);
  }
  const code = res.status === 404 ? "not-found" : res.status === 401 || res.status === 403 ? "permission-denied" : res.status === 400 ? "invalid-argument" : "unavailable";
  return new EngineError(code, `${what}: ${detail || `HTTP ${res.status} ${res.statusText}`}`);
}
