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
  dockerPluginDir?: string[];
  dockerPluginTimeout?: string;
  dns?: string[];
  bridge?: string;
  bip?: string;
  ipv6?: boolean | string;
  fixedCidrV6?: string;
  iptables?: boolean | string;
  ipForward?: boolean | string;
  defaultAddressPool?: string[];
  insecureRegistry?: string[];
  registryMirror?: string[];
  registryCertsDir?: string;
  registryStallTimeout?: string;
  registryAddr?: string;
  logDriver?: string;
  logOpt?: string[];
  execOpt?: string[];
}

/** `--iptables`, `--iptables=false`, `--ipv6=true` as dockerd reads its boolean flags. */
function boolFlag(name: string, v: boolean | string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v === "boolean") return v;
  if (["true", "1", ""].includes(v)) return true;
  if (["false", "0"].includes(v)) return false;
  throw invalidArgument(`invalid boolean value "${v}" for --${name}`);
}

/** A number flag, or a clear error. */
function numberFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw invalidArgument(`invalid value "${v}" for --${name}: a number is needed`);
  return n;
}

/** `--default-address-pool base=10.10.0.0/16,size=24` → a pool entry. */
function addressPoolFlag(v: string): { base: string; size: number } {
  const kv = Object.fromEntries(v.split(",").map((p) => p.split("=", 2) as [string, string]));
  const size = Number(kv.size);
  if (!kv.base || !Number.isInteger(size)) throw invalidArgument(`invalid --default-address-pool ${v}: want base=<CIDR>,size=<prefix length>`);
  return { base: kv.base, size };
}

/** `--log-opt max-size=10m` (repeatable) → log-opts. */
function logOpts(list: string[] | undefined): Record<string, string> | undefined {
  if (!list?.length) return undefined;
  return Object.fromEntries(
    list.map((o) => {
      const i = o.indexOf("=");
      if (i <= 0) throw invalidArgument(`invalid --log-opt ${o}: want key=value`);
      return [o.slice(0, i), o.slice(i + 1)];
    }),
  );
}

/** The last of a flag given several times (docker's flag parser keeps the last). */
function last1<T>(v: T | T[] | undefined): T | undefined {
  return Array.isArray(v) ? v.at(-1) : v;
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
    "docker-plugin-dirs": o.dockerPluginDir?.length ? o.dockerPluginDir : undefined,
    "docker-plugin-timeout": numberFlag("docker-plugin-timeout", last1(o.dockerPluginTimeout)),
    dns: o.dns?.length ? o.dns : undefined,
    bridge: o.bridge,
    bip: o.bip,
    ipv6: boolFlag("ipv6", last1(o.ipv6)),
    "fixed-cidr-v6": o.fixedCidrV6,
    iptables: boolFlag("iptables", last1(o.iptables)),
    "ip-forward": boolFlag("ip-forward", last1(o.ipForward)),
    "default-address-pools": o.defaultAddressPool?.length ? o.defaultAddressPool.map(addressPoolFlag) : undefined,
    "insecure-registries": o.insecureRegistry?.length ? o.insecureRegistry : undefined,
    "registry-mirrors": o.registryMirror?.length ? o.registryMirror : undefined,
    "registry-certs-dir": o.registryCertsDir,
    "registry-stall-timeout": numberFlag("registry-stall-timeout", last1(o.registryStallTimeout)),
    "registry-addr": o.registryAddr,
    "log-driver": o.logDriver,
    "log-opts": logOpts(o.logOpt),
    "exec-opts": o.execOpt?.length ? o.execOpt : undefined,
  };
  const repeatable = new Set(["hosts", "required-plugins", "plugins", "docker-plugin-dirs", "dns", "default-address-pools", "insecure-registries", "registry-mirrors", "exec-opts"]);
  // A single-valued flag given twice keeps the last value, as docker's flag parser does.
  const last = (k: string, v: unknown) => (!repeatable.has(k) && Array.isArray(v) ? v.at(-1) : v);
  return Object.fromEntries(
    Object.entries(f)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, last(k, v)]),
  ) as DaemonFlags;
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
    // As dockerd dumps its goroutines on SIGUSR1: a collection, then what the heap holds, logged.
    process.on("SIGUSR1", () => {
      Bun.gc(true);
      const { heapStats } = require("bun:jsc") as typeof import("bun:jsc");
      const h = heapStats();
      const top = Object.entries(h.objectTypeCounts)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 20)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ");
      log.info("heap after a full collection", { heapSize: h.heapSize, objects: h.objectCount, rss: process.memoryUsage().rss, top });
    });
  });
}
