/**
 * Daemon configuration: `/etc/bunker/daemon.json` validated with valibot (unknown keys and wrong
 * types stop start-up naming the key), merged with command-line flags. As dockerd does, a
 * directive given both as a flag and in the file is an error rather than a silent override.
 */
import { existsSync, readFileSync } from "node:fs";
import * as v from "valibot";
import { invalidArgument, messageOf } from "../errors.ts";
import { LOG_LEVELS } from "../log.ts";
import { formatIssues } from "../validate.ts";

export const DEFAULT_CONFIG_FILE = "/etc/bunker/daemon.json";
export const DEFAULT_DATA_ROOT = "/var/lib/bunker";
export const DEFAULT_EXEC_ROOT = "/run/bunker";

/** The daemon.json schema. Keys are dockerd's where dockerd has the option. */
export const DaemonFileSchema = v.strictObject({
  "data-root": v.optional(v.pipe(v.string(), v.startsWith("/", "must be an absolute path"))),
  "exec-root": v.optional(v.pipe(v.string(), v.startsWith("/", "must be an absolute path"))),
  hosts: v.optional(v.array(v.string())),
  tls: v.optional(v.boolean()),
  tlsverify: v.optional(v.boolean()),
  tlscacert: v.optional(v.string()),
  tlscert: v.optional(v.string()),
  tlskey: v.optional(v.string()),
  debug: v.optional(v.boolean()),
  "log-level": v.optional(v.picklist(LOG_LEVELS)),
  "log-format": v.optional(v.picklist(["text", "json"])),
  pidfile: v.optional(v.string()),
  group: v.optional(v.string()),
  "plugins-dir": v.optional(v.string()),
  plugins: v.optional(v.record(v.string(), v.unknown())),
  "required-plugins": v.optional(v.array(v.string())),
  "storage-driver": v.optional(v.string()),
  /** Where Docker-protocol plugins (GraphDriver, …) are discovered; default moby's directories. */
  "docker-plugin-dirs": v.optional(v.array(v.string())),
  /** DNS servers for containers, and where the embedded DNS servers forward (dockerd's `dns`). */
  dns: v.optional(v.array(v.pipe(v.string(), v.ipv4("must be an IPv4 address")))),
  /** Interface name of the default bridge network (dockerd's `bridge`; "none": no default bridge). */
  bridge: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]{1,15}$/, "must be an interface name"))),
  /** IPv6 on the default bridge network (dockerd's `ipv6`). */
  ipv6: v.optional(v.boolean()),
  /** The default bridge network's IPv6 subnet (dockerd's `fixed-cidr-v6`; default a unique-local /64). */
  "fixed-cidr-v6": v.optional(v.pipe(v.string(), v.regex(/^[0-9a-fA-F:.]+\/\d{1,3}$/, "must be an IPv6 CIDR"))),
  /** The default bridge's address and subnet, e.g. 172.26.0.1/16 (dockerd's `bip`). */
  bip: v.optional(v.pipe(v.string(), v.regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, "must be an IPv4 address with a prefix length"))),
  /** Whether the bridge driver installs nf_tables rules (dockerd's `iptables`, default true). */
  iptables: v.optional(v.boolean()),
  /** Whether the daemon turns on IPv4 forwarding (dockerd's `ip-forward`, default true). */
  "ip-forward": v.optional(v.boolean()),
  /** The log driver of containers that name none (dockerd's `log-driver`, default json-file). */
  "log-driver": v.optional(v.picklist(["json-file", "local", "none"])),
  /** Its options (dockerd's `log-opts`). */
  "log-opts": v.optional(v.record(v.string(), v.string())),
  /** dockerd's exec-opts: `native.cgroupdriver=cgroupfs|systemd`. */
  "exec-opts": v.optional(v.array(v.pipe(v.string(), v.regex(/^native\.cgroupdriver=(cgroupfs|systemd)$/, "must be native.cgroupdriver=cgroupfs or native.cgroupdriver=systemd")))),
  /** Where networks without a subnet get theirs (dockerd's `default-address-pools`). */
  "default-address-pools": v.optional(
    v.array(
      v.strictObject({
        base: v.pipe(v.string(), v.regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, "must be an IPv4 CIDR")),
        size: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(30)),
      }),
    ),
  ),
  /** Registries reachable over plain HTTP or unverified TLS (hosts or CIDRs; loopback always is). */
  "insecure-registries": v.optional(v.array(v.string())),
  /** Docker Hub mirrors, tried first (`https://mirror.example:5000`). */
  "registry-mirrors": v.optional(v.array(v.pipe(v.string(), v.url("must be a URL")))),
  /** Per-registry CA and client certificates: `<dir>/<host:port>/{ca.crt,client.cert,client.key}`. */
  "registry-certs-dir": v.optional(v.pipe(v.string(), v.startsWith("/", "must be an absolute path"))),
  /** Seconds without data after which a registry transfer is dropped and resumed (default 30). */
  "registry-stall-timeout": v.optional(v.pipe(v.number(), v.minValue(0.1), v.maxValue(3600))),
  /** Serve a registry in the daemon on this `host:port` (storage under the data root). */
  "registry-addr": v.optional(v.string()),
  /** Seconds to wait for a Docker-protocol plugin to appear and answer (moby: 30). */
  "docker-plugin-timeout": v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(3600))),
});

/** Keys of daemon.json. */
export type DaemonFileConfig = v.InferOutput<typeof DaemonFileSchema>;
export type DaemonKey = keyof DaemonFileConfig;

/** A listen address after parsing. */
export type HostAddress = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

/** Fully resolved configuration. */
export interface DaemonConfig {
  configFile: string;
  dataRoot: string;
  execRoot: string;
  hosts: HostAddress[];
  tls: boolean;
  tlsVerify: boolean;
  tlsCaCert?: string;
  tlsCert?: string;
  tlsKey?: string;
  debug: boolean;
  logLevel: (typeof LOG_LEVELS)[number];
  logFormat: "text" | "json";
  pidfile: string;
  group: string;
  pluginsDir?: string;
  plugins: Record<string, unknown>;
  requiredPlugins: string[];
  storageDriver?: string;
  dockerPluginDirs?: string[];
  dockerPluginTimeout: number;
  dns?: string[];
  bridge?: string;
  ipv6: boolean;
  fixedCidrV6?: string;
  addressPools?: { base: string; size: number }[];
  bip?: string;
  /** native.cgroupdriver from exec-opts (default cgroupfs). */
  cgroupDriver: "cgroupfs" | "systemd";
  /** The default log config of new containers. */
  logDriver: { Type: string; Config: Record<string, string> };
  insecureRegistries: string[];
  registryMirrors: string[];
  registryCertsDir: string;
  registryStallMs: number;
  registryAddr?: string;
}

/** Flags as the CLI parsed them: the same keys as daemon.json, plus `config-file`. */
export type DaemonFlags = Partial<DaemonFileConfig> & { "config-file"?: string };

/** Read and validate a daemon.json. Missing file is fine only for the default path. */
export function readConfigFile(path: string, explicit: boolean): DaemonFileConfig {
  if (!existsSync(path)) {
    if (explicit) throw invalidArgument(`unable to configure the daemon: config file ${path} does not exist`);
    return {};
  }
  let raw: unknown;
  try {
    const text = readFileSync(path, "utf8");
    raw = text.trim() === "" ? {} : JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`unable to configure the daemon with file ${path}: ${messageOf(err)}`);
  }
  const r = v.safeParse(DaemonFileSchema, raw);
  if (!r.success) throw invalidArgument(`unable to configure the daemon with file ${path}: ${formatIssues(r.issues)}`);
  return r.output;
}

/** Merge flags over the file and defaults; validates listen addresses and TLS requirements. */
export function resolveDaemonConfig(flags: DaemonFlags, file?: DaemonFileConfig): DaemonConfig {
  const configFile = flags["config-file"] ?? DEFAULT_CONFIG_FILE;
  const fromFile = file ?? readConfigFile(configFile, flags["config-file"] !== undefined);
  const flagChecked = v.safeParse(v.partial(DaemonFileSchema), withoutConfigFile(flags));
  if (!flagChecked.success) throw invalidArgument(`invalid flag: ${formatIssues(flagChecked.issues).replace(/^([\w-]+):/, "--$1:")}`);
  const conflicts = (Object.keys(fromFile) as DaemonKey[]).filter((k) => flags[k] !== undefined);
  if (conflicts.length) {
    throw invalidArgument(
      `the following directives are specified both as a flag and in the configuration file: ${conflicts.map((k) => `${k}: (from flag: ${JSON.stringify(flags[k])}, from file: ${JSON.stringify(fromFile[k])})`).join(", ")}`,
    );
  }
  const c: DaemonFileConfig = { ...fromFile, ...withoutConfigFile(flags) };
  const execRoot = c["exec-root"] ?? DEFAULT_EXEC_ROOT;
  const debug = c.debug ?? false;
  const tlsVerify = c.tlsverify ?? false;
  const tls = (c.tls ?? false) || tlsVerify;
  const hosts = (c.hosts?.length ? c.hosts : [`unix://${execRoot}/bunker.sock`]).map((h) => parseHost(h, execRoot, tls));
  const cfg: DaemonConfig = {
    configFile,
    dataRoot: c["data-root"] ?? DEFAULT_DATA_ROOT,
    execRoot,
    hosts,
    tls,
    tlsVerify,
    debug,
    logLevel: debug ? "debug" : (c["log-level"] ?? "info"),
    logFormat: c["log-format"] ?? "text",
    pidfile: c.pidfile ?? `${execRoot}/bunker.pid`,
    group: c.group ?? "bunker",
    plugins: c.plugins ?? {},
    requiredPlugins: c["required-plugins"] ?? [],
    dockerPluginTimeout: c["docker-plugin-timeout"] ?? 30,
    ...(c.tlscacert ? { tlsCaCert: c.tlscacert } : {}),
    ...(c.tlscert ? { tlsCert: c.tlscert } : {}),
    ...(c.tlskey ? { tlsKey: c.tlskey } : {}),
    ...(c["plugins-dir"] ? { pluginsDir: c["plugins-dir"] } : {}),
    ...(c["storage-driver"] ? { storageDriver: c["storage-driver"] } : {}),
    ...(c["docker-plugin-dirs"] ? { dockerPluginDirs: c["docker-plugin-dirs"] } : {}),
    ...(c.dns ? { dns: c.dns } : {}),
    insecureRegistries: c["insecure-registries"] ?? [],
    registryMirrors: c["registry-mirrors"] ?? [],
    registryCertsDir: c["registry-certs-dir"] ?? "/etc/bunker/certs.d",
    registryStallMs: (c["registry-stall-timeout"] ?? 30) * 1000,
    ...(c["registry-addr"] ? { registryAddr: c["registry-addr"] } : {}),
    ...(c.bridge ? { bridge: c.bridge } : {}),
    ipv6: c.ipv6 ?? false,
    ...(c["fixed-cidr-v6"] ? { fixedCidrV6: c["fixed-cidr-v6"] } : {}),
    ...(c["default-address-pools"]?.length ? { addressPools: c["default-address-pools"] } : {}),
    ...(c.bip ? { bip: c.bip } : {}),
    logDriver: { Type: c["log-driver"] ?? "json-file", Config: c["log-opts"] ?? {} },
    cgroupDriver:
      (c["exec-opts"] ?? [])
        .map((o) => o.split("=")[1])
        .filter((d): d is "cgroupfs" | "systemd" => d === "cgroupfs" || d === "systemd")
        .at(-1) ?? "cgroupfs",
  };
  // dockerd's iptables and ip-forward are the bridge driver's settings; its own plugin section wins.
  if (c.iptables !== undefined || c["ip-forward"] !== undefined) {
    const section = (cfg.plugins["network.v1.bridge"] ?? {}) as Record<string, unknown>;
    cfg.plugins = { ...cfg.plugins, "network.v1.bridge": { ...(c.iptables !== undefined ? { iptables: c.iptables } : {}), ...(c["ip-forward"] !== undefined ? { ipForward: c["ip-forward"] } : {}), ...section } };
  }
  checkTls(cfg);
  return cfg;
}

function withoutConfigFile(flags: DaemonFlags): Partial<DaemonFileConfig> {
  const { "config-file": _ignored, ...rest } = flags;
  return Object.fromEntries(Object.entries(rest).filter(([, val]) => val !== undefined)) as Partial<DaemonFileConfig>;
}

/**
 * Parse `unix:///path`, `unix://` (default socket), `/path`, `tcp://host:port`. A TCP address
 * without a port gets 2376 with TLS and 2375 without, as dockerd does.
 */
export function parseHost(raw: string, execRoot = DEFAULT_EXEC_ROOT, tls = false): HostAddress {
  if (raw.startsWith("/")) return { kind: "unix", path: raw };
  if (raw.startsWith("unix://")) {
    const path = raw.slice("unix://".length) || `${execRoot}/bunker.sock`;
    if (!path.startsWith("/")) throw invalidArgument(`invalid host ${raw}: unix socket path must be absolute`);
    return { kind: "unix", path };
  }
  if (raw.startsWith("tcp://")) {
    let rest = raw.slice("tcp://".length).replace(/\/$/, "");
    let host: string;
    let portStr: string | undefined;
    const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
    if (bracket) {
      host = bracket[1]!;
      portStr = bracket[2];
    } else {
      const i = rest.lastIndexOf(":");
      if (i >= 0 && rest.indexOf(":") === i) {
        host = rest.slice(0, i);
        portStr = rest.slice(i + 1);
      } else host = rest;
    }
    if (host === "") host = "127.0.0.1";
    const port = portStr === undefined || portStr === "" ? (tls ? 2376 : 2375) : Number(portStr);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalidArgument(`invalid host ${raw}: bad port`);
    return { kind: "tcp", host, port };
  }
  throw invalidArgument(`invalid host ${raw}: use unix:///path or tcp://addr:port`);
}

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  // Dotted-quad IPv4 in 127.0.0.0/8 (node:net's isIP is avoided: it costs ~MBs of RSS to load).
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return !!m && m.slice(1).every((o) => Number(o) <= 255);
}

/** TCP on a non-loopback address needs mutual TLS; TLS needs its files. */
function checkTls(cfg: DaemonConfig): void {
  for (const h of cfg.hosts) {
    if (h.kind !== "tcp") continue;
    if (!isLoopback(h.host) && !cfg.tlsVerify) {
      throw invalidArgument(`refusing to listen on tcp://${h.host}:${h.port} without --tlsverify: a non-loopback TCP socket needs mutual TLS (--tlsverify --tlscacert --tlscert --tlskey)`);
    }
    if (cfg.tls) {
      const missing = [["tlscert", cfg.tlsCert], ["tlskey", cfg.tlsKey], ...(cfg.tlsVerify ? [["tlscacert", cfg.tlsCaCert]] : [])].filter(([, val]) => !val).map(([k]) => `--${k}`);
      if (missing.length) throw invalidArgument(`TLS is enabled but ${missing.join(", ")} ${missing.length > 1 ? "are" : "is"} not set`);
    }
  }
}
