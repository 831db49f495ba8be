/**
 * `bunker build`: the context directory as a tar (what `.dockerignore` excludes left out, as the
 * docker CLI does), sent to the daemon's classic builder; the output shown as it comes, then each
 * step with its duration and whether it came from the cache.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import { DockerIgnore } from "../../core/build/dockerignore.ts";
import { invalidArgument } from "../../core/errors.ts";
import { archiveDirectory } from "../../core/layer/archive-dir.ts";
import { type TarInput, writeTar } from "../../core/layer/tar-stream.ts";
import { linuxSys } from "../../core/sys/sys.ts";
import type { CliContext } from "../context.ts";

type Opts = Record<string, unknown>;
const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

/** The context as tar chunks, `.dockerignore` applied; a Dockerfile outside it is added under a private name. */
async function* contextTar(dir: string, dockerfile: { inContext: string } | { outside: Uint8Array; name: string }): AsyncGenerator<Uint8Array> {
  const ig = existsSync(`${dir}/.dockerignore`) ? new DockerIgnore(readFileSync(`${dir}/.dockerignore`, "utf8")) : undefined;
  const keep = new Set([".dockerignore", "inContext" in dockerfile ? dockerfile.inContext : ""]);
  async function* entries(): AsyncGenerator<TarInput> {
    for await (const e of archiveDirectory(linuxSys(), dir)) {
      const name = e.header.name.replace(/\/$/, "");
      if (ig && !keep.has(name) && ig.excludes(name)) {
        if (e.body && typeof (e.body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === "function") for await (const _ of e.body as AsyncIterable<Uint8Array>) void _;
        continue;
      }
      yield e;
    }
    if ("outside" in dockerfile) yield { header: { name: dockerfile.name, type: "file", mode: 0o644, uid: 0, gid: 0, size: dockerfile.outside.length, mtime: Date.now() / 1000 }, body: dockerfile.outside };
  }
  yield* writeTar(entries());
}

interface StepTiming {
  text: string;
  start: number;
  end?: number;
  cached: boolean;
}

export async function buildCommand(ctx: CliContext, o: Opts, path: string): Promise<number> {
  const dir = resolve(path);
  if (!existsSync(dir)) throw invalidArgument(`unable to prepare context: path "${path}" not found`);
  const dfOpt = o.file ? resolve(String(o.file)) : resolve(dir, "Dockerfile");
  if (!existsSync(dfOpt)) throw invalidArgument(`unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${dfOpt}: no such file or directory`);
  const rel = relative(dir, dfOpt);
  const dockerfile = rel.startsWith("..") ? { outside: readFileSync(dfOpt), name: `.dockerfile.${crypto.randomUUID().slice(0, 8)}` } : { inContext: rel };
  const buildArgs = Object.fromEntries(list(o.buildArg).map((a) => (a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, process.env[a] ?? null])));
  const labels = Object.fromEntries(list(o.label).map((a) => (a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, ""])));
  const url = new URL(`${ctx.client().endpoint.base}/v${ctx.client().apiVersion}/build`);
  const q: Record<string, string | undefined> = {
    dockerfile: "inContext" in dockerfile ? dockerfile.inContext : dockerfile.name,
    buildargs: JSON.stringify(buildArgs),
    labels: JSON.stringify(labels),
    target: o.target ? String(o.target) : undefined,
    nocache: o.noCache || o.cache === false ? "1" : undefined,
    pull: o.pull ? "1" : undefined,
    q: o.quiet ? "1" : undefined,
    networkmode: o.network ? String(o.network) : undefined,
    rm: "1",
  };
  for (const [k, v] of Object.entries(q)) if (v !== undefined) url.searchParams.set(k, v);
  for (const t of list(o.tag)) url.searchParams.append("t", t);
  const body = new ReadableStream<Uint8Array>({
    async start(c) {
      for await (const chunk of contextTar(dir, dockerfile)) c.enqueue(chunk);
      c.close();
    },
  });
  const res = await fetch(url, { method: "POST", body, duplex: "half", headers: { "Content-Type": "application/x-tar" }, ...ctx.client().endpoint.fetchInit } as RequestInit);
  if (!res.ok) throw new Error(((await res.json()) as { message: string }).message);
  const steps: StepTiming[] = [];
  let id = "";
  let failure: { message: string; code: number } | undefined;
  const dec = new TextDecoder();
  let buf = "";
  const handle = (line: string) => {
    const m = JSON.parse(line) as { stream?: string; aux?: { ID?: string }; errorDetail?: { message: string; code?: number }; status?: string; id?: string };
    if (m.errorDetail) failure = { message: m.errorDetail.message, code: m.errorDetail.code ?? 1 };
    if (m.aux?.ID) id = m.aux.ID;
    if (m.status) ctx.out(`${m.id ? `${m.id}: ` : ""}${m.status}\n`);
    if (!m.stream) return;
    if (o.quiet) return;
    ctx.out(m.stream);
    const step = /^Step \d+\/\d+ : (.*)/.exec(m.stream);
    if (step) {
      const now = performance.now();
      if (steps.length) steps.at(-1)!.end ??= now;
      steps.push({ text: step[1]!.trim(), start: now, cached: false });
    } else if (m.stream.startsWith(" ---> Using cache") && steps.length) steps.at(-1)!.cached = true;
  };
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) handle(line);
    }
  }
  if (buf.trim()) handle(buf.trim());
  const end = performance.now();
  if (steps.length) steps.at(-1)!.end ??= end;
  if (failure) {
    ctx.err(`${failure.message}\n`);
    return failure.code;
  }
  if (o.quiet) ctx.out(`${id}\n`);
  else if (steps.length) {
    ctx.out("\nSteps:\n");
    steps.forEach((s, n) => ctx.out(`  ${String(n + 1).padStart(2)}  ${((s.end! - s.start) / 1000).toFixed(2)}s  ${s.cached ? "CACHED" : "      "}  ${s.text.length > 70 ? `${s.text.slice(0, 69)}…` : s.text}\n`));
  }
  if (o.iidfile) writeFileSync(String(o.iidfile), id);
  return 0;
}
