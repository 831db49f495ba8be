/**
 * The create body of `run` and `create` from docker's flags (docker's cli/command/container/opts.go,
 * the common part): every value parsed here, once, into the Engine API's typed fields (`-m 64m`
 * becomes Memory: 67108864, `-p 8080:80` a PortBindings entry).
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

import { parseByteSize } from "../../core/bytes.ts";

import { invalidArgument } from "../../core/errors.ts";
import { type HostBinding, parsePublish } from "../../core/network/port-spec.ts";

import { endpointIpam } from "./networks.ts";

type Opts = Record<string, unknown>;
const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

/** `--memory`, `--memory-swap`, `--cpus`, `--cpu-shares`, `--cpuset-cpus`, `--pids-limit` as HostConfig fields (run, create, update). */
export function resourceFlags(o: Opts): Record<string, unknown> {
  return {
    ...(o.memory ? { Memory: parseByteSize(String(o.memory)) } : {}),
    ...(o.memorySwap ? { MemorySwap: String(o.memorySwap) === "-1" ? -1 : parseByteSize(String(o.memorySwap)) } : {}),
    ...(o.cpus ? { NanoCpus: Math.round(Number(o.cpus) * 1e9) } : {}),
    ...(o.cpuShares ? { CpuShares: Number(o.cpuShares) } : {}),
    ...(o.cpusetCpus ? { CpusetCpus: String(o.cpusetCpus) } : {}),
    ...(o.pidsLimit ? { PidsLimit: Number(o.pidsLimit) } : {}),
  };
}

/** The create body from `run`/`create` flags (docker's cli/command/container/opts.go, the common part). */
export function createBody(o: Opts, image: string, cmd: string[]): Record<string, unknown> {
  const env = [
    ...list(o.envFile).flatMap((f) =>
      readFileSync(f, "utf8")
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith("#")),
    ),
    ...list(o.env),
  ].map((e) => (e.includes("=") ? e : `${e}=${process.env[e] ?? ""}`));
  const labels = Object.fromEntries(list(o.label).map((l) => (l.includes("=") ? [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] : [l, ""])));
  const binds: string[] = [];
  const volumes: Record<string, object> = {};
  for (const v of list(o.volume)) {
    if (v.includes(":")) {
      const [src, ...rest] = v.split(":");
      binds.push([src!.startsWith(".") ? resolve(src!) : src!, ...rest].join(":"));
    } else volumes[v] = {};
  }
  const mounts = list(o.mount).map((m) => {
    const kv = Object.fromEntries(m.split(",").map((p) => (p.includes("=") ? [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)] : [p, "true"])));
    const type = kv.type ?? "volume";
    const target = kv.target ?? kv.destination ?? kv.dst;
    if (!target) throw invalidArgument(`invalid argument "${m}" for "--mount" flag: target is required`);
    return {
      Type: type,
      Target: target,
      ...((kv.source ?? kv.src) ? { Source: kv.source ?? kv.src } : {}),
      ReadOnly: kv.readonly === "true" || kv.ro === "true" || kv.readonly === "1",
      ...(type === "bind" && kv["bind-propagation"] ? { BindOptions: { Propagation: kv["bind-propagation"] } } : {}),
      ...(type === "tmpfs" ? { TmpfsOptions: { ...(kv["tmpfs-size"] ? { SizeBytes: parseByteSize(kv["tmpfs-size"]) } : {}), ...(kv["tmpfs-mode"] ? { Mode: Number.parseInt(kv["tmpfs-mode"], 8) } : {}) } } : {}),
      ...(type === "volume" && kv["volume-nocopy"] ? { VolumeOptions: { NoCopy: true } } : {}),
    };
  });
  const published = list(o.publish).flatMap(parsePublish);
  const portBindings: Record<string, HostBinding[]> = {};
  for (const p of published) (portBindings[p.key] ??= []).push(p.binding);
  const network = o.network ? String(o.network) : "default";
  const aliases = list(o.networkAlias);
  const endpoint = o.ip || o.ip6 || aliases.length ? { ...endpointIpam(o), ...(aliases.length ? { Aliases: aliases } : {}) } : undefined;
  const restart = o.restart ? String(o.restart) : "no";
  const [rname, rcount] = restart.split(":");
  const tty = !!o.tty;
  const interactive = !!o.interactive;
  const detach = !!o.detach;
  const ulimits = list(o.ulimit).map((u) => {
    const [name, vals] = u.split("=");
    const [soft, hard = soft] = (vals ?? "").split(":");
    return { Name: name, Soft: Number(soft), Hard: Number(hard) };
  });
  return {
    Image: image,
    ...(cmd.length ? { Cmd: cmd } : {}),
    ...(o.entrypoint !== undefined ? { Entrypoint: [String(o.entrypoint)] } : {}),
    Env: env,
    ...(o.workdir ? { WorkingDir: String(o.workdir) } : {}),
    ...(o.user !== undefined ? { User: String(o.user) } : {}),
    ...(o.hostname ? { Hostname: String(o.hostname) } : {}),
    Labels: labels,
    Tty: tty,
    OpenStdin: interactive,
    StdinOnce: interactive && !detach,
    AttachStdin: interactive && !detach,
    AttachStdout: !detach,
    AttachStderr: !detach,
    Volumes: volumes,
    ...(o.stopSignal ? { StopSignal: String(o.stopSignal) } : {}),
    ...(o.stopTimeout !== undefined ? { StopTimeout: Number(o.stopTimeout) } : {}),
    ...(o.expose || o.publish ? { ExposedPorts: Object.fromEntries([...list(o.expose).map((p) => (p.includes("/") ? p : `${p}/tcp`)), ...published.map((p) => p.key)].map((k) => [k, {}])) } : {}),
    ...(endpoint ? { NetworkingConfig: { EndpointsConfig: { [network]: endpoint } } } : {}),
    HostConfig: {
      PortBindings: portBindings,
      PublishAllPorts: !!o.publishAll,
      Links: list(o.link),
      Binds: binds,
      Mounts: mounts,
      NetworkMode: o.network ? String(o.network) : "default",
      RestartPolicy: { Name: rname === "no" ? "" : rname, MaximumRetryCount: rcount ? Number(rcount) : 0 },
      AutoRemove: !!o.rm,
      CapAdd: list(o.capAdd),
      CapDrop: list(o.capDrop),
      Privileged: !!o.privileged,
      ReadonlyRootfs: !!o.readOnly,
      SecurityOpt: list(o.securityOpt),
      Tmpfs: Object.fromEntries(list(o.tmpfs).map((t) => (t.includes(":") ? [t.slice(0, t.indexOf(":")), t.slice(t.indexOf(":") + 1)] : [t, ""]))),
      ...resourceFlags(o),
      Ulimits: ulimits,
      ExtraHosts: list(o.addHost),
      Dns: list(o.dns),
      GroupAdd: list(o.groupAdd),
      ...(o.init ? { Init: true } : {}),
      ...(o.logDriver || o.logOpt ? { LogConfig: { Type: o.logDriver ? String(o.logDriver) : "", Config: Object.fromEntries(list(o.logOpt).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)])) } } : {}),
      ...(tty && process.stdout.isTTY ? { ConsoleSize: [process.stdout.rows, process.stdout.columns] } : {}),
    },
  };
}
