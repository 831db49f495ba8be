/**
 * `bunker run/create/start/stop/restart/kill/rm/ps/logs/exec/inspect/wait/pause/unpause/rename/
 * top` and `bunker volume …`: docker's commands and flags, docker's output (tables through the
 * same tabwriter rules, `--format`), `-it` with the terminal in raw mode and its size sent to the
 * daemon.
 */

import { resolve } from "node:path";
import { DaemonError } from "../../core/client/engine-client.ts";
import { concatBytes } from "../../core/bytes.ts";
import { demux, hijack } from "../../core/client/hijack.ts";
import { humanDuration } from "../../core/format/duration.ts";
import { invalidArgument } from "../../core/errors.ts";
import { ignore } from "../../core/log.ts";
import { type HostBinding } from "../../core/network/port-spec.ts";
import type { CliContext } from "../context.ts";
import { renderFormat, tabwrite } from "../output.ts";

import { createBody, resourceFlags } from "./create-body.ts";

export { createBody } from "./create-body.ts";

type Opts = Record<string, unknown>;
const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

async function createContainer(ctx: CliContext, o: Opts, image: string, cmd: string[]): Promise<string> {
  const client = ctx.client();
  const body = createBody(o, image, cmd);
  const name = o.name ? String(o.name) : undefined;
  const policy = o.pull ? String(o.pull) : "missing";
  const { pullThrough } = await import("./distribution.ts");
  if (policy === "always") await pullThrough(ctx, image, process.stderr);
  const create = () => client.json<{ Id: string; Warnings: string[] }>("POST", "/containers/create", { query: { name }, body });
  let r: { Id: string; Warnings: string[] };
  try {
    r = await create();
  } catch (err) {
    // As docker: a missing image is pulled once, then the create is tried again.
    if (!(err instanceof DaemonError && err.status === 404 && policy === "missing" && /No such image/.test(err.message))) throw err;
    ctx.err(`Unable to find image '${image}' locally\n`);
    await pullThrough(ctx, image, process.stderr);
    r = await create();
  }
  for (const w of r.Warnings ?? []) ctx.err(`WARNING: ${w}\n`);
  return r.Id;
}

/** Stream a hijacked connection to stdout/stderr; stdin from ours when `stdin`. Resolves at its end. */
async function pump(ctx: CliContext, path: string, opts: { tty: boolean; stdin: boolean; body?: unknown }, onOpen?: () => Promise<void>): Promise<void> {
  const client = ctx.client();
  const h = await hijack(client.endpoint, "POST", `/v${client.apiVersion}${path}`, opts.body);
  const raw = opts.tty && opts.stdin && process.stdin.isTTY;
  if (raw) process.stdin.setRawMode(true);
  if (opts.stdin) {
    process.stdin.on("data", (d: Buffer) => h.write(d));
    process.stdin.on("end", () => h.closeWrite());
  }
  const split = demux((s, payload) => (s === 2 ? process.stderr.write(payload) : process.stdout.write(payload)));
  try {
    await onOpen?.();
    for await (const chunk of h.output) {
      if (opts.tty) process.stdout.write(chunk);
      else split(chunk);
    }
  } finally {
    if (raw) process.stdin.setRawMode(false);
    if (opts.stdin) process.stdin.pause();
  }
}

/** `bunker run`. */
export async function runCommand(ctx: CliContext, o: Opts, image: string, cmd: string[]): Promise<number> {
  const client = ctx.client();
  if (o.tty && !o.detach && o.interactive && !process.stdin.isTTY) {
    ctx.err("the input device is not a TTY\n");
    return 1;
  }
  const id = await createContainer(ctx, o, image, cmd);
  if (o.detach) {
    await client.request("POST", `/containers/${id}/start`);
    ctx.out(`${id}\n`);
    return 0;
  }
  // As docker: wait first (headers at once), attach, then start.
  const waitRes = client.json<{ StatusCode: number }>("POST", `/containers/${id}/wait`, { query: { condition: o.rm ? "removed" : "next-exit" } });
  const resize = async () => {
    if (o.tty && process.stdout.isTTY) await client.request("POST", `/containers/${id}/resize`, { query: { h: process.stdout.rows, w: process.stdout.columns } }).catch(ignore("resize of a container that ended"));
  };
  if (o.tty) process.on("SIGWINCH", () => void resize());
  try {
    await pump(ctx, `/containers/${id}/attach?stream=1&stdin=${o.interactive ? 1 : 0}&stdout=1&stderr=1`, { tty: !!o.tty, stdin: !!o.interactive }, async () => {
      try {
        await client.request("POST", `/containers/${id}/start`);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        throw new DaemonError(/executable file not found|no such file or directory/.test(msg) ? 127 : /permission denied/.test(msg) ? 126 : 125, msg);
      }
      await resize();
    });
  } catch (err) {
    if (err instanceof DaemonError) {
      ctx.err(`bunker: Error response from daemon: ${err.message}\n`);
      return err.status >= 125 && err.status <= 127 ? err.status : 125;
    }
    throw err;
  }
  return (await waitRes).StatusCode;
}

/** `bunker create`. */
export async function createCommand(ctx: CliContext, o: Opts, image: string, cmd: string[]): Promise<number> {
  ctx.out(`${await createContainer(ctx, o, image, cmd)}\n`);
  return 0;
}

/** Run `fn` on each named container, printing the name as docker does; failures go to stderr. */
async function each(ctx: CliContext, names: string[], fn: (n: string) => Promise<void>, echo = true): Promise<number> {
  let code = 0;
  for (const n of names) {
    try {
      await fn(n);
      if (echo) ctx.out(`${n}\n`);
    } catch (err) {
      ctx.err(`Error response from daemon: ${err instanceof Error ? err.message : String(err)}\n`);
      code = 1;
    }
  }
  return code;
}

export async function startCommand(ctx: CliContext, o: Opts, names: string[]): Promise<number> {
  const client = ctx.client();
  if (o.attach && names.length === 1) {
    const info = await client.json<{ Id: string; Config: { Tty: boolean } }>("GET", `/containers/${names[0]}/json`);
    const waitRes = client.json<{ StatusCode: number }>("POST", `/containers/${info.Id}/wait`, { query: { condition: "next-exit" } });
    await pump(ctx, `/containers/${info.Id}/attach?stream=1&stdin=${o.interactive ? 1 : 0}&stdout=1&stderr=1`, { tty: info.Config.Tty, stdin: !!o.interactive }, async () => {
      await client.request("POST", `/containers/${info.Id}/start`);
    });
    return (await waitRes).StatusCode;
  }
  return each(ctx, names, async (n) => void (await client.request("POST", `/containers/${n}/start`)));
}

export const stopCommand = (ctx: CliContext, o: Opts, names: string[]) =>
  each(ctx, names, async (n) => void (await ctx.client().request("POST", `/containers/${n}/stop`, { query: { t: o.time as number | undefined, signal: o.signal as string | undefined } })));
export const restartCommand = (ctx: CliContext, o: Opts, names: string[]) => each(ctx, names, async (n) => void (await ctx.client().request("POST", `/containers/${n}/restart`, { query: { t: o.time as number | undefined } })));
export const killCommand = (ctx: CliContext, o: Opts, names: string[]) => each(ctx, names, async (n) => void (await ctx.client().request("POST", `/containers/${n}/kill`, { query: { signal: (o.signal as string | undefined) ?? "KILL" } })));
export const rmCommand = (ctx: CliContext, o: Opts, names: string[]) =>
  each(ctx, names, async (n) => void (await ctx.client().request("DELETE", `/containers/${n}`, { query: { force: o.force ? 1 : undefined, v: o.volumes ? 1 : undefined } })));
export const pauseCommand = (ctx: CliContext, names: string[], pause: boolean) => each(ctx, names, async (n) => void (await ctx.client().request("POST", `/containers/${n}/${pause ? "pause" : "unpause"}`)));

export async function waitCommand(ctx: CliContext, names: string[]): Promise<number> {
  return each(ctx, names, async (n) => ctx.out(`${(await ctx.client().json<{ StatusCode: number }>("POST", `/containers/${n}/wait`)).StatusCode}\n`), false);
}

export async function renameCommand(ctx: CliContext, from: string, to: string): Promise<number> {
  await ctx.client().request("POST", `/containers/${from}/rename`, { query: { name: to } });
  return 0;
}

interface Summary {
  Id: string;
  Names: string[];
  Image: string;
  Command: string;
  Created: number;
  Status: string;
  State: string;
  Ports: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[];
  Labels: Record<string, string>;
}

/** "About a minute ago" style, from docker's units.HumanDuration. */
function ago(createdSec: number): string {
  return `${humanDuration(Date.now() - createdSec * 1000)} ago`;
}

/** docker ps's PORTS column: `127.0.0.1:8080->80/tcp, 443/tcp`. */
function portsText(ports: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[]): string {
  return ports.map((p) => (p.PublicPort ? `${p.IP}:${p.PublicPort}->${p.PrivatePort}/${p.Type}` : `${p.PrivatePort}/${p.Type}`)).join(", ");
}

/** `bunker port CONTAINER [PRIVATE_PORT[/PROTO]]`. */
export async function portCommand(ctx: CliContext, name: string, which?: string): Promise<number> {
  const info = await ctx.client().json<{ NetworkSettings: { Ports: Record<string, HostBinding[] | null> } }>("GET", `/containers/${name}/json`);
  const want = which ? (which.includes("/") ? which : `${which}/tcp`) : undefined;
  let found = false;
  for (const [key, list] of Object.entries(info.NetworkSettings.Ports ?? {})) {
    if (want && key !== want) continue;
    for (const b of list ?? []) {
      found = true;
      const hostPort = `${b.HostIp.includes(":") ? `[${b.HostIp}]` : b.HostIp}:${b.HostPort}`; // as Go's net.JoinHostPort
      ctx.out(want ? `${hostPort}\n` : `${key} -> ${hostPort}\n`);
    }
  }
  if (want && !found) {
    ctx.err(`Error: No public port '${want}' published for ${name}\n`);
    return 1;
  }
  return 0;
}

export async function psCommand(ctx: CliContext, o: Opts): Promise<number> {
  const filters: Record<string, string[]> = {};
  for (const f of list(o.filter)) {
    const at = f.indexOf("=");
    (filters[f.slice(0, at)] ??= []).push(f.slice(at + 1));
  }
  const rows = await ctx
    .client()
    .json<Summary[]>("GET", "/containers/json", { query: { all: o.all || (o.quiet && o.all) ? 1 : undefined, filters: Object.keys(filters).length ? JSON.stringify(filters) : undefined, limit: o.last as number | undefined } });
  const trunc = o.trunc !== false; // cac reads --no-trunc as trunc: false
  if (o.quiet) {
    for (const r of rows) ctx.out(`${trunc ? r.Id.slice(0, 12) : r.Id}\n`);
    return 0;
  }
  const view = (r: Summary) => ({
    ID: trunc ? r.Id.slice(0, 12) : r.Id,
    Image: r.Image,
    Command: JSON.stringify(trunc && r.Command.length > 20 ? `${r.Command.slice(0, 19)}…` : r.Command),
    CreatedAt: new Date(r.Created * 1000).toISOString(),
    RunningFor: ago(r.Created),
    Ports: portsText(r.Ports ?? []),
    State: r.State,
    Status: r.Status,
    Names: r.Names.map((n) => n.slice(1)).join(","),
    Labels: Object.entries(r.Labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(","),
  });
  if (o.format) {
    for (const r of rows) ctx.out(`${renderFormat(String(o.format), view(r))}\n`);
    return 0;
  }
  const lines = [
    "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES",
    ...rows.map((r) => {
      const v = view(r);
      return `${v.ID}\t${v.Image}\t${v.Command}\t${v.RunningFor}\t${v.Status}\t${v.Ports}\t${v.Names}`;
    }),
  ];
  ctx.out(`${tabwrite(lines.join("\n"), 10, 3)}\n`); // docker: tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
  return 0;
}

export async function logsCommand(ctx: CliContext, o: Opts, name: string): Promise<number> {
  const client = ctx.client();
  const info = await client.json<{ Config: { Tty: boolean } }>("GET", `/containers/${name}/json`);
  const res = await client.request("GET", `/containers/${name}/logs`, {
    query: { stdout: 1, stderr: 1, follow: o.follow ? 1 : undefined, tail: o.tail as string | undefined, timestamps: o.timestamps ? 1 : undefined, since: o.since as string | undefined, until: o.until as string | undefined },
  });
  const split = demux((s, p) => (s === 2 ? process.stderr.write(p) : process.stdout.write(p)));
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    if (info.Config.Tty) process.stdout.write(chunk);
    else split(chunk);
  }
  return 0;
}

export async function execCommand(ctx: CliContext, o: Opts, name: string, cmd: string[]): Promise<number> {
  const client = ctx.client();
  if (!cmd.length) throw invalidArgument("exec requires at least 2 arguments");
  const tty = !!o.tty;
  const { Id } = await client.json<{ Id: string }>("POST", `/containers/${name}/exec`, {
    body: {
      Cmd: cmd,
      Tty: tty,
      AttachStdin: !!o.interactive && !o.detach,
      AttachStdout: !o.detach,
      AttachStderr: !o.detach,
      Env: list(o.env),
      ...(o.user ? { User: String(o.user) } : {}),
      ...(o.workdir ? { WorkingDir: String(o.workdir) } : {}),
      Privileged: !!o.privileged,
      ...(tty && process.stdout.isTTY ? { ConsoleSize: [process.stdout.rows, process.stdout.columns] } : {}),
    },
  });
  if (o.detach) {
    await client.request("POST", `/exec/${Id}/start`, { body: { Detach: true, Tty: tty } });
    return 0;
  }
  await pump(ctx, `/exec/${Id}/start`, { tty, stdin: !!o.interactive, body: { Detach: false, Tty: tty } });
  const info = await client.json<{ ExitCode: number | null }>("GET", `/exec/${Id}/json`);
  return info.ExitCode ?? 0;
}

export async function inspectCommand(ctx: CliContext, o: Opts, names: string[]): Promise<number> {
  const client = ctx.client();
  const out: unknown[] = [];
  let code = 0;
  for (const n of names) {
    try {
      out.push(await client.json("GET", `/containers/${n}/json`));
    } catch (err) {
      try {
        out.push(await client.json("GET", `/volumes/${n}`));
      } catch {
        ctx.err(`Error: No such object: ${n}\n`);
        code = 1;
        void err;
      }
    }
  }
  if (o.format) for (const v of out) ctx.out(`${renderFormat(String(o.format), v)}\n`);
  else ctx.out(`${JSON.stringify(out, null, 4)}\n`);
  return code;
}

export async function topCommand(ctx: CliContext, name: string): Promise<number> {
  const t = await ctx.client().json<{ Titles: string[]; Processes: string[][] }>("GET", `/containers/${name}/top`);
  ctx.out(`${tabwrite([t.Titles.join("\t"), ...t.Processes.map((p) => p.join("\t"))].join("\n"), 0, 3)}\n`);
  return 0;
}

/** `bunker volume create|ls|rm|inspect|prune`. */
export async function volumeCommand(ctx: CliContext, o: Opts, sub: string, args: string[]): Promise<number> {
  const client = ctx.client();
  if (sub === "create") {
    const v = await client.json<{ Name: string }>("POST", "/volumes/create", { body: { Name: args[0] ?? "", Driver: o.driver ?? "local", Labels: Object.fromEntries(list(o.label).map((l) => l.split("="))) } });
    ctx.out(`${v.Name}\n`);
    return 0;
  }
  if (sub === "ls") {
    const { Volumes } = await client.json<{ Volumes: { Name: string; Driver: string }[] }>("GET", "/volumes");
    if (o.quiet) for (const v of Volumes) ctx.out(`${v.Name}\n`);
    else ctx.out(`${tabwrite(["DRIVER\tVOLUME NAME", ...Volumes.map((v) => `${v.Driver}\t${v.Name}`)].join("\n"), 10, 3)}\n`);
    return 0;
  }
  if (sub === "rm") return each(ctx, args, async (n) => void (await client.request("DELETE", `/volumes/${n}`, { query: { force: o.force ? 1 : undefined } })));
  if (sub === "inspect") {
    const out = [];
    for (const n of args) out.push(await client.json("GET", `/volumes/${n}`));
    ctx.out(`${JSON.stringify(out, null, 4)}\n`);
    return 0;
  }
  if (sub === "prune") {
    const r = await client.json<{ VolumesDeleted: string[] }>("POST", "/volumes/prune");
    ctx.out(`Deleted Volumes:\n${(r.VolumesDeleted ?? []).map((v) => `${v}\n`).join("")}\nTotal reclaimed space: 0B\n`);
    return 0;
  }
  throw invalidArgument(`unknown volume command: ${sub}`);
}

/** `bunker attach`: the container's streams; detach keys (ctrl-p ctrl-q) with -it containers. */
export async function attachCommand(ctx: CliContext, o: Opts, name: string): Promise<number> {
  const client = ctx.client();
  const info = await client.json<{ Id: string; Config: { Tty: boolean; OpenStdin: boolean } }>("GET", `/containers/${name}/json`);
  const stdin = info.Config.OpenStdin && o.stdin !== false;
  const waitRes = client.json<{ StatusCode: number }>("POST", `/containers/${info.Id}/wait`, { query: { condition: "next-exit" } });
  await pump(ctx, `/containers/${info.Id}/attach?stream=1&stdin=${stdin ? 1 : 0}&stdout=1&stderr=1${o.detachKeys ? `&detachKeys=${encodeURIComponent(String(o.detachKeys))}` : ""}`, { tty: info.Config.Tty, stdin });
  const done = await Promise.race([waitRes, Bun.sleep(100).then(() => undefined)]);
  return done ? done.StatusCode : 0; // detached: the container goes on
}

/** `bunker cp SRC DST`: one side is `container:path`; a tar through the archive API. */
export async function cpCommand(ctx: CliContext, src: string, dst: string): Promise<number> {
  const client = ctx.client();
  const remote = (s: string) => {
    const m = /^([^/:][^:]*):(.*)$/.exec(s);
    return m ? { container: m[1]!, path: m[2] || "/" } : undefined;
  };
  const from = remote(src);
  const to = remote(dst);
  if (!!from === !!to) throw invalidArgument("copying between containers or between host paths is not supported: one side must be CONTAINER:PATH");
  const { readTar, writeTar } = await import("../../core/layer/tar-stream.ts");
  const { applyLayer } = await import("../../core/layer/apply.ts");
  const { linuxSys } = await import("../../core/sys/sys.ts");
  const { existsSync: exists, mkdirSync, statSync } = await import("node:fs");
  const { basename, dirname } = await import("node:path");
  if (from) {
    const res = await client.request("GET", `/containers/${from.container}/archive`, { query: { path: from.path } });
    // The archive's top entry is the source's base name: extract into the destination's parent
    // under the requested name (docker cp's rules for a new or an existing directory).
    const target = exists(dst) && statSync(dst).isDirectory() ? dst : dirname(resolve(dst));
    const rename = exists(dst) && statSync(dst).isDirectory() ? undefined : basename(dst);
    mkdirSync(target, { recursive: true });
    async function* renamed(): AsyncGenerator<Uint8Array> {
      const entries = readTar(res.body as unknown as AsyncIterable<Uint8Array>);
      async function* mapped() {
        for await (const e of entries) {
          const name = rename ? e.header.name.replace(/^[^/]+/, rename) : e.header.name;
          yield { header: { ...e.header, name }, ...(e.header.type === "file" ? { body: await collect(e.body) } : {}) };
        }
      }
      yield* writeTar(mapped());
    }
    await applyLayer(linuxSys(), target, renamed(), { whiteouts: "literal", sync: false, chown: false });
    return 0;
  }
  const { archiveDirectory, entryFor } = await import("../../core/layer/archive-dir.ts");
  const st = (await import("node:fs")).lstatSync(src);
  const base = basename(resolve(src));
  async function* entries() {
    const top = entryFor(linuxSys(), src, base, st, new Map());
    if (top) yield top;
    if (st.isDirectory()) for await (const e of archiveDirectory(linuxSys(), src)) yield { ...e, header: { ...e.header, name: `${base}/${e.header.name}` } };
  }
  const body = new ReadableStream({
    async start(controller) {
      for await (const chunk of writeTar(entries())) controller.enqueue(chunk);
      controller.close();
    },
  });
  const url = new URL(`${client.endpoint.base}/v${client.apiVersion}/containers/${to!.container}/archive`);
  url.searchParams.set("path", to!.path);
  const res = await fetch(url, { method: "PUT", body, headers: { "Content-Type": "application/x-tar" }, ...client.endpoint.fetchInit, duplex: "half" } as RequestInit);
  if (res.status >= 400) throw new DaemonError(res.status, ((await res.json().catch(() => ({}))) as { message?: string }).message ?? res.statusText);
  return 0;
}

async function collect(body: AsyncIterable<Uint8Array> | undefined): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of body ?? []) parts.push(c);
  return parts.length ? concatBytes(parts) : new Uint8Array(0);
}

/** `bunker commit CONTAINER [REPO[:TAG]]`. */
export async function commitCommand(ctx: CliContext, o: Opts, name: string, ref?: string): Promise<number> {
  const [repo, tag] = ref ? (ref.lastIndexOf(":") > ref.lastIndexOf("/") ? [ref.slice(0, ref.lastIndexOf(":")), ref.slice(ref.lastIndexOf(":") + 1)] : [ref, undefined]) : [undefined, undefined];
  const r = await ctx.client().json<{ Id: string }>("POST", "/commit", {
    query: { container: name, repo, tag, comment: o.message as string | undefined, author: o.author as string | undefined, pause: o.pause === false ? 0 : 1, changes: list(o.change).join("\n") || undefined },
  });
  ctx.out(`${r.Id}\n`);
  return 0;
}

/** `bunker diff`. */
export async function diffCommand(ctx: CliContext, name: string): Promise<number> {
  const changes = (await ctx.client().json<{ Path: string; Kind: number }[] | null>("GET", `/containers/${name}/changes`)) ?? [];
  for (const c of changes) ctx.out(`${"CAD"[c.Kind]} ${c.Path}\n`);
  return 0;
}

/** `bunker export CONTAINER [-o FILE]`. */
export async function exportCommand(ctx: CliContext, o: Opts, name: string): Promise<number> {
  const res = await ctx.client().request("GET", `/containers/${name}/export`);
  if (o.output) await Bun.write(String(o.output), res);
  else for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) process.stdout.write(chunk);
  return 0;
}

/** `bunker update` (limits and restart policy). */
export async function updateCommand(ctx: CliContext, o: Opts, names: string[]): Promise<number> {
  const restart = o.restart ? String(o.restart).split(":") : undefined;
  const body = {
    ...resourceFlags(o),
    ...(restart ? { RestartPolicy: { Name: restart[0], MaximumRetryCount: Number(restart[1] ?? 0) } } : {}),
  };
  return each(ctx, names, async (n) => void (await ctx.client().request("POST", `/containers/${n}/update`, { body })));
}

/** `bunker stats --no-stream`: one table of CPU, memory and pids, docker's columns. */
export async function statsCommand(ctx: CliContext, names: string[]): Promise<number> {
  const client = ctx.client();
  const ids = names.length ? names : (await client.json<Summary[]>("GET", "/containers/json")).map((c) => c.Id);
  const rows = ["CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS"];
  const { bytesSize } = await import("../output.ts");
  for (const id of ids) {
    const s = await client.json<{
      id: string;
      name: string;
      cpu_stats: { cpu_usage: { total_usage: number }; system_cpu_usage: number; online_cpus: number };
      precpu_stats: { cpu_usage: { total_usage: number }; system_cpu_usage?: number };
      memory_stats: { usage?: number; limit?: number; stats?: Record<string, number> };
      pids_stats: { current?: number };
      blkio_stats: { io_service_bytes_recursive: { op: string; value: number }[] | null };
    }>("GET", `/containers/${id}/stats`, { query: { stream: 0 } });
    const cpuDelta = s.cpu_stats.cpu_usage.total_usage - s.precpu_stats.cpu_usage.total_usage;
    const sysDelta = s.cpu_stats.system_cpu_usage - (s.precpu_stats.system_cpu_usage ?? 0);
    const cpu = sysDelta > 0 ? (cpuDelta / sysDelta) * (s.cpu_stats.online_cpus || 1) * 100 : 0;
    const cache = s.memory_stats.stats?.total_inactive_file ?? s.memory_stats.stats?.inactive_file ?? 0;
    const used = Math.max(0, (s.memory_stats.usage ?? 0) - cache);
    const limit = s.memory_stats.limit ?? 0;
    const blk = s.blkio_stats.io_service_bytes_recursive ?? [];
    const rd = blk.filter((b) => b.op.toLowerCase() === "read").reduce((a, b) => a + b.value, 0);
    const wr = blk.filter((b) => b.op.toLowerCase() === "write").reduce((a, b) => a + b.value, 0);
    rows.push(
      `${s.id.slice(0, 12)}\t${s.name.slice(1)}\t${cpu.toFixed(2)}%\t${bytesSize(used)} / ${bytesSize(limit)}\t${limit ? ((used / limit) * 100).toFixed(2) : "0.00"}%\t0B / 0B\t${bytesSize(rd)} / ${bytesSize(wr)}\t${s.pids_stats.current ?? 0}`,
    );
  }
  ctx.out(`${tabwrite(rows.join("\n"), 10, 3)}\n`);
  return 0;
}
