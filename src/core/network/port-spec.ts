/**
 * Port publishing syntax, as docker's `-p` takes it: `[ip:][hostPort:]containerPort[/proto]`,
 * with ranges (`8000-8001:80-81`) and IPv6 hosts in brackets left out (IPv4 only here). The CLI
 * turns specs into `ExposedPorts` + `PortBindings`; the daemon checks what it receives with
 * `parsePortKey` so a hand-written API body gets the same errors.
 */
import { invalidArgument } from "../errors.ts";

/** One binding of `HostConfig.PortBindings`. */
export interface HostBinding {
  HostIp: string;
  HostPort: string;
}

function portRange(s: string, what: string, spec: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  const a = m ? Number(m[1]) : NaN;
  const b = m?.[2] ? Number(m[2]) : a;
  if (!m || a < 1 || b > 65535 || b < a) throw invalidArgument(`invalid ${what} port: ${s} in "${spec}"`);
  return [a, b];
}

/** `"80/tcp"` → [80, "tcp"]; anything else is Docker's error. */
export function parsePortKey(key: string): [number, "tcp" | "udp"] {
  const [p = "", proto = "tcp"] = key.split("/");
  if (proto !== "tcp" && proto !== "udp") throw invalidArgument(`invalid proto: ${proto}`);
  const [a, b] = portRange(p, "container", key);
  if (a !== b) throw invalidArgument(`invalid port ${key}: a single port is expected`);
  return [a, proto];
}

/** One `-p` spec as PortBindings entries (a range gives one entry per port). */
export function parsePublish(spec: string): { key: string; binding: HostBinding }[] {
  const [main = "", proto = "tcp"] = spec.split("/");
  if (proto !== "tcp" && proto !== "udp") throw invalidArgument(`invalid proto: ${proto} in "${spec}"`);
  const parts = main.split(":");
  if (parts.length > 3 || !parts.at(-1)) throw invalidArgument(`invalid port specification: "${spec}"`);
  const [ip, host, ctr] = parts.length === 3 ? parts : parts.length === 2 ? ["", parts[0]!, parts[1]!] : ["", "", parts[0]!];
  if (ip && !/^\d+\.\d+\.\d+\.\d+$/.test(ip)) throw invalidArgument(`invalid IP address: ${ip} in "${spec}"`);
  const [c0, c1] = portRange(ctr!, "container", spec);
  const hostRange = host ? portRange(host, "host", spec) : undefined;
  if (hostRange && hostRange[1] - hostRange[0] !== c1 - c0 && hostRange[0] !== hostRange[1]) throw invalidArgument(`invalid ranges specified for container and host Ports: ${ctr} and ${host}`);
  const out: { key: string; binding: HostBinding }[] = [];
  for (let p = c0; p <= c1; p++) {
    const hp = hostRange ? (hostRange[0] === hostRange[1] ? hostRange[0] : hostRange[0] + (p - c0)) : undefined;
    out.push({ key: `${p}/${proto}`, binding: { HostIp: ip ?? "", HostPort: hp ? String(hp) : "" } });
  }
  return out;
}
