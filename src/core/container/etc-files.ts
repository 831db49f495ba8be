/**
 * A container's /etc/hostname, /etc/hosts and /etc/resolv.conf, written in its directory and
 * bound into its root: the network's names and the links', `--add-host`, the embedded DNS server
 * or the host's name servers (loopback ones dropped), `--dns*`.
 */
import { ignored } from "../log.ts";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { invalidArgument } from "../errors.ts";
import type { ContainerRecord } from "./container-store.ts";
import type { ContainerContext } from "./context.ts";

/**
 * The host's name servers for a container on a bridge: loopback ones cannot be reached from the
 * container's namespace and are dropped (Docker does the same and falls back to public servers).
 */
function hostNameservers(): string {
  let text = "";
  try {
    text = readFileSync("/etc/resolv.conf", "utf8");
  } catch (err) {
    ignored("no resolv.conf on the host: the fallback servers below", err);
  }
  const lines = text.split("\n").filter((l) => /^\s*(nameserver|search|options)\s/.test(l));
  const kept = lines.filter((l) => !/^\s*nameserver\s+(127\.|::1)/.test(l));
  if (!kept.some((l) => /^\s*nameserver/.test(l))) kept.unshift("nameserver 8.8.8.8", "nameserver 8.8.4.4");
  return kept.join("\n") + "\n";
}

/** /etc/hosts: localhost, the networks' and links' names, `--add-host` (host-gateway resolved). */
function hostsFile(ctx: ContainerContext, c: ContainerRecord): string {
  const extra = (c.HostConfig.ExtraHosts ?? []).map((e) => {
    const [host, ip] = [e.slice(0, e.indexOf(":")), e.slice(e.indexOf(":") + 1)];
    if (!host || !ip) throw invalidArgument(`invalid IP address in add-host: "${ip ?? ""}"`);
    // host-gateway: the host's address on the default bridge (dockerd's host-gateway-ip).
    if (ip === "host-gateway") return `${ctx.deps.networks.hostGatewayIp()}\t${host}`;
    return `${ip}\t${host}`;
  });
  return ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::\tip6-localnet", "ff00::\tip6-mcastprefix", "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters", ...ctx.deps.networks.hostsEntries(c), ...extra, ""].join(
    "\n",
  );
}

/** /etc/resolv.conf: the embedded DNS server, `--dns`, the daemon's, the host's; then search and options. */
function resolvFile(ctx: ContainerContext, c: ContainerRecord): string {
  const networks = ctx.deps.networks;
  const mode = c.HostConfig.NetworkMode;
  let resolv = "";
  const embedded = networks.dnsServerFor(c);
  if (embedded)
    resolv = `nameserver ${embedded}\n`; // the network's DNS server answers names, forwards the rest
  else if (c.HostConfig.Dns?.length) resolv = c.HostConfig.Dns.map((d) => `nameserver ${d}`).join("\n") + "\n";
  else if (networks.daemonDns?.length && mode !== "none") resolv = networks.daemonDns.map((d) => `nameserver ${d}`).join("\n") + "\n";
  else if (mode === "host" && existsSync("/etc/resolv.conf")) resolv = readFileSync("/etc/resolv.conf", "utf8");
  else if (mode !== "none") resolv = hostNameservers();
  if (c.HostConfig.DnsSearch?.length) resolv += `search ${c.HostConfig.DnsSearch.join(" ")}\n`;
  if (c.HostConfig.DnsOptions?.length) resolv += `options ${c.HostConfig.DnsOptions.join(" ")}\n`;
  return resolv;
}

/** Write the container's /etc/hostname, /etc/hosts and /etc/resolv.conf. */
export function writeEtcFiles(ctx: ContainerContext, c: ContainerRecord): void {
  writeFileSync(c.HostnamePath, `${c.Config.Hostname}\n`);
  const mode = c.HostConfig.NetworkMode ?? "";
  if (mode.startsWith("container:")) {
    // Sharing a network namespace shares its names too (as Docker does).
    const other = ctx.store.get(mode.slice("container:".length));
    writeFileSync(c.HostsPath, readFileSync(other.HostsPath));
    writeFileSync(c.ResolvConfPath, readFileSync(other.ResolvConfPath));
    return;
  }
  writeFileSync(c.HostsPath, hostsFile(ctx, c));
  writeFileSync(c.ResolvConfPath, resolvFile(ctx, c));
}
