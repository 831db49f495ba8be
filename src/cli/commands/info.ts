/**
 * `bunker info`: docker's `info` layout (cli/command/system/info.go) or `--format`.
 */
import { VERSION } from "../../core/version.ts";
import type { CliContext } from "../context.ts";
import { bytesSize, renderFormat } from "../output.ts";

type Info = Record<string, any>;

/** Render the server half the way docker prints it (warnings are printed separately, on stderr). */
export function renderServerInfo(i: Info): string {
  const lines: string[] = [];
  const add = (s: string) => lines.push(s);
  add(`Server:`);
  add(` Containers: ${i.Containers}`);
  add(`  Running: ${i.ContainersRunning}`);
  add(`  Paused: ${i.ContainersPaused}`);
  add(`  Stopped: ${i.ContainersStopped}`);
  add(` Images: ${i.Images}`);
  add(` Server Version: ${i.ServerVersion}`);
  if (i.Driver) {
    add(` Storage Driver: ${i.Driver}`);
    for (const [k, v] of (i.DriverStatus ?? []) as [string, string][]) add(`  ${k}: ${v}`);
  }
  add(` Logging Driver: ${i.LoggingDriver}`);
  add(` Cgroup Driver: ${i.CgroupDriver}`);
  add(` Cgroup Version: ${i.CgroupVersion}`);
  add(` Plugins:`);
  add(`  Volume:${list(i.Plugins?.Volume)}`);
  add(`  Network:${list(i.Plugins?.Network)}`);
  if (i.Plugins?.Authorization?.length) add(`  Authorization:${list(i.Plugins.Authorization)}`);
  add(`  Log:${list(i.Plugins?.Log)}`);
  add(` Swarm: ${i.Swarm?.LocalNodeState ?? "inactive"}`);
  const runtimes = Object.keys(i.Runtimes ?? {}).sort();
  if (runtimes.length) add(` Runtimes:${list(runtimes)}`);
  if (i.DefaultRuntime) add(` Default Runtime: ${i.DefaultRuntime}`);
  add(` Init Binary: ${i.InitBinary}`);
  add(` containerd version: ${i.ContainerdCommit?.ID ?? ""}`);
  add(` runc version: ${i.RuncCommit?.ID ?? ""}`);
  add(` init version: ${i.InitCommit?.ID ?? ""}`);
  if (i.SecurityOptions?.length) {
    add(` Security Options:`);
    for (const o of i.SecurityOptions as string[]) {
      const kv = Object.fromEntries(o.split(",").map((p) => p.split("=") as [string, string]));
      add(`  ${kv.name ?? o}`);
      for (const [k, v] of Object.entries(kv)) if (k !== "name") add(`   ${k[0]!.toUpperCase()}${k.slice(1)}: ${v}`);
    }
  }
  add(` Kernel Version: ${i.KernelVersion}`);
  add(` Operating System: ${i.OperatingSystem}`);
  add(` OSType: ${i.OSType}`);
  add(` Architecture: ${i.Architecture}`);
  add(` CPUs: ${i.NCPU}`);
  add(` Total Memory: ${bytesSize(i.MemTotal)}`);
  add(` Name: ${i.Name}`);
  add(` ID: ${i.ID}`);
  add(` Docker Root Dir: ${i.DockerRootDir}`);
  add(` Debug Mode: ${i.Debug}`);
  if (i.Debug) {
    add(`  File Descriptors: ${i.NFd}`);
    add(`  Goroutines: ${i.NGoroutines}`);
    add(`  System Time: ${i.SystemTime}`);
    add(`  EventsListeners: ${i.NEventsListener}`);
  }
  for (const [k, v] of [
    ["HTTP Proxy", i.HttpProxy],
    ["HTTPS Proxy", i.HttpsProxy],
    ["No Proxy", i.NoProxy],
  ])
    if (v) add(` ${k}: ${v}`);
  add(` Experimental: ${i.ExperimentalBuild}`);
  const insecure = (i.RegistryConfig?.InsecureRegistryCIDRs ?? []) as string[];
  if (insecure.length) {
    add(` Insecure Registries:`);
    for (const c of insecure) add(`  ${c}`);
  }
  add(` Live Restore Enabled: ${i.LiveRestoreEnabled}`);
  const plugins = (i.BunkerPlugins ?? []) as { Type: string; ID: string; Status: string; Reason: string }[];
  if (plugins.length) {
    add(` Bunker Plugins:`);
    for (const p of plugins) add(`  ${p.Type}.${p.ID}: ${p.Status}${p.Reason ? ` (${p.Reason})` : ""}`);
  }
  return lines.join("\n") + "\n\n";
}

function list(xs: string[] | null | undefined): string {
  return " " + (xs ?? []).join(" ");
}

/** Run the command; returns the exit code. */
export async function infoCommand(ctx: CliContext, opts: { format?: string }): Promise<number> {
  const client = { Version: VERSION, Context: "default", Debug: !!ctx.flags.debug, Plugins: [] as unknown[] };
  let info: Info | undefined;
  let error: unknown;
  try {
    info = await ctx.client().json<Info>("GET", "/info");
  } catch (err) {
    error = err;
  }
  if (opts.format) {
    ctx.out(renderFormat(opts.format, { ...(info ?? {}), ClientInfo: client }) + "\n");
  } else {
    ctx.out(`Client:\n Version:    ${client.Version}\n Context:    ${client.Context}\n Debug Mode: ${client.Debug}\n\n`);
    if (info) {
      ctx.out(renderServerInfo(info));
      // docker prints server warnings on stderr
      if ((info.Warnings as string[] | undefined)?.length) ctx.err((info.Warnings as string[]).join("\n") + "\n");
    }
  }
  if (error) throw error;
  return 0;
}
