/**
 * `GET /containers/{id}/top`: the container's processes, from its cgroup; listed by the host's
 * `ps` with the client's arguments, as dockerd does, or from /proc where there is no `ps`.
 */
import { readFileSync } from "node:fs";
import { conflict, EngineError } from "../errors.ts";
import type { ContainerContext } from "./context.ts";

/** What `top` answers: ps's titles and one row per process. */
export interface TopResult {
  Titles: string[];
  Processes: string[][];
}

/**
 * `docker top` as dockerd does it: the host's `ps` with the client's arguments (default `-ef`:
 * user names, start times, terminals), keeping the rows whose PID is the container's; a row
 * without a PID (a thread, with `m`) follows its process. The last column takes the rest of
 * the line.
 */
async function psTop(ps: string, psArgs: string, pids: Set<number>): Promise<TopResult> {
  const p = Bun.spawn([ps, ...psArgs.split(/\s+/).filter(Boolean)], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new EngineError("internal", `Error running ps: exit status ${code}: ${err.trim()}`);
  const lines = out.split("\n");
  const titles = (lines[0] ?? "").trim().split(/\s+/);
  const pidIndex = titles.indexOf("PID");
  if (pidIndex < 0) throw new EngineError("internal", "Couldn't find PID field in ps output");
  const rows: string[][] = [];
  let inside = false;
  for (const line of lines.slice(1)) {
    if (!line.trim()) continue;
    const fields = line.trim().split(/\s+/);
    if (fields[pidIndex] !== "-") inside = pids.has(Number(fields[pidIndex]));
    if (inside) rows.push([...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(" ")]);
  }
  return { Titles: titles, Processes: rows };
}

/** One `ps -ef`-like row for `pid`, read from /proc; undefined when it exited meanwhile. */
function procRow(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const uid = /Uid:\s+(\d+)/.exec(status)?.[1] ?? "0";
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ") || `[${stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))}]`;
    const secs = Math.floor((Number(after[11]) + Number(after[12])) / 100);
    const time = `${String(Math.floor(secs / 3600)).padStart(2, "0")}:${String(Math.floor(secs / 60) % 60).padStart(2, "0")}:${String(secs % 60).padStart(2, "0")}`;
    return [uid, String(pid), after[1]!, "0", "", "?", time, cmd];
  } catch {
    return undefined;
  }
}

/** `GET /containers/{id}/top` of a running container. */
export async function top(ctx: ContainerContext, ref: string, psArgs = "-ef"): Promise<TopResult> {
  const c = ctx.store.get(ref);
  if (!c.State.Running) throw conflict(`Container ${c.Id} is not running`);
  const ps = Bun.which("ps");
  if (ps) return psTop(ps, psArgs, new Set(ctx.deps.runtime.pids(c.Id)));
  const rows = ctx.deps.runtime
    .pids(c.Id)
    .map(procRow)
    .filter((r): r is string[] => r !== undefined);
  return { Titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], Processes: rows };
}
