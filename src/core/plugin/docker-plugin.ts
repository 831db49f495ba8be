/**
 * Docker's out-of-process plugin protocol, client side (docker-api.md §5.1): discovery of a
 * plugin by name (`<dir>/<name>.sock`, `<dir>/<name>/<name>.sock`, `<name>.spec` holding an
 * address, `<name>.json` holding `{Name, Addr}`), the `Plugin.Activate` handshake, and JSON calls
 * `POST /<Subsystem>.<Method>` whose errors come back as `{"Err": "…"}`. Calls that cannot reach
 * the plugin are retried with exponential backoff (moby retries for 30 s) because plugins often
 * start after the daemon. Used by the storage (GraphDriver) proxy and, later, by network, IPAM
 * and volume plugins.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { EngineError, invalidArgument } from "../errors.ts";

/** Where moby looks for plugins, in order. */
export const DOCKER_PLUGIN_DIRS = ["/run/docker/plugins", "/etc/docker/plugins", "/usr/lib/docker/plugins"];

/** The media type the daemon sends in `Accept`. */
export const PLUGIN_MEDIA_TYPE = "application/vnd.docker.plugins.v1.2+json";

/** A discovered plugin: its name and how to reach it. */
export interface DockerPluginAddress {
  name: string;
  /** Path of a Unix socket, or undefined for TCP. */
  socket?: string;
  /** Base URL: `http://plugin` for sockets, `http://host:port` for TCP. */
  base: string;
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const SpecJson = v.object({ Name: v.optional(v.string()), Addr: v.string(), TLSConfig: v.optional(v.unknown()) });

/** Parse a `.spec`/`.json` address: `unix:///path`, `tcp://host:port` (TLS is not supported). */
function parseAddr(name: string, addr: string, from: string): DockerPluginAddress {
  const a = addr.trim();
  if (a.startsWith("unix://")) return { name, socket: a.slice("unix://".length), base: "http://plugin" };
  if (a.startsWith("tcp://")) return { name, base: `http://${a.slice("tcp://".length)}` };
  if (a.startsWith("/")) return { name, socket: a, base: "http://plugin" };
  throw invalidArgument(`plugin ${name}: ${from}: unsupported address ${JSON.stringify(a)} (want unix:// or tcp://)`);
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

/** Find plugin `name` in `dirs` (moby's order: sockets first, then spec files). */
export function findDockerPlugin(name: string, dirs: readonly string[] = DOCKER_PLUGIN_DIRS): DockerPluginAddress | undefined {
  if (!NAME.test(name)) throw invalidArgument(`invalid plugin name ${JSON.stringify(name)}`);
  for (const dir of dirs) {
    for (const sock of [join(dir, `${name}.sock`), join(dir, name, `${name}.sock`)]) {
      if (isSocket(sock)) return { name, socket: sock, base: "http://plugin" };
    }
  }
  for (const dir of dirs) {
    for (const sub of ["", name]) {
      const spec = join(dir, sub, `${name}.spec`);
      if (existsSync(spec)) return parseAddr(name, readFileSync(spec, "utf8"), spec);
      const json = join(dir, sub, `${name}.json`);
      if (existsSync(json)) {
        const parsed = v.safeParse(SpecJson, JSON.parse(readFileSync(json, "utf8")));
        if (!parsed.success) throw invalidArgument(`plugin ${name}: ${json}: ${parsed.issues[0].message}`);
        return parseAddr(name, parsed.output.Addr, json);
      }
    }
  }
  return undefined;
}

/** A pull-driven ReadableStream over an async iterable (for streamed request bodies). */
function toReadable(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      const { done, value } = await it.next();
      if (done) ctl.close();
      else ctl.enqueue(value);
    },
    async cancel() {
      await it.return?.();
    },
  });
}

const ErrBody = v.looseObject({ Err: v.optional(v.nullable(v.string())) });
const Activation = v.looseObject({ Implements: v.array(v.string()) });

/** Options for a plugin client. */
export interface DockerPluginClientOptions {
  /** How long to keep retrying a plugin that cannot be reached (default 30 s, as moby). */
  retryFor?: number;
}

/** JSON-over-HTTP calls to one plugin. */
export class DockerPluginClient {
  private readonly retryFor: number;

  constructor(
    readonly address: DockerPluginAddress,
    opts: DockerPluginClientOptions = {},
  ) {
    this.retryFor = opts.retryFor ?? 30_000;
  }

  /** The handshake; fails unless the plugin implements `subsystem`. */
  async activate(subsystem: string): Promise<string[]> {
    const res = await this.call("Plugin.Activate", undefined, Activation);
    if (!res.Implements.includes(subsystem)) {
      throw new EngineError("failed-precondition", `plugin ${this.address.name} does not implement ${subsystem} (it implements ${res.Implements.join(", ") || "nothing"})`);
    }
    return res.Implements;
  }

  /** POST `/<method>` with an optional JSON body or a byte stream; retried while unreachable. */
  async request(method: string, body?: unknown, query = ""): Promise<Response> {
    const deadline = Date.now() + this.retryFor;
    for (let delay = 100; ; delay = Math.min(delay * 2, 2_000)) {
      const stream = body !== undefined && typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function";
      try {
        return await fetch(`${this.address.base}/${method}${query}`, {
          method: "POST",
          headers: { Accept: PLUGIN_MEDIA_TYPE, "Content-Type": stream ? "application/x-tar" : PLUGIN_MEDIA_TYPE },
          body: stream ? toReadable(body as AsyncIterable<Uint8Array>) : body === undefined ? "{}" : JSON.stringify(body),
          ...(this.address.socket ? { unix: this.address.socket } : {}),
          ...(stream ? { duplex: "half" } : {}),
        } as RequestInit);
      } catch (err) {
        // A stream body cannot be replayed; a refused connection before it was read is retried only for JSON.
        const code = (err as { code?: string }).code;
        const unreachable = code === "ENOENT" || code === "ECONNREFUSED" || code === "ConnectionRefused" || code === "FailedToOpenSocket";
        if (stream || !unreachable || Date.now() + delay > deadline) {
          throw new EngineError("unavailable", `plugin ${this.address.name}: ${method}: ${(err as Error).message}`);
        }
        await Bun.sleep(delay);
      }
    }
  }

  /** A JSON call; `{"Err": "…"}` or a non-2xx status becomes an error carrying the plugin's text. */
  async call<S extends v.GenericSchema>(method: string, body: unknown, schema: S, query = ""): Promise<v.InferOutput<S>> {
    const res = await this.request(method, body, query);
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new EngineError("unavailable", `plugin ${this.address.name}: ${method}: response is not JSON (HTTP ${res.status}): ${text.slice(0, 200)}`);
    }
    const err = v.safeParse(ErrBody, json);
    if (err.success && err.output.Err) throw new EngineError("internal", `plugin ${this.address.name}: ${method}: ${err.output.Err}`);
    if (!res.ok) throw new EngineError("internal", `plugin ${this.address.name}: ${method}: HTTP ${res.status}: ${text.slice(0, 200)}`);
    const parsed = v.safeParse(schema, json);
    if (!parsed.success) throw new EngineError("unavailable", `plugin ${this.address.name}: ${method}: unexpected response: ${parsed.issues[0].message}`);
    return parsed.output;
  }
}

/**
 * A lookup of Docker plugins implementing `subsystem` by name (moby's discovery), each activated
 * once and wrapped by `make`; undefined when no plugin of that name exists. A failed activation
 * is not cached, so a plugin that starts later is found on the next lookup.
 */
export function dockerPluginFinder<T>(subsystem: string, make: (name: string, client: DockerPluginClient) => T, opts: { dirs?: string[]; retryFor?: number } = {}): (name: string) => Promise<T | undefined> {
  const cache = new Map<string, Promise<T | undefined>>();
  return (name) => {
    let p = cache.get(name);
    if (!p) {
      p = (async () => {
        const address = findDockerPlugin(name, opts.dirs ?? DOCKER_PLUGIN_DIRS);
        if (!address) return undefined;
        const client = new DockerPluginClient(address, { retryFor: opts.retryFor ?? 30_000 });
        await client.activate(subsystem);
        return make(name, client);
      })();
      p.then(
        (d) => d ?? cache.delete(name),
        () => cache.delete(name),
      );
      cache.set(name, p);
    }
    return p;
  };
}
