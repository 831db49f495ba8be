/**
 * `bunker runtime …` (also the executable invoked as `bunker-runc`): an OCI runtime command line
 * compatible with runc's, so dockerd (`--add-runtime bunker=<path>`), containerd and podman can
 * run containers with Bunker's runtime, and so it can be measured against runc and crun on the
 * same bundle. Global flags come before the command, as runc takes them:
 *   bunker runtime [--root DIR] [--log FILE] [--log-format text|json] [--systemd-cgroup] <command> …
 * Errors go to stderr and, when --log is given, to that file as runc writes them (containerd
 * reads the last error line from it to report "OCI runtime create failed: …").
 */
import { ignored } from "../../core/log.ts";
import { cac } from "cac";
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { EngineError, messageOf } from "../../core/errors.ts";
import { linuxSys } from "../../core/sys/sys.ts";
import { VERSION } from "../../core/version.ts";
import { endOptionsAfterOperand } from "../../core/argv.ts";
import type { CreateOptions } from "./runtime.ts";

/** Global flags shared by every runtime command. */
interface RuntimeGlobals {
  root?: string;
  log?: string;
  logFormat?: string;
  systemdCgroup?: boolean;
  debug?: boolean;
}

const DEFAULT_ROOT = "/run/bunker/runtime";

/** Write an error where runc would: stderr, and the --log file in its format. */
function reportError(g: RuntimeGlobals, err: unknown): void {
  const msg = messageOf(err);
  process.stderr.write(`${msg}\n`);
  if (!g.log) return;
  try {
    const time = new Date().toISOString();
    const line = g.logFormat === "json" ? JSON.stringify({ level: "error", msg, time }) : `time="${time}" level=error msg="${msg.replaceAll('"', '\\"')}"`;
    appendFileSync(g.log, `${line}\n`);
  } catch (err) {
    ignored("the log is best effort; stderr has the message", err);
  }
}

/** `create`/`run` flags as the runtime's create options. */
function createOptions(o: Record<string, unknown>): CreateOptions {
  return {
    bundle: (o.bundle as string | undefined) ?? ".",
    ...(o.pidFile ? { pidFile: o.pidFile as string } : {}),
    ...(o.consoleSocket ? { consoleSocket: o.consoleSocket as string } : {}),
  };
}

/** Forward the usual signals to `pid` while waiting for it, as runc does; returns the undo. */
function forwardSignals(pid: number): () => void {
  const handlers = (["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as NodeJS.Signals[]).map((sig) => {
    const h = () => {
      try {
        process.kill(pid, sig);
      } catch (err) {
        ignored("gone", err);
      }
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  return () => {
    for (const [sig, h] of handlers) process.off(sig, h);
  };
}

/** Flags (of exec and the globals) that take a value. */
const VALUE_FLAGS = new Set(["--root", "--log", "--log-format", "-p", "--process", "--cwd", "-e", "--env", "-u", "--user", "--additional-gids", "--pid-file", "--console-socket", "--cap"]);

/** runc takes everything after `exec <id>` as the command, options included (`exec c1 sh -c x`). */
export function splitExecCommand(argv: string[]): string[] {
  return endOptionsAfterOperand(argv, ["exec"], VALUE_FLAGS);
}

/** The cac instance, the wrapper that runs an action and keeps its result, and the runtime's maker. */
type Cli = ReturnType<typeof cac>;
type Act = (fn: (o: RuntimeGlobals & Record<string, unknown>, ...args: string[]) => Promise<number>) => (...args: unknown[]) => void;
type RuntimeOf = (g: RuntimeGlobals) => Promise<import("./runtime.ts").LinuxRuntime>;

/** `create`, `start` and `run`. */
function lifecycleCommands(cli: Cli, act: Act, runtime: RuntimeOf): void {
  cli
    .command("create <id>", "Create a container (its process waits for `start`)")
    .option("-b, --bundle <dir>", "Path to the bundle (default: the current directory)")
    .option("--pid-file <file>", "Write the init process's pid to this file")
    .option("--console-socket <path>", "Unix socket to receive the pty master of a terminal container")
    .option("--no-pivot", "Accepted for compatibility (pivot_root is always used)")
    .option("--no-new-keyring", "Accepted for compatibility")
    .option("--preserve-fds <n>", "Accepted for compatibility (0 only)")
    .action(
      act(async (o, id) => {
        const rt = await runtime(o);
        await rt.create(id!, createOptions(o));
        return 0;
      }),
    );

  cli.command("start <id>", "Start a created container").action(
    act(async (o, id) => {
      await (await runtime(o)).start(id!);
      return 0;
    }),
  );

  cli
    .command("run <id>", "Create and start a container, then wait for it (unless --detach)")
    .option("-b, --bundle <dir>", "Path to the bundle (default: the current directory)")
    .option("--pid-file <file>", "Write the init process's pid to this file")
    .option("--console-socket <path>", "Unix socket to receive the pty master of a terminal container")
    .option("-d, --detach", "Do not wait for the container to exit")
    .option("--no-pivot", "Accepted for compatibility")
    .option("--no-new-keyring", "Accepted for compatibility")
    .option("--keep", "Keep the container's state after it exits")
    .action(
      act(async (o, id) => {
        const rt = await runtime(o);
        const st = await rt.create(id!, createOptions(o));
        if (o.detach) {
          await rt.start(id!);
          return 0;
        }
        const stop = forwardSignals(st.pid);
        const exited = rt.waitExit(st.pid);
        try {
          await rt.start(id!);
        } catch (err) {
          stop();
          if (!o.keep) await rt.delete(id!, true);
          throw err;
        }
        const code = await exited;
        stop();
        const ooms = rt.oomKills(id!);
        if (ooms > 0) process.stderr.write(`container ${id} was killed for running out of memory (the cgroup's OOM killer ran ${ooms} time${ooms > 1 ? "s" : ""})\n`);
        if (!o.keep) await rt.delete(id!, true);
        return code;
      }),
    );
}

/** `exec`: a command line or a process.json. */
function execCommand(cli: Cli, act: Act, runtime: RuntimeOf): void {
  cli
    .command("exec <id> [...command]", "Run a process in a running container, and wait for it (unless --detach)")
    .option("-p, --process <file>", "A process.json (runtime-spec process) to run instead of the command")
    .option("--cwd <dir>", "Working directory")
    .option("-e, --env <kv>", "Set an environment variable (repeatable)", { type: [String] })
    .option("-u, --user <uid[:gid]>", "Run as this user")
    .option("--additional-gids <gid>", "Additional group (repeatable)", { type: [String] })
    .option("-t, --tty", "Allocate a terminal (not supported yet)")
    .option("-d, --detach", "Do not wait for the process")
    .option("--pid-file <file>", "Write the process's pid to this file")
    .option("--console-socket <path>", "Unix socket for the pty master (with --tty)")
    .option("--no-new-privs", "Set no_new_privs for the process")
    .option("--cap <cap>", "Add a capability (repeatable)", { type: [String] })
    .action(
      act(async (o, id) => {
        const command = (o["--"] as string[] | undefined) ?? [];
        const rt = await runtime(o);
        const { parseProcess } = await import("../../core/runtime/oci.ts");
        let proc;
        if (o.process) proc = parseProcess(await Bun.file(o.process as string).text(), o.process as string);
        else {
          if (command.length === 0) throw new EngineError("invalid-argument", "exec: a command or --process is required");
          const base = rt.processSpec(id!);
          const [uid, gid] = o.user ? String(o.user).split(":").map(Number) : [base.user.uid, base.user.gid];
          const caps = o.cap as string[] | undefined;
          proc = {
            ...base,
            args: command,
            terminal: !!o.tty,
            cwd: (o.cwd as string) ?? base.cwd,
            env: [...(base.env ?? []), ...((o.env as string[]) ?? [])],
            user: { ...base.user, uid: uid!, gid: gid ?? base.user.gid, ...(o.additionalGids ? { additionalGids: (o.additionalGids as string[]).map(Number) } : {}) },
            ...(o.noNewPrivs ? { noNewPrivileges: true } : {}),
            ...(caps?.length && base.capabilities
              ? { capabilities: Object.fromEntries(Object.entries(base.capabilities as Record<string, string[] | undefined>).map(([k, v]) => [k, k === "ambient" ? v : [...new Set([...(v ?? []), ...caps])]])) }
              : {}),
          };
        }
        const { pid, waitPid } = await rt.exec(id!, proc, { ...(o.detach ? { detach: true } : {}), ...(o.pidFile ? { pidFile: o.pidFile as string } : {}), ...(o.consoleSocket ? { consoleSocket: o.consoleSocket as string } : {}) });
        if (o.detach) return 0;
        const stop = forwardSignals(pid);
        const code = await rt.waitExit(waitPid);
        stop();
        return code;
      }),
    );
}

/** `state`, `kill`, `pause`, `resume`, `ps`, `delete`, `list`. */
function stateCommands(cli: Cli, act: Act, runtime: RuntimeOf): void {
  cli.command("state <id>", "Print the state of a container (runc's JSON)").action(
    act(async (o, id) => {
      process.stdout.write(`${JSON.stringify((await runtime(o)).state(id!), null, 2)}\n`);
      return 0;
    }),
  );

  cli
    .command("kill <id> [signal]", "Send a signal (default SIGTERM) to the container's init process")
    .option("-a, --all", "Send the signal to all processes of the container")
    .action(
      act(async (o, id, signal) => {
        (await runtime(o)).kill(id!, signal ?? "SIGTERM", !!o.all);
        return 0;
      }),
    );

  cli.command("pause <id>", "Suspend every process of the container (cgroup freezer)").action(
    act(async (o, id) => {
      (await runtime(o)).pause(id!);
      return 0;
    }),
  );

  cli.command("resume <id>", "Resume a paused container").action(
    act(async (o, id) => {
      (await runtime(o)).resume(id!);
      return 0;
    }),
  );

  cli
    .command("ps <id>", "List the container's processes")
    .option("-f, --format <format>", "table (default) or json")
    .action(
      act(async (o, id) => {
        const pids = (await runtime(o)).ps(id!);
        if (o.format === "json") process.stdout.write(`${JSON.stringify(pids)}\n`);
        else {
          const r = Bun.spawnSync(["ps", "-o", "uid,pid,ppid,c,stime,tty,time,cmd", "-p", pids.join(",") || "0"]);
          process.stdout.write(r.stdout);
        }
        return 0;
      }),
    );

  cli
    .command("delete <id>", "Delete a stopped container (or, with --force, any)")
    .option("-f, --force", "Kill the container first if it is running")
    .action(
      act(async (o, id) => {
        const rt = await runtime(o);
        try {
          await rt.delete(id!, !!o.force);
        } catch (err) {
          // runc: deleting a container that does not exist is fine with --force.
          if (o.force && err instanceof EngineError && err.code === "not-found") return 0;
          throw err;
        }
        return 0;
      }),
    );

  cli
    .command("list", "List containers")
    .option("-q, --quiet", "Print only the ids")
    .option("-f, --format <format>", "table (default) or json")
    .action(
      act(async (o) => {
        const all = (await runtime(o)).list();
        if (o.quiet) process.stdout.write(all.map((c) => `${c.id}\n`).join(""));
        else if (o.format === "json") process.stdout.write(`${JSON.stringify(all)}\n`);
        else {
          const rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], ...all.map((c) => [c.id, String(c.pid), c.status, c.bundle, c.created, c.owner || "root"])];
          const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
          process.stdout.write(rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]! + 3) : c)).join("")).join("\n") + "\n");
        }
        return 0;
      }),
    );
}

/** `spec` and `features`. */
function specCommands(cli: Cli, act: Act): void {
  cli
    .command("spec", "Write a default config.json into the bundle directory")
    .option("-b, --bundle <dir>", "Bundle directory (default: the current directory)")
    .option("--rootless", "A spec for a rootless container (with a user namespace)")
    .action(
      act(async (o) => {
        const { defaultSpec } = await import("./default-spec.ts");
        const file = join(resolve((o.bundle as string) ?? "."), "config.json");
        if (existsSync(file)) throw new EngineError("already-exists", `File ${file} exists. Remove it first`);
        const spec = defaultSpec(o.rootless ? { rootless: true, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 } : {});
        mkdirSync(resolve((o.bundle as string) ?? "."), { recursive: true });
        writeFileSync(file, `${JSON.stringify(spec, null, "\t")}\n`);
        return 0;
      }),
    );

  cli.command("features", "Show what this runtime supports (runtime-spec features JSON)").action(
    act(async () => {
      const { runtimeFeatures } = await import("./features.ts");
      process.stdout.write(`${JSON.stringify(runtimeFeatures(), null, 2)}\n`);
      return 0;
    }),
  );
}

/** Run the runtime CLI with `argv` (after `runtime`); resolves with the exit code. */
export async function runRuntimeCli(argv: string[], programName = "bunker runtime"): Promise<number> {
  const cli = cac(programName);
  let result: Promise<number> | undefined;
  let globals: RuntimeGlobals = {};
  const runtime = async (g: RuntimeGlobals) => {
    globals = g;
    const { LinuxRuntime } = await import("./runtime.ts");
    return new LinuxRuntime(linuxSys(), resolve(g.root ?? DEFAULT_ROOT));
  };
  const act =
    (fn: (o: RuntimeGlobals & Record<string, unknown>, ...args: string[]) => Promise<number>) =>
    (...args: unknown[]) => {
      const o = args.at(-1) as RuntimeGlobals & Record<string, unknown>;
      globals = o;
      result = fn(o, ...(args.slice(0, -1) as string[]));
    };

  cli
    .option("--root <dir>", `Root directory for container state (default ${DEFAULT_ROOT})`)
    .option("--log <file>", "Write errors (and, with --debug, more) to this file")
    .option("--log-format <format>", "Log format: text (default) or json")
    .option("--systemd-cgroup", "Accepted for compatibility; cgroups are managed through cgroupfs")
    .option("--debug", "Enable debug output");

  lifecycleCommands(cli, act, runtime);
  execCommand(cli, act, runtime);
  stateCommands(cli, act, runtime);
  specCommands(cli, act);

  cli.help();
  cli.version(VERSION);
  argv = splitExecCommand(argv);
  const command = argv.find((a, i) => !a.startsWith("-") && !["--root", "--log", "--log-format"].includes(argv[i - 1] ?? ""));
  if (command === undefined && !argv.includes("-h") && !argv.includes("--help") && !argv.includes("-v") && !argv.includes("--version")) {
    cli.outputHelp();
    return 0;
  }
  try {
    cli.parse(["bun", programName, ...argv], { run: true });
  } catch (err) {
    reportError(globals, err);
    return 1;
  }
  if (!result) {
    if (command !== undefined && !cli.commands.some((c) => c.isMatched(command))) {
      reportError(globals, new Error(`${programName}: '${command}' is not a runtime command`));
      return 1;
    }
    return 0;
  }
  try {
    return await result;
  } catch (err) {
    reportError(globals, err);
    return 1;
  }
}
