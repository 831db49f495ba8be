/**
 * `bunker daemon` (or the executable invoked as `bunkerd`): resolve config, start the daemon,
 * handle SIGTERM/SIGINT (clean shutdown) and SIGHUP (reload).
 */
import { type DaemonFlags, resolveDaemonConfig } from "../../core/daemon/config.ts";
import { Daemon } from "../../core/daemon/daemon.ts";
import { invalidArgument, messageOf } from "../../core/errors.ts";
import { createLogger, type LogLevel } from "../../core/log.ts";
import type { AnyRegistration } from "../../core/plugin/types.ts";
import { linuxSys } from "../../core/sys/sys.ts";

/** Flags as cac hands them over (camelCase). */
export interface DaemonCliOptions {
  configFile?: string;
  dataRoot?: string;
  execRoot?: string;
  host?: string[];
  tls?: boolean;
  tlsverify?: boolean;
  tlscacert?: string;
  tlscert?: string;
  tlskey?: string;
  debug?: boolean;
  logLevel?: string;
  logFormat?: string;
  pidfile?: string;
  group?: string;
  pluginsDir?: string;
  pluginConfig?: string[];
  requiredPlugin?: string[];
  storageDriver?: string;
}

/** Map CLI options onto daemon.json keys; `--plugin-config key=<json>` fills `plugins`. */
export function daemonFlags(o: DaemonCliOptions): DaemonFlags {
  let plugins: Record<string, unknown> | undefined;
  for (const pc of o.pluginConfig ?? []) {
    const i = pc.indexOf("=");
    if (i <= 0) throw invalidArgument(`--plugin-config ${pc}: expected <type>.<id>=<json>`);
    try {
      (plugins ??= {})[pc.slice(0, i)] = JSON.parse(pc.slice(i + 1));
    } catch (err) {
      throw invalidArgument(`--plugin-config ${pc.slice(0, i)}: invalid JSON: ${messageOf(err)}`);
    }
  }
  const f: Record<string, unknown> = {
    "config-file": o.configFile,
    "data-root": o.dataRoot,
    "exec-root": o.execRoot,
    hosts: o.host?.length ? o.host : undefined,
    tls: o.tls,
    tlsverify: o.tlsverify,
    tlscacert: o.tlscacert,
    tlscert: o.tlscert,
    tlskey: o.tlskey,
    debug: o.debug,
    "log-level": o.logLevel,
    "log-format": o.logFormat,
    pidfile: o.pidfile,
    group: o.group,
    "plugins-dir": o.pluginsDir,
    plugins,
    "required-plugins": o.requiredPlugin?.length ? o.requiredPlugin : undefined,
    "storage-driver": o.storageDriver,
  };
  const repeatable = new Set(["hosts", "required-plugins", "plugins"]);
  // A single-valued flag given twice keeps the last value, as docker's flag parser does.
  const last = (k: string, v: unknown) => (!repeatable.has(k) && Array.isArray(v) ? v.at(-1) : v);
  return Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined).map(([k, v]) => [k, last(k, v)])) as DaemonFlags;
}

/** Run the daemon until a signal stops it. Resolves with the exit code. */
export async function daemonCommand(opts: DaemonCliOptions, builtins: readonly AnyRegistration[]): Promise<number> {
  const log = createLogger({ level: "info" });
  let daemon: Daemon;
  try {
    const config = resolveDaemonConfig(daemonFlags(opts));
    log.configure({ level: config.logLevel as LogLevel, format: config.logFormat });
    daemon = await Daemon.start(config, { builtins, log, sys: linuxSys() });
    // Start-up garbage (config parsing, module loading) is collected before the daemon idles.
    Bun.gc(true);
  } catch (err) {
    log.error(`failed to start daemon: ${messageOf(err)}`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    const shutdown = (signal: string) => {
      log.info("Received signal", { signal });
      void daemon.stop().then(() => resolve(0));
    };
    process.on("SIGTERM", () => shutdown("SIGTERM"));
    process.on("SIGINT", () => shutdown("SIGINT"));
    process.on("SIGHUP", () => daemon.reload());
  });
}
