/**
 * `bunker images`, `tag`, `rmi`, `load`, `save`: the image commands around pull and push,
 * with docker's output.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { humanDuration } from "../../core/format/duration.ts";
import { parseWithDefaultTag } from "../../core/image/reference.ts";
import type { CliContext } from "../context.ts";
import { tabwrite } from "../output.ts";

type Opts = Record<string, unknown>;

interface ImageSummary {
  Id: string;
  RepoTags: string[] | null;
  RepoDigests: string[] | null;
  Created: number;
  Size: number;
}

/** go-units' HumanSizeWithPrecision(n, 3), as docker prints sizes. */
const size = (n: number) => {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) (n /= 1000), i++;
  return `${Number(n.toPrecision(3))}${units[i]}`;
};

export async function imagesCommand(ctx: CliContext, o: Opts): Promise<number> {
  const list = await ctx.client().json<ImageSummary[]>("GET", "/images/json");
  if (o.quiet) {
    for (const i of list) ctx.out(`${i.Id.slice(7, 19)}\n`);
    return 0;
  }
  const rows = list.flatMap((i) => {
    // As docker: an image known only by digest shows its repository with tag <none>.
    const tagged = new Set((i.RepoTags ?? []).map((t) => t.slice(0, t.lastIndexOf(":"))));
    const digestOnly = [...new Set((i.RepoDigests ?? []).map((d) => d.slice(0, d.indexOf("@"))))].filter((r) => !tagged.has(r)).map((r) => `${r}:<none>`);
    const tags = [...(i.RepoTags ?? []), ...digestOnly];
    if (!tags.length) tags.push("<none>:<none>");
    return tags.map((t) => {
      const at = t.lastIndexOf(":");
      return `${t.slice(0, at)}\t${t.slice(at + 1)}\t${i.Id.slice(7, 19)}\t${humanDuration(Date.now() - i.Created * 1000)} ago\t${size(i.Size)}`;
    });
  });
  ctx.out(`${tabwrite(["REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE", ...rows].join("\n"), 10, 3)}\n`);
  return 0;
}

export async function tagCommand(ctx: CliContext, source: string, target: string): Promise<number> {
  const ref = parseWithDefaultTag(target);
  await ctx.client().request("POST", `/images/${encodeURIComponent(source)}/tag`, { query: { repo: `${ref.domain}/${ref.path}`, tag: ref.tag ?? "latest" } });
  return 0;
}

export async function rmiCommand(ctx: CliContext, o: Opts, names: string[]): Promise<number> {
  let code = 0;
  for (const n of names) {
    try {
      const lines = await ctx.client().json<({ Untagged: string } | { Deleted: string })[]>("DELETE", `/images/${encodeURIComponent(n)}`, { query: { force: o.force ? 1 : undefined } });
      for (const l of lines) ctx.out("Untagged" in l ? `Untagged: ${l.Untagged}\n` : `Deleted: ${l.Deleted}\n`);
    } catch (err) {
      ctx.err(`Error response from daemon: ${err instanceof Error ? err.message : String(err)}\n`);
      code = 1;
    }
  }
  return code;
}

export async function loadCommand(ctx: CliContext, o: Opts): Promise<number> {
  const input = o.input ? createReadStream(String(o.input)) : process.stdin;
  const res = await fetch(`${ctx.client().endpoint.base}/images/load`, { method: "POST", body: input as unknown as ReadableStream, duplex: "half", ...ctx.client().endpoint.fetchInit } as RequestInit);
  const text = await res.text();
  if (!res.ok) throw new Error((JSON.parse(text) as { message: string }).message);
  for (const line of text.split("\n").filter(Boolean)) {
    const m = JSON.parse(line) as { stream?: string; errorDetail?: { message: string } };
    if (m.errorDetail) throw new Error(m.errorDetail.message);
    if (m.stream) ctx.out(m.stream);
  }
  return 0;
}

export async function saveCommand(ctx: CliContext, o: Opts, names: string[]): Promise<number> {
  const url = new URL(`${ctx.client().endpoint.base}/images/get`);
  for (const n of names) url.searchParams.append("names", n);
  const r = await fetch(url, ctx.client().endpoint.fetchInit as RequestInit);
  if (!r.ok) throw new Error(((await r.json()) as { message: string }).message);
  const out = o.output ? createWriteStream(String(o.output)) : process.stdout;
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) out.write(chunk);
  if (o.output) await new Promise((resolve) => (out as ReturnType<typeof createWriteStream>).end(resolve));
  return 0;
}
