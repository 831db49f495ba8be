/**
 * The `bunker` command line: docker's commands and flags, built with cac. Each command's work is
 * in `commands/<name>.ts`, imported only when that command runs, so a client command does not
 * evaluate the daemon's modules and the daemon does not evaluate the client's.
 */
import { cac } from "cac";
import { DaemonError } from "../core/client/engine-client.ts";
import { EngineError, messageOf } from "../core/errors.ts";
import type { AnyRegistration } from "../core/plugin/types.ts";
import { GIT_COMMIT, VERSION } from "../core/version.ts";
import { createCliContext, type GlobalFlags } from "./context.ts";

/** docker's two-word commands that map onto one of ours. */
const ALIASES: Record<string, string[]> = {
  "system events": ["events"],
  "system info": ["info"],
};

/** Rewrite `system events` → `events` and the like, leaving flags in place. */
export function applyAliases(argv: string[]): string[] {
  const words = argv.filter((a, i) => !a.startsWith("-") && !isFlagValue(argv, a, i));
  const key = words.slice(0, 2).join(" ");
  const target = ALIASES[key];
  if (!target) return argv;
  const out = [...argv];
  out.splice(out.indexOf(words[0]!), 1);
  out.splice(out.indexOf(words[1]!), 1, ...target);
  return out;
}

/** Run the CLI with `argv` (without the program name); resolves with the exit code. */
export async function runCli(argv: string[], builtins: readonly AnyRegistration[], programName = "bunker"): Promise<number> {
  const cli = cac(programName);
  let result: Promise<number> | undefined;
  const ctxOf = (o: GlobalFlags) => createCliContext(o);

  cli
    .option("-H, --host <host>", "Daemon socket to connect to (or, for `daemon`, to listen on; repeatable)", { type: [String] })
    .option("-D, --debug", "Enable debug mode")
    .option("--tlsverify", "Use TLS and verify the remote");

  cli
    .command("version", "Show the Bunker version information")
    .option("-f, --format <format>", "Format output using a custom template: 'json' or a Go-style template")
    .action((o) => (result = import("./commands/version.ts").then((m) => m.versionCommand(ctxOf(o), o))));

  cli
    .command("info", "Display system-wide information")
    .option("-f, --format <format>", "Format output using a custom template: 'json' or a Go-style template")
    .action((o) => (result = import("./commands/info.ts").then((m) => m.infoCommand(ctxOf(o), o))));

  cli
    .command("events", "Get real time events from the server (also: system events)")
    .option("-f, --filter <filter>", "Filter output based on conditions provided (repeatable)", { type: [String] })
    .option("--format <format>", "Format output using a custom template: 'json' or a Go-style template")
    .option("--since <time>", "Show all events created since timestamp")
    .option("--until <time>", "Stream events until this timestamp")
    .action((o) => (result = import("./commands/events.ts").then((m) => m.eventsCommand(ctxOf(o), o))));

  cli
    .command("daemon", "Run the Bunker daemon (also: the executable invoked as `bunkerd`)")
    .option("--config-file <file>", "Daemon configuration file (default /etc/bunker/daemon.json)")
    .option("--data-root <dir>", "Root directory of persistent state (default /var/lib/bunker)")
    .option("--exec-root <dir>", "Root directory for execution state files (default /run/bunker)")
    .option("--tls", "Use TLS; implied by --tlsverify")
    .option("--tlscacert <file>", "Trust certs signed only by this CA")
    .option("--tlscert <file>", "Path to TLS certificate file")
    .option("--tlskey <file>", "Path to TLS key file")
    .option("-l, --log-level <level>", "Set the logging level (debug, info, warn, error, fatal)")
    .option("--log-format <format>", "Set the logging format (text, json)")
    .option("-p, --pidfile <file>", "Path to use for daemon PID file (default <exec-root>/bunker.pid)")
    .option("-G, --group <group>", "Group for the unix socket (default bunker, when it exists)")
    .option("--plugins-dir <dir>", "Directory of third-party plugin modules to load")
    .option("--plugin-config <kv>", "Plugin config section <type>.<id>=<json> (repeatable)", { type: [String] })
    .option("--required-plugin <key>", "Plugin <type>.<id> that must load (repeatable)", { type: [String] })
    .option("-s, --storage-driver <name>", "Storage driver to use (default: the one holding data, else overlay, btrfs, vfs)")
    .action((o) => (result = import("./commands/daemon.ts").then((m) => m.daemonCommand(o, builtins))));

  cli.option("-v, --version", "Print version information and quit");
  cli.help();

  const args = applyAliases(argv);
  if (args.includes("-v") || args.includes("--version")) {
    process.stdout.write(`Bunker version ${VERSION}, build ${GIT_COMMIT}\n`);
    return 0;
  }
  const command = args.find((a) => !a.startsWith("-"));
  const wantsHelp = args.includes("-h") || args.includes("--help");
  if (command === undefined && !wantsHelp) {
    cli.outputHelp();
    return 0;
  }
  if (command !== undefined && !cli.commands.some((c) => c.isMatched(command)) && !isFlagValue(args, command)) {
    process.stderr.write(`${programName}: '${command}' is not a ${programName} command.\nSee '${programName} --help'\n`);
    return 1;
  }
  try {
    cli.parse(["bun", programName, ...args], { run: true });
  } catch (err) {
    process.stderr.write(`${programName}: ${messageOf(err)}\nSee '${programName} --help'.\n`);
    return 125;
  }
  if (!result) return 0; // help was printed
  try {
    return await result;
  } catch (err) {
    if (err instanceof DaemonError) process.stderr.write(`Error response from daemon: ${err.message}\n`);
    else if (err instanceof EngineError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`${messageOf(err)}\n`);
    return 1;
  }
}

/** True when `word` is the value of a preceding global flag (`-H unix:///x version`). */
function isFlagValue(args: string[], word: string, at = args.indexOf(word)): boolean {
  return at > 0 && (args[at - 1] === "-H" || args[at - 1] === "--host");
}
