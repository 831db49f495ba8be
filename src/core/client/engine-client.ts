/**
 * HTTP client for the Engine API over a Unix socket or TCP (optionally mutual TLS), used by the
 * `bunker` CLI. The daemon is found from `-H`, then `BUNKER_HOST`, then `DOCKER_HOST`, then the
 * default socket. Requests go to `/v<API_VERSION>/…`; against an older daemon the client pings
 * once and downgrades, as docker's client negotiates.
 */
import { ignored } from "../log.ts";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { EngineError, invalidArgument } from "../errors.ts";
import { API_VERSION, compareApiVersions } from "../version.ts";

/** The default daemon address. */
export const DEFAULT_HOST = "unix:///run/bunker/bunker.sock";

/** Where and how to reach the daemon. */
export interface ClientOptions {
  host?: string;
  tlsVerify?: boolean;
  certPath?: string;
  env?: Record<string, string | undefined>;
}

/** An error response from the daemon. */
export class DaemonError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A resolved endpoint. */
export interface Endpoint {
  host: string;
  base: string;
  fetchInit: { unix?: string; tls?: { cert?: string; key?: string; ca?: string } };
}

/** Resolve the daemon endpoint from options and environment. */
export function resolveEndpoint(opts: ClientOptions = {}): Endpoint {
  const env = opts.env ?? process.env;
  const host = opts.host || env.BUNKER_HOST || env.DOCKER_HOST || DEFAULT_HOST;
  if (host.startsWith("unix://")) return { host, base: "http://localhost", fetchInit: { unix: host.slice(7) } };
  if (host.startsWith("/")) return { host: `unix://${host}`, base: "http://localhost", fetchInit: { unix: host } };
  if (host.startsWith("tcp://")) {
    const tlsVerify = opts.tlsVerify ?? (env.DOCKER_TLS_VERIFY !== undefined && env.DOCKER_TLS_VERIFY !== "");
    const addr = host.slice(6).replace(/\/$/, "");
    if (!tlsVerify) return { host, base: `http://${addr}`, fetchInit: {} };
    const dir = opts.certPath ?? env.DOCKER_CERT_PATH ?? join(homedir(), ".docker");
    const read = (f: string) => readFileSync(join(dir, f), "utf8");
    return { host, base: `https://${addr}`, fetchInit: { tls: { ca: read("ca.pem"), cert: read("cert.pem"), key: read("key.pem") } } };
  }
  throw invalidArgument(`unsupported daemon host ${host}: use unix:///path or tcp://host:port`);
}

/** Request options. */
export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

/** A small Engine API client. */
export class EngineClient {
  readonly endpoint: Endpoint;
  /** API version used on request paths; lowered after negotiating with an older daemon. */
  apiVersion = API_VERSION;

  constructor(opts: ClientOptions = {}) {
    this.endpoint = resolveEndpoint(opts);
  }

  /** Send a request; non-2xx responses throw DaemonError with the daemon's message. */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    let res = await this.send(method, path, opts);
    if (res.status === 400 && this.apiVersion === API_VERSION) {
      const text = await res.text();
      if (!/is too new/.test(text)) throw new DaemonError(400, errorMessage(text));
      await this.negotiate();
      res = await this.send(method, path, opts);
    }
    if (res.status >= 400) throw new DaemonError(res.status, errorMessage(await res.text()));
    return res;
  }

  /** GET/POST and parse the JSON answer. */
  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, opts);
    return (await res.json()) as T;
  }

  /** Ping the daemon and adopt min(daemon, client) as the API version. */
  async negotiate(): Promise<string> {
    const res = await this.raw("GET", "/_ping");
    const server = res.headers.get("api-version") ?? "1.24";
    await res.arrayBuffer();
    this.apiVersion = compareApiVersions(server, API_VERSION) < 0 ? server : API_VERSION;
    return this.apiVersion;
  }

  private send(method: string, path: string, opts: RequestOptions): Promise<Response> {
    return this.raw(method, `/v${this.apiVersion}${path}`, opts);
  }

  private async raw(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const url = new URL(this.endpoint.base + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const init: RequestInit & { unix?: string; tls?: unknown } = { method, ...this.endpoint.fetchInit, ...(opts.signal ? { signal: opts.signal } : {}) };
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.body !== undefined) {
      init.body = JSON.stringify(opts.body);
      headers["Content-Type"] = "application/json";
    }
    if (Object.keys(headers).length) init.headers = headers;
    try {
      return await fetch(url, init);
    } catch (err) {
      if ((err as Error).name === "AbortError") throw err;
      throw new EngineError("unavailable", `Cannot connect to the Bunker daemon at ${this.endpoint.host}. Is the bunker daemon running?`, { cause: err });
    }
  }
}

function errorMessage(body: string): string {
  try {
    const j = JSON.parse(body) as { message?: string };
    if (typeof j.message === "string") return j.message;
  } catch (err) {
    ignored("not JSON", err);
  }
  return body.trim();
}
