/**
 * `bunker version`: client and server versions in docker's layout, or `--format`.
 */
import { formatAnsiC, renderFormat, tabwrite } from "../output.ts";
import type { CliContext } from "../context.ts";
import { API_VERSION, BUILD_TIME, GIT_COMMIT, goArch, VERSION } from "../../core/version.ts";

interface ServerVersion {
  Platform?: { Name?: string };
  Components?: { Name: string; Version: string; Details?: Record<string, string> }[];
}

/** Client half of the version document. */
export function clientVersion(apiVersion: string) {
  return {
    Platform: { Name: "" },
    Version: VERSION,
    ApiVersion: apiVersion,
    DefaultAPIVersion: API_VERSION,
    GitCommit: GIT_COMMIT,
    GoVersion: `bun${Bun.version}`,
    Os: "linux",
    Arch: goArch(),
    BuildTime: formatAnsiC(BUILD_TIME),
    Context: "default",
  };
}

/** Render the human layout docker uses (cli/command/system/version.go). */
export function renderVersion(client: ReturnType<typeof clientVersion>, server?: ServerVersion): string {
  let s = `Client:${client.Platform.Name ? " " + client.Platform.Name : ""}\n`;
  s += ` Version:\t${client.Version}\n`;
  s += ` API version:\t${client.ApiVersion}${client.ApiVersion !== client.DefaultAPIVersion ? ` (downgraded from ${client.DefaultAPIVersion})` : ""}\n`;
  s += ` Go version:\t${client.GoVersion}\n Git commit:\t${client.GitCommit}\n Built:\t${client.BuildTime}\n`;
  s += ` OS/Arch:\t${client.Os}/${client.Arch}\n Context:\t${client.Context}\n`;
  if (server) {
    s += `\nServer:${server.Platform?.Name ? " " + server.Platform.Name : ""}\n`;
    for (const c of server.Components ?? []) {
      const d = c.Details ?? {};
      s += ` ${c.Name}:\n`;
      if (c.Name === "Engine") {
        s += `  Version:\t${c.Version}\n  API version:\t${d.ApiVersion} (minimum version ${d.MinAPIVersion})\n`;
        s += `  Go version:\t${d.GoVersion}\n  Git commit:\t${d.GitCommit}\n  Built:\t${d.BuildTime}\n`;
        s += `  OS/Arch:\t${d.Os}/${d.Arch}\n  Experimental:\t${d.Experimental}\n`;
      } else {
        s += `  Version:\t${c.Version}\n`;
        for (const k of Object.keys(d).sort()) s += `  ${k}:\t${d[k]}\n`;
      }
    }
  }
  return tabwrite(s);
}

/** Run the command; returns the exit code. */
export async function versionCommand(ctx: CliContext, opts: { format?: string }): Promise<number> {
  const client = ctx.client();
  let server: ServerVersion | undefined;
  let error: unknown;
  try {
    server = await client.json<ServerVersion>("GET", "/version");
    // As docker does, show the engine's build time in time.ANSIC (in --format output too).
    const engine = server.Components?.find((c) => c.Name === "Engine");
    if (engine?.Details?.BuildTime) engine.Details.BuildTime = formatAnsiC(engine.Details.BuildTime);
  } catch (err) {
    error = err;
  }
  const cv = clientVersion(client.apiVersion);
  if (opts.format) ctx.out(renderFormat(opts.format, { Client: cv, Server: server ?? null }) + "\n");
  else ctx.out(renderVersion(cv, server));
  if (error) throw error;
  return 0;
}
