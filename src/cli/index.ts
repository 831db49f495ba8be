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
import { endOptionsAfterOperand } from "../core/argv.ts";
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
  const r: Registrar = { cli, set: (p) => (result = p), ctxOf: (o) => createCliContext(o) };

  cli
    .option("-H, --host <host>", "Daemon socket to connect to (or, for `daemon`, to listen on; repeatable)", { type: [String] })
    .option("-D, --debug", "Enable debug mode")
    .option("--tlsverify", "Use TLS and verify the remote");

  systemCommands(r, builtins);
  containerLifecycleCommands(r);
  containerCommands(r);
  imageCommands(r);

  cli.help();

  const args = stopAtOperand(applyAliases(argv));
  const firstWord = args.find((a) => !a.startsWith("-"));
  const beforeCommand = firstWord === undefined ? args : args.slice(0, args.indexOf(firstWord));
  // `-v` is run's --volume after a command, so only before one; `--version` anywhere.
  if (beforeCommand.includes("-v") || args.includes("--version")) {
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

/** Flags of run/create/exec that take a value (so the operand after them is not the image). */
const VALUE_FLAGS = new Set([
  "-H",
  "--host",
  "--name",
  "-e",
  "--env",
  "--env-file",
  "-v",
  "--volume",
  "--mount",
  "--tmpfs",
  "-w",
  "--workdir",
  "-u",
  "--user",
  "--entrypoint",
  "--restart",
  "-m",
  "--memory",
  "--memory-swap",
  "--cpus",
  "-c",
  "--cpu-shares",
  "--cpuset-cpus",
  "--pids-limit",
  "--ulimit",
  "--cap-add",
  "--cap-drop",
  "--security-opt",
  "--hostname",
  "--add-host",
  "--dns",
  "--group-add",
  "-l",
  "--label",
  "--network",
  "--log-driver",
  "--log-opt",
  "--stop-signal",
  "--stop-timeout",
  "--expose",
  "--pull",
  "-p",
  "--publish",
  "--ip",
  "--ip6",
  "--network-alias",
  "--link",
]);

/** docker stops reading its own flags at the image (run, create) or the container (exec). */
export function stopAtOperand(argv: string[]): string[] {
  return endOptionsAfterOperand(argv, ["run", "create", "exec"], VALUE_FLAGS);
}

/** True when `word` is the value of a preceding global flag (`-H unix:///x version`). */
function isFlagValue(args: string[], word: string, at = args.indexOf(word)): boolean {
  return at > 0 && (args[at - 1] === "-H" || args[at - 1] === "--host");
}

/** What the command registrations share: the cac instance, where an action puts its result, the client context. */
interface Registrar {
  cli: ReturnType<typeof cac>;
  set: (p: Promise<number>) => Promise<number>;
  ctxOf: (o: GlobalFlags) => ReturnType<typeof createCliContext>;
}

/** The container commands' module, loaded when one runs. */
const C = () => import("./commands/containers.ts");

/** The flags of `run` and `create`. */
const runFlags = (cmd: ReturnType<ReturnType<typeof cac>["command"]>) =>
  cmd
    .option("-d, --detach", "Run container in background and print container ID")
    .option("-i, --interactive", "Keep STDIN open even if not attached")
    .option("-t, --tty", "Allocate a pseudo-TTY")
    .option("--rm", "Automatically remove the container and its associated anonymous volumes when it exits")
    .option("--name <name>", "Assign a name to the container")
    .option("-e, --env <kv>", "Set environment variables", { type: [String] })
    .option("--env-file <file>", "Read in a file of environment variables", { type: [String] })
    .option("-v, --volume <spec>", "Bind mount a volume", { type: [String] })
    .option("--mount <spec>", "Attach a filesystem mount to the container", { type: [String] })
    .option("--tmpfs <spec>", "Mount a tmpfs directory", { type: [String] })
    .option("-w, --workdir <dir>", "Working directory inside the container")
    .option("-u, --user <user>", "Username or UID (format: <name|uid>[:<group|gid>])")
    .option("--entrypoint <cmd>", "Overwrite the default ENTRYPOINT of the image")
    .option("--restart <policy>", "Restart policy to apply when a container exits")
    .option("-m, --memory <bytes>", "Memory limit")
    .option("--memory-swap <bytes>", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
    .option("--cpus <n>", "Number of CPUs")
    .option("-c, --cpu-shares <n>", "CPU shares (relative weight)")
    .option("--cpuset-cpus <list>", "CPUs in which to allow execution (0-3, 0,1)")
    .option("--pids-limit <n>", "Tune container pids limit (set -1 for unlimited)")
    .option("--ulimit <spec>", "Ulimit options", { type: [String] })
    .option("--cap-add <cap>", "Add Linux capabilities", { type: [String] })
    .option("--cap-drop <cap>", "Drop Linux capabilities", { type: [String] })
    .option("--privileged", "Give extended privileges to this container")
    .option("--security-opt <opt>", "Security Options", { type: [String] })
    .option("--read-only", "Mount the container's root filesystem as read only")
    .option("--hostname <name>", "Container host name")
    .option("--add-host <host:ip>", "Add a custom host-to-IP mapping", { type: [String] })
    .option("--dns <ip>", "Set custom DNS servers", { type: [String] })
    .option("--group-add <group>", "Add additional groups to join", { type: [String] })
    .option("-l, --label <kv>", "Set meta data on a container", { type: [String] })
    .option("--network <net>", "Connect a container to a network")
    .option("--network-alias <alias>", "Add network-scoped alias for the container", { type: [String] })
    .option("--ip <ip>", "IPv4 address (e.g., 172.30.100.104)")
    .option("--ip6 <ip>", "IPv6 address (e.g., 2001:db8::33)")
    .option("-p, --publish <spec>", "Publish a container's port(s) to the host", { type: [String] })
    .option("-P, --publish-all", "Publish all exposed ports to random ports")
    .option("--link <name:alias>", "Add link to another container", { type: [String] })
    .option("--log-driver <driver>", "Logging driver for the container")
    .option("--log-opt <kv>", "Log driver options", { type: [String] })
    .option("--stop-signal <sig>", "Signal to stop the container")
    .option("--stop-timeout <s>", "Timeout (in seconds) to stop a container")
    .option("--expose <port>", "Expose a port or a range of ports", { type: [String] })
    .option("--init", "Run an init inside the container that forwards signals and reaps processes")
    .option("--pull <policy>", 'Pull image before running ("always", "missing", "never")');

/** version, info, events, daemon. */
function systemCommands({ cli, set, ctxOf }: Registrar, builtins: readonly AnyRegistration[]): void {
  cli
    .command("version", "Show the Bunker version information")
    .option("-f, --format <format>", "Format output using a custom template: 'json' or a Go-style template")
    .action((o) => set(import("./commands/version.ts").then((m) => m.versionCommand(ctxOf(o), o))));

  cli
    .command("info", "Display system-wide information")
    .option("-f, --format <format>", "Format output using a custom template: 'json' or a Go-style template")
    .action((o) => set(import("./commands/info.ts").then((m) => m.infoCommand(ctxOf(o), o))));

  cli
    .command("events", "Get real time events from the server (also: system events)")
    .option("-f, --filter <filter>", "Filter output based on conditions provided (repeatable)", { type: [String] })
    .option("--format <format>", "Format output using a custom template: 'json' or a Go-style template")
    .option("--since <time>", "Show all events created since timestamp")
    .option("--until <time>", "Stream events until this timestamp")
    .action((o) => set(import("./commands/events.ts").then((m) => m.eventsCommand(ctxOf(o), o))));

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
    .option("--docker-plugin-dir <dir>", "Where Docker-protocol plugins are discovered (repeatable)", { type: [String] })
    .option("--docker-plugin-timeout <seconds>", "How long to wait for a Docker-protocol plugin (default 30)")
    .option("--dns <ip>", "DNS server for containers, and upstream of the embedded DNS (repeatable)", { type: [String] })
    .option("-b, --bridge <name>", "Interface of the default bridge network ('none': no default bridge)")
    .option("--bip <cidr>", "The default bridge's address and subnet, e.g. 172.26.0.1/16")
    .option("--ipv6 [bool]", "IPv6 on the default bridge network")
    .option("--fixed-cidr-v6 <cidr>", "The default bridge's IPv6 subnet")
    .option("--iptables [bool]", "Install nf_tables rules for bridge networks (default true; --iptables=false to leave the firewall alone)")
    .option("--ip-forward [bool]", "Turn on IPv4 forwarding (default true)")
    .option("--default-address-pool <pool>", "Pool for new networks: base=<CIDR>,size=<prefix> (repeatable)", { type: [String] })
    .option("--insecure-registry <host>", "Registry reachable over plain HTTP or unverified TLS (repeatable)", { type: [String] })
    .option("--registry-mirror <url>", "Docker Hub mirror (repeatable)", { type: [String] })
    .option("--registry-certs-dir <dir>", "Per-registry CA and client certificates (default /etc/bunker/certs.d)")
    .option("--registry-stall-timeout <seconds>", "Seconds without data before a registry transfer resumes (default 30)")
    .option("--registry-addr <host:port>", "Serve a registry in the daemon on this address")
    .option("--log-driver <name>", "Default log driver of containers: json-file, local, none")
    .option("--log-opt <kv>", "Default log driver option key=value (repeatable)", { type: [String] })
    .option("--exec-opt <opt>", "Runtime execution option: native.cgroupdriver=cgroupfs|systemd (repeatable)", { type: [String] })
    .action((o) => set(import("./commands/daemon.ts").then((m) => m.daemonCommand(o, builtins))));
}

/** run, create, start, stop, restart, kill, rm, pause, unpause, wait, rename, top. */
function containerLifecycleCommands({ cli, set, ctxOf }: Registrar): void {
  runFlags(cli.command("run <image> [...command]", "Create and run a new container from an image")).action((image: string, command: string[], o) => set(C().then((m) => m.runCommand(ctxOf(o), o, image, [...command, ...(o["--"] ?? [])]))));
  runFlags(cli.command("create <image> [...command]", "Create a new container")).action((image: string, command: string[], o) => set(C().then((m) => m.createCommand(ctxOf(o), o, image, [...command, ...(o["--"] ?? [])]))));
  cli
    .command("start [...containers]", "Start one or more stopped containers")
    .option("-a, --attach", "Attach STDOUT/STDERR and forward signals")
    .option("-i, --interactive", "Attach container's STDIN")
    .action((names: string[], o) => set(C().then((m) => m.startCommand(ctxOf(o), o, names))));
  cli
    .command("stop [...containers]", "Stop one or more running containers")
    .option("-t, --time <s>", "Seconds to wait before killing the container")
    .option("-s, --signal <sig>", "Signal to send to the container")
    .action((names: string[], o) => set(C().then((m) => m.stopCommand(ctxOf(o), o, names))));
  cli
    .command("restart [...containers]", "Restart one or more containers")
    .option("-t, --time <s>", "Seconds to wait before killing the container")
    .action((names: string[], o) => set(C().then((m) => m.restartCommand(ctxOf(o), o, names))));
  cli
    .command("kill [...containers]", "Kill one or more running containers")
    .option("-s, --signal <sig>", "Signal to send to the container")
    .action((names: string[], o) => set(C().then((m) => m.killCommand(ctxOf(o), o, names))));
  cli
    .command("rm [...containers]", "Remove one or more containers")
    .option("-f, --force", "Force the removal of a running container (uses SIGKILL)")
    .option("-v, --volumes", "Remove anonymous volumes associated with the container")
    .action((names: string[], o) => set(C().then((m) => m.rmCommand(ctxOf(o), o, names))));
  cli.command("pause [...containers]", "Pause all processes within one or more containers").action((names: string[], o) => set(C().then((m) => m.pauseCommand(ctxOf(o), names, true))));
  cli.command("unpause [...containers]", "Unpause all processes within one or more containers").action((names: string[], o) => set(C().then((m) => m.pauseCommand(ctxOf(o), names, false))));
  cli.command("wait [...containers]", "Block until one or more containers stop, then print their exit codes").action((names: string[], o) => set(C().then((m) => m.waitCommand(ctxOf(o), names))));
  cli.command("rename <container> <name>", "Rename a container").action((from: string, to: string, o) => set(C().then((m) => m.renameCommand(ctxOf(o), from, to))));
  cli.command("top <container>", "Display the running processes of a container").action((name: string, o) => set(C().then((m) => m.topCommand(ctxOf(o), name))));
}

/** ps, logs, exec, inspect, attach, cp, commit, diff, export, update, stats, volume, port, network. */
function containerCommands({ cli, set, ctxOf }: Registrar): void {
  cli
    .command("ps", "List containers")
    .option("-a, --all", "Show all containers (default shows just running)")
    .option("-q, --quiet", "Only display container IDs")
    .option("-f, --filter <filter>", "Filter output based on conditions provided", { type: [String] })
    .option("--format <format>", "Format output using a custom template")
    .option("-n, --last <n>", "Show n last created containers")
    .option("--no-trunc", "Don't truncate output")
    .action((o) => set(C().then((m) => m.psCommand(ctxOf(o), o))));
  cli
    .command("logs <container>", "Fetch the logs of a container")
    .option("-f, --follow", "Follow log output")
    .option("-n, --tail <n>", "Number of lines to show from the end of the logs")
    .option("-t, --timestamps", "Show timestamps")
    .option("--since <time>", "Show logs since timestamp or relative")
    .option("--until <time>", "Show logs before a timestamp or relative")
    .action((name: string, o) => set(C().then((m) => m.logsCommand(ctxOf(o), o, name))));
  cli
    .command("exec <container> [...command]", "Execute a command in a running container")
    .option("-d, --detach", "Detached mode: run command in the background")
    .option("-i, --interactive", "Keep STDIN open even if not attached")
    .option("-t, --tty", "Allocate a pseudo-TTY")
    .option("-e, --env <kv>", "Set environment variables", { type: [String] })
    .option("-u, --user <user>", "Username or UID")
    .option("-w, --workdir <dir>", "Working directory inside the container")
    .option("--privileged", "Give extended privileges to the command")
    .action((name: string, command: string[], o) => set(C().then((m) => m.execCommand(ctxOf(o), o, name, [...command, ...(o["--"] ?? [])]))));
  cli
    .command("inspect [...objects]", "Return low-level information on containers and volumes")
    .option("-f, --format <format>", "Format output using a custom template")
    .action((names: string[], o) => set(C().then((m) => m.inspectCommand(ctxOf(o), o, names))));
  cli
    .command("attach <container>", "Attach local standard input, output, and error streams to a running container")
    .option("--no-stdin", "Do not attach STDIN")
    .option("--detach-keys <keys>", "Override the key sequence for detaching a container")
    .action((name: string, o) => set(C().then((m) => m.attachCommand(ctxOf(o), o, name))));
  cli.command("cp <src> <dst>", "Copy files/folders between a container and the local filesystem").action((src: string, dst: string, o) => set(C().then((m) => m.cpCommand(ctxOf(o), src, dst))));
  cli
    .command("commit <container> [repository]", "Create a new image from a container's changes")
    .option("-a, --author <author>", "Author")
    .option("-c, --change <change>", "Apply Dockerfile instruction to the created image", { type: [String] })
    .option("-m, --message <message>", "Commit message")
    .option("--no-pause", "Do not pause the container during commit")
    .action((name: string, ref: string | undefined, o) => set(C().then((m) => m.commitCommand(ctxOf(o), o, name, ref))));
  cli.command("diff <container>", "Inspect changes to files or directories on a container's filesystem").action((name: string, o) => set(C().then((m) => m.diffCommand(ctxOf(o), name))));
  cli
    .command("export <container>", "Export a container's filesystem as a tar archive")
    .option("-o, --output <file>", "Write to a file, instead of STDOUT")
    .action((name: string, o) => set(C().then((m) => m.exportCommand(ctxOf(o), o, name))));
  cli
    .command("update [...containers]", "Update configuration of one or more containers")
    .option("-m, --memory <bytes>", "Memory limit")
    .option("--memory-swap <bytes>", "Swap limit equal to memory plus swap")
    .option("--cpus <n>", "Number of CPUs")
    .option("-c, --cpu-shares <n>", "CPU shares (relative weight)")
    .option("--cpuset-cpus <list>", "CPUs in which to allow execution")
    .option("--pids-limit <n>", "Tune container pids limit")
    .option("--restart <policy>", "Restart policy to apply when a container exits")
    .action((names: string[], o) => set(C().then((m) => m.updateCommand(ctxOf(o), o, names))));
  cli
    .command("stats [...containers]", "Display a snapshot of containers' resource usage (--no-stream)")
    .option("--no-stream", "Disable streaming stats and only pull the first result (the only mode of this client)")
    .action((names: string[], o) => set(C().then((m) => m.statsCommand(ctxOf(o), names))));
  cli
    .command("volume <command> [...names]", "Manage volumes: create, ls, rm, inspect, prune")
    .option("-q, --quiet", "Only display volume names")
    .option("-f, --force", "Force the removal")
    .option("-d, --driver <name>", "Specify volume driver name")
    .option("--label <kv>", "Set metadata for a volume", { type: [String] })
    .action((sub: string, names: string[], o) => set(C().then((m) => m.volumeCommand(ctxOf(o), o, sub, names))));

  cli.command("port <container> [port]", "List port mappings or a specific mapping for the container").action((name: string, port: string | undefined, o) => set(C().then((m) => m.portCommand(ctxOf(o), name, port))));
  cli
    .command("network <command> [...args]", "Manage networks: create, ls, inspect, rm, connect, disconnect, prune")
    .option("-d, --driver <name>", "Driver to manage the network")
    .option("--ipam-driver <name>", "IP Address Management Driver")
    .option("--subnet <cidr>", "Subnet in CIDR format", { type: [String] })
    .option("--gateway <ip>", "IPv4 gateway for the subnet", { type: [String] })
    .option("--ip-range <cidr>", "Allocate container IPs from a sub-range", { type: [String] })
    .option("--aux-address <name=ip>", "Auxiliary IPv4 addresses used by the network driver", { type: [String] })
    .option("--internal", "Restrict external access to the network")
    .option("--attachable", "Enable manual container attachment")
    .option("-o, --opt <kv>", "Set driver specific options", { type: [String] })
    .option("--label <kv>", "Set metadata on a network", { type: [String] })
    .option("--ip <ip>", "IPv4 address (connect)")
    .option("--ip6 <ip>", "IPv6 address (connect)")
    .option("--ipv6", "Enable or disable IPv6 networking")
    .option("--alias <alias>", "Add network-scoped alias for the container (connect)", { type: [String] })
    .option("-q, --quiet", "Only display network IDs")
    .option("-f, --force", "Do not prompt / force the disconnection")
    .option("--format <format>", "Format output using a custom template")
    .action((sub: string, args: string[], o) => set(import("./commands/networks.ts").then((m) => m.networkCommand(ctxOf(o), o, sub, args))));
}

/** images, tag, rmi, load, save, build, pull, push, login, logout, search, registry. */
function imageCommands({ cli, set, ctxOf }: Registrar): void {
  const I = () => import("./commands/images.ts");
  cli
    .command("images", "List images")
    .option("-q, --quiet", "Only show image IDs")
    .action((o) => set(I().then((m) => m.imagesCommand(ctxOf(o), o))));
  cli.command("tag <source> <target>", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE").action((a: string, b: string, o) => set(I().then((m) => m.tagCommand(ctxOf(o), a, b))));
  cli
    .command("rmi [...images]", "Remove one or more images")
    .option("-f, --force", "Force removal of the image")
    .action((names: string[], o) => set(I().then((m) => m.rmiCommand(ctxOf(o), o, names))));
  cli
    .command("load", "Load an image from a tar archive or STDIN")
    .option("-i, --input <file>", "Read from tar archive file, instead of STDIN")
    .action((o) => set(I().then((m) => m.loadCommand(ctxOf(o), o))));
  cli
    .command("save [...images]", "Save one or more images to a tar archive (streamed to STDOUT by default)")
    .option("-o, --output <file>", "Write to a file, instead of STDOUT")
    .action((names: string[], o) => set(I().then((m) => m.saveCommand(ctxOf(o), o, names))));
  cli
    .command("build <path>", "Build an image from a Dockerfile (the classic builder)")
    .option("-t, --tag <name>", "Name and optionally a tag (name:tag); repeatable", { type: [String] })
    .option("-f, --file <file>", "Name of the Dockerfile (default: PATH/Dockerfile)")
    .option("--build-arg <kv>", "Set build-time variables", { type: [String] })
    .option("--label <kv>", "Set metadata for an image", { type: [String] })
    .option("--target <stage>", "Set the target build stage to build")
    .option("--no-cache", "Do not use cache when building the image")
    .option("--pull", "Always attempt to pull a newer version of the image")
    .option("-q, --quiet", "Suppress the build output and print image ID on success")
    .option("--iidfile <file>", "Write the image ID to the file")
    .option("--network <mode>", "Set the networking mode for the RUN instructions during build")
    .action((path: string, o) => set(import("./commands/build.ts").then((m) => m.buildCommand(ctxOf(o), o, path))));
  const D = () => import("./commands/distribution.ts");
  cli
    .command("pull <image>", "Download an image from a registry")
    .option("--platform <platform>", "Set platform if server is multi-platform capable")
    .action((name: string, o) => set(D().then((m) => m.pullCommand(ctxOf(o), o, name))));
  cli.command("push <image>", "Upload an image to a registry").action((name: string, o) => set(D().then((m) => m.pushCommand(ctxOf(o), name))));
  cli
    .command("login [server]", "Authenticate to a registry")
    .option("-u, --username <name>", "Username")
    .option("-p, --password <password>", "Password")
    .option("--password-stdin", "Take the password from stdin")
    .action((server: string | undefined, o) => set(D().then((m) => m.loginCommand(ctxOf(o), o, server))));
  cli.command("logout [server]", "Log out from a registry").action((server: string | undefined, o) => set(D().then((m) => m.logoutCommand(ctxOf(o), server))));
  cli
    .command("search <term>", "Search a registry's catalog (host/term)")
    .option("--limit <n>", "Max number of search results")
    .action((term: string, o) => set(D().then((m) => m.searchCommand(ctxOf(o), o, term))));
  cli
    .command("registry <command>", "Run the image registry server (serve) or collect its garbage (gc)")
    .option("--addr <host:port>", "Address to listen on (default 127.0.0.1:5000)")
    .option("--root <dir>", "Storage directory (default /var/lib/bunker-registry)")
    .option("--htpasswd <file>", "Require Basic authentication from this htpasswd file (bcrypt)")
    .option("--tls-cert <file>", "TLS certificate")
    .option("--tls-key <file>", "TLS key")
    .option("--config <file>", "JSON config file (addr, root, htpasswd, tls.cert, tls.key)")
    .option("--delete-untagged", "gc: delete manifests no tag reaches first")
    .action((sub: string, o) => set(import("./commands/registry.ts").then((m) => m.registryCommand(o, sub))));
  // -v/--version is handled before parsing (below): as a cac option it would take run's -v (volume).
}
