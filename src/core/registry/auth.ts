/**
 * Registry credentials and the authentication handshake: `X-Registry-Auth` (base64url JSON of
 * Docker's AuthConfig), a credentials file in docker's `config.json` format (written by
 * `bunker login`), `WWW-Authenticate` challenges, and Bearer tokens fetched from the realm the
 * challenge names (with the repository scope) and cached until they expire.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import * as v from "valibot";
import { writeFileAtomic } from "../atomic-file.ts";
import { EngineError } from "../errors.ts";

/** Docker's AuthConfig. */
export interface AuthConfig {
  username?: string;
  password?: string;
  auth?: string;
  identitytoken?: string;
  registrytoken?: string;
  serveraddress?: string;
}

const AuthSchema = v.looseObject({
  username: v.optional(v.string()),
  password: v.optional(v.string()),
  auth: v.optional(v.string()),
  identitytoken: v.optional(v.string()),
  registrytoken: v.optional(v.string()),
  serveraddress: v.optional(v.string()),
});

/** Decode `X-Registry-Auth` (base64url or base64 JSON); undefined when absent or empty. */
export function decodeRegistryAuth(header: string | null | undefined): AuthConfig | undefined {
  if (!header) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(header.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("utf8"));
  } catch {
    throw new EngineError("invalid-argument", "invalid X-Registry-Auth header: not base64-encoded JSON");
  }
  const r = v.safeParse(AuthSchema, json);
  if (!r.success) throw new EngineError("invalid-argument", "invalid X-Registry-Auth header");
  const a = r.output;
  if (a.auth && !a.username) {
    const [u, ...p] = Buffer.from(a.auth, "base64").toString("utf8").split(":");
    a.username = u;
    a.password = p.join(":");
  }
  return a.username || a.identitytoken || a.registrytoken ? a : undefined;
}

/** base64url JSON for `X-Registry-Auth`. */
export function encodeRegistryAuth(a: AuthConfig): string {
  return Buffer.from(JSON.stringify(a)).toString("base64url");
}

/** One `WWW-Authenticate` challenge. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parse a `WWW-Authenticate` header (`Bearer realm="…",service="…",scope="…"`). */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  const re = /([A-Za-z]+)\s+((?:[a-zA-Z_]+=(?:"[^"]*"|[^,\s]*)\s*,?\s*)*)/g;
  for (const m of header.matchAll(re)) {
    const params: Record<string, string> = {};
    for (const p of m[2]!.matchAll(/([a-zA-Z_]+)=(?:"([^"]*)"|([^,\s]*))/g)) params[p[1]!.toLowerCase()] = p[2] ?? p[3] ?? "";
    out.push({ scheme: m[1]!.toLowerCase(), params });
  }
  return out;
}

/** Where `bunker login` keeps credentials: `$BUNKER_CONFIG/config.json` or `~/.bunker/config.json`. */
export function credentialsFile(): string {
  return join(process.env.BUNKER_CONFIG ?? join(homedir(), ".bunker"), "config.json");
}

interface ConfigFile {
  auths?: Record<string, { auth?: string; identitytoken?: string }>;
  [k: string]: unknown;
}

function readConfig(file: string): ConfigFile {
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, "utf8")) as ConfigFile;
  } catch {
    throw new EngineError("invalid-argument", `${file}: not valid JSON`);
  }
}

/** Docker Hub's key in config.json. */
const HUB_KEY = "https://index.docker.io/v1/";

function keyOf(registry: string): string {
  return registry === "docker.io" || registry === "index.docker.io" || registry === "registry-1.docker.io" ? HUB_KEY : registry;
}

/** Stored credentials for `registry`, if any. */
export function storedCredentials(registry: string, file = credentialsFile()): AuthConfig | undefined {
  const entry = readConfig(file).auths?.[keyOf(registry)];
  if (!entry?.auth) return undefined;
  const [username, ...p] = Buffer.from(entry.auth, "base64").toString("utf8").split(":");
  return { username: username!, password: p.join(":"), serveraddress: registry };
}

/** Save credentials (mode 0600, written atomically). */
export function storeCredentials(registry: string, a: AuthConfig, file = credentialsFile()): void {
  const cfg = readConfig(file);
  cfg.auths = { ...(cfg.auths ?? {}), [keyOf(registry)]: { auth: Buffer.from(`${a.username ?? ""}:${a.password ?? ""}`).toString("base64") } };
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomic(file, JSON.stringify(cfg, null, "\t") + "\n", 0o600);
}

/** Forget credentials; false when there were none. */
export function removeCredentials(registry: string, file = credentialsFile()): boolean {
  const cfg = readConfig(file);
  if (!cfg.auths?.[keyOf(registry)]) return false;
  delete cfg.auths[keyOf(registry)];
  writeFileAtomic(file, JSON.stringify(cfg, null, "\t") + "\n", 0o600);
  return true;
}

/** Bearer tokens by realm, service and scope, until their expiry. */
export class TokenCache {
  private readonly tokens = new Map<string, { token: string; until: number }>();

  get(key: string): string | undefined {
    const t = this.tokens.get(key);
    if (t && t.until > Date.now()) return t.token;
    this.tokens.delete(key);
    return undefined;
  }

  set(key: string, token: string, expiresInSec = 60): void {
    this.tokens.set(key, { token, until: Date.now() + Math.max(10, expiresInSec - 5) * 1000 });
  }
}
