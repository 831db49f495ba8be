/**
 * `bunker pull`, `push`, `login`, `logout`, `search`: the daemon does the registry work; these
 * send the stored credentials (`X-Registry-Auth`) and render Docker's progress stream — one line
 * per layer redrawn in place with a bar on a terminal, plain status lines otherwise.
 */
import { encodeRegistryAuth, removeCredentials, storeCredentials, storedCredentials } from "../../core/registry/auth.ts";
import { invalidArgument } from "../../core/errors.ts";
import { normalizeRegistryHost } from "../../core/image/reference.ts";
import { parseWithDefaultTag } from "../../core/image/reference.ts";
import type { CliContext } from "../context.ts";
import { tabwrite } from "../output.ts";

type Opts = Record<string, unknown>;

interface Message {
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  errorDetail?: { message?: string };
  error?: string;
}

/** X-Registry-Auth for the registry of `name`, from `bunker login`'s file (empty when none). */
export function authHeaderFor(name: string): Record<string, string> {
  const creds = storedCredentials(parseWithDefaultTag(name).domain);
  return creds ? { "X-Registry-Auth": encodeRegistryAuth(creds) } : {};
}

/**
 * Render an NDJSON progress stream. On a terminal each layer keeps its own line, moved to and
 * rewritten in place; otherwise a line is printed when a layer's status changes. Resolves with
 * the error message the stream ended with, if any.
 */
export async function renderProgress(body: ReadableStream<Uint8Array>, out: NodeJS.WriteStream): Promise<string | undefined> {
  const tty = !!out.isTTY;
  const lines = new Map<string, number>();
  const lastStatus = new Map<string, string>();
  let count = 0;
  let error: string | undefined;
  const show = (m: Message) => {
    if (m.errorDetail || m.error) {
      error = m.errorDetail?.message ?? m.error;
      return;
    }
    if (!m.status) return;
    const text = m.id ? `${m.id}: ${m.status}${tty && m.progress ? ` ${m.progress}` : ""}` : m.status;
    if (!tty) {
      if (m.id && lastStatus.get(m.id) === m.status) return; // "Downloading" repeats: once is enough
      if (m.id) lastStatus.set(m.id, m.status);
      out.write(`${text}\n`);
      return;
    }
    if (m.id && lines.has(m.id)) {
      const up = count - lines.get(m.id)!;
      out.write(`\x1b[${up}A\r\x1b[2K${text}\x1b[${up}B\r`);
      return;
    }
    if (m.id) lines.set(m.id, count);
    out.write(`${text}\n`);
    count++;
  };
  let buf = "";
  const dec = new TextDecoder();
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) show(JSON.parse(line) as Message);
    }
  }
  if (buf.trim()) show(JSON.parse(buf) as Message);
  return error;
}

/** Pull `name` through the daemon, rendering progress on `out`; throws the stream's error. */
export async function pullThrough(ctx: CliContext, name: string, out: NodeJS.WriteStream, platform?: string): Promise<void> {
  const ref = parseWithDefaultTag(name);
  const res = await ctx.client().request("POST", "/images/create", {
    query: { fromImage: `${ref.domain}/${ref.path}`, tag: ref.digest ?? ref.tag ?? "latest", platform },
    headers: authHeaderFor(name),
  });
  const err = await renderProgress(res.body!, out);
  if (err) throw new Error(err);
}

export async function pullCommand(ctx: CliContext, o: Opts, name: string): Promise<number> {
  await pullThrough(ctx, name, process.stdout, o.platform ? String(o.platform) : undefined);
  const ref = parseWithDefaultTag(name);
  ctx.out(`${ref.domain === "docker.io" ? "docker.io/" : ""}${ref.domain === "docker.io" ? ref.path : `${ref.domain}/${ref.path}`}${ref.digest ? `@${ref.digest}` : `:${ref.tag ?? "latest"}`}\n`);
  return 0;
}

export async function pushCommand(ctx: CliContext, name: string): Promise<number> {
  const ref = parseWithDefaultTag(name);
  const res = await ctx.client().request("POST", `/images/${ref.domain}/${ref.path}/push`, { query: { tag: ref.tag ?? "latest" }, headers: authHeaderFor(name) });
  const err = await renderProgress(res.body!, process.stdout);
  if (err) throw new Error(err);
  return 0;
}

async function readStdin(): Promise<string> {
  let s = "";
  for await (const c of process.stdin) s += c;
  return s.replace(/\r?\n$/, "");
}

export async function loginCommand(ctx: CliContext, o: Opts, server?: string): Promise<number> {
  // cac gives `--password-stdin` the operand after it (it shares a prefix with --password <value>).
  if (typeof o.passwordStdin === "string") {
    server ??= o.passwordStdin;
    o.passwordStdin = true;
  }
  const registry = normalizeRegistryHost(server ?? "docker.io");
  const username = o.username ? String(o.username) : undefined;
  const password = o.passwordStdin ? await readStdin() : o.password ? String(o.password) : undefined;
  if (!username || password === undefined) throw invalidArgument("Must provide --username with --password or --password-stdin");
  if (o.password) ctx.err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n");
  await ctx.client().json("POST", "/auth", { body: { username, password, serveraddress: registry } });
  storeCredentials(registry, { username, password });
  ctx.out("Login Succeeded\n");
  return 0;
}

export async function logoutCommand(ctx: CliContext, server?: string): Promise<number> {
  const registry = normalizeRegistryHost(server ?? "docker.io");
  if (removeCredentials(registry)) ctx.out(`Removing login credentials for ${registry}\n`);
  else ctx.out(`Not logged in to ${registry}\n`);
  return 0;
}

export async function searchCommand(ctx: CliContext, o: Opts, term: string): Promise<number> {
  const rows = await ctx
    .client()
    .json<{ name: string; description: string; star_count: number; is_official: boolean }[]>("GET", "/images/search", { query: { term, limit: o.limit as number | undefined }, headers: authHeaderFor(`${term.split("/")[0]}/x`) });
  ctx.out(`${tabwrite(["NAME\tDESCRIPTION\tSTARS\tOFFICIAL", ...rows.map((r) => `${r.name}\t${r.description}\t${r.star_count}\t${r.is_official ? "[OK]" : ""}`)].join("\n"), 10, 3)}\n`);
  return 0;
}
