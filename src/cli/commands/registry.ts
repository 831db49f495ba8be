/**
 * `bunker registry serve` (the OCI distribution server of core/registry/server.ts) and
 * `bunker registry gc`. Settings come from flags or from a JSON config file (validated), flags
 * winning: `{"addr": "0.0.0.0:5000", "root": "/var/lib/bunker-registry", "htpasswd": "…",
 * "tls": {"cert": "…", "key": "…"}}`.
 */
import { existsSync, readFileSync } from "node:fs";
import * as v from "valibot";
import { invalidArgument } from "../../core/errors.ts";
import { createLogger } from "../../core/log.ts";
import { parseOrThrow } from "../../core/validate.ts";

type Opts = Record<string, unknown>;

const ConfigSchema = v.strictObject({
  addr: v.optional(v.string()),
  root: v.optional(v.pipe(v.string(), v.startsWith("/", "must be an absolute path"))),
  htpasswd: v.optional(v.string()),
  tls: v.optional(v.strictObject({ cert: v.string(), key: v.string() })),
});

/** The merged settings. */
function settings(o: Opts) {
  const file = o.config ? String(o.config) : undefined;
  if (file && !existsSync(file)) throw invalidArgument(`config file ${file} does not exist`);
  const c = file ? parseOrThrow(ConfigSchema, JSON.parse(readFileSync(file, "utf8")), `registry config ${file}`) : {};
  const cert = o.tlsCert ? String(o.tlsCert) : c.tls?.cert;
  const key = o.tlsKey ? String(o.tlsKey) : c.tls?.key;
  if (!!cert !== !!key) throw invalidArgument("TLS needs both --tls-cert and --tls-key");
  const htpasswd = o.htpasswd ? String(o.htpasswd) : c.htpasswd;
  return {
    addr: o.addr ? String(o.addr) : (c.addr ?? "127.0.0.1:5000"),
    root: o.root ? String(o.root) : (c.root ?? "/var/lib/bunker-registry"),
    ...(htpasswd ? { htpasswd } : {}),
    ...(cert && key ? { tls: { cert, key } } : {}),
  };
}

/** Run `serve` or `gc`. */
export async function registryCommand(o: Opts, sub: string): Promise<number> {
  const s = settings(o);
  const log = createLogger({ level: o.debug ? "debug" : "info" });
  if (sub === "gc") {
    const { RegistryStore } = await import("../../core/registry/registry-store.ts");
    const removed = new RegistryStore(s.root).collect({ untagged: !!o.deleteUntagged });
    for (const d of removed) process.stdout.write(`blob eligible for deletion: ${d}\n`);
    process.stdout.write(`${removed.length} blobs deleted\n`);
    return 0;
  }
  if (sub !== "serve") throw invalidArgument(`unknown registry command: ${sub} (serve, gc)`);
  const { startRegistryServer } = await import("../../core/registry/server.ts");
  const server = await startRegistryServer({ ...s, log });
  log.info("registry listening", { url: server.url, root: s.root, auth: s.htpasswd ? "basic" : "none" });
  process.stdout.write(`${server.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  await server.stop();
  return 0;
}
