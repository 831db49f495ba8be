/**
 * The JSON views of containers: `docker inspect`'s object and `docker ps`'s summary, with the
 * status text ("Up 3 minutes") and the networks and mounts as the Engine API shows them.
 */
import type { ContainerRecord } from "../../container/container-backend.ts";
import { humanDuration } from "../../format/duration.ts";

/** "Up 3 minutes", "Exited (0) 2 seconds ago", "Created" as docker ps shows. */
export function statusText(c: ContainerRecord, nowMs = Date.now()): string {
  const ago = (iso: string) => humanDuration(nowMs - Date.parse(iso));
  const health = c.State.Health ? ` (${c.State.Health.Status === "starting" ? "health: starting" : c.State.Health.Status})` : "";
  if (c.State.Running) return `Up ${ago(c.State.StartedAt)}${c.State.Paused ? " (Paused)" : health}`;
  if (c.State.Restarting) return `Restarting (${c.State.ExitCode}) ${ago(c.State.FinishedAt)} ago`;
  if (c.State.Status === "created") return "Created";
  if (c.State.Status === "dead") return "Dead";
  return `Exited (${c.State.ExitCode}) ${ago(c.State.FinishedAt)} ago`;
}

/** inspect's and ps's `Mounts`. */
function mountsView(c: ContainerRecord): Record<string, unknown>[] {
  return (c.MountPoints ?? [])
    .filter((m) => !m.FromTmpfsOption)
    .map((m) => ({
      Type: m.Type,
      ...(m.Name ? { Name: m.Name } : {}),
      Source: m.Source,
      Destination: m.Destination,
      ...(m.Driver ? { Driver: m.Driver } : {}),
      Mode: m.Mode,
      RW: m.RW,
      Propagation: m.Propagation,
    }));
}

/** `docker inspect`'s object. */
export function inspectOf(c: ContainerRecord, driver: string, execIds?: string[]): Record<string, unknown> {
  return {
    Id: c.Id,
    Created: c.Created,
    Path: c.Path,
    Args: c.Args,
    State: c.State,
    Image: c.Image,
    ResolvConfPath: c.ResolvConfPath,
    HostnamePath: c.HostnamePath,
    HostsPath: c.HostsPath,
    LogPath: c.HostConfig.LogConfig?.Type === "json-file" ? c.LogPath : "", // Docker names only json-file's
    Name: c.Name,
    RestartCount: c.RestartCount,
    Driver: driver,
    Platform: "linux",
    MountLabel: "",
    ProcessLabel: "",
    AppArmorProfile: "",
    ExecIDs: execIds?.length ? execIds : null,
    // Docker names the runtime even when the request did not: runc is the default's name.
    HostConfig: { ...c.HostConfig, Runtime: c.HostConfig.Runtime || "runc" },
    GraphDriver: { Name: driver, Data: null },
    Mounts: mountsView(c),
    Config: c.Config,
    NetworkSettings: networkSettingsView(c),
  };
}

/** `NetworkSettings` of inspect: per-network settings, ports, and the legacy top-level fields of the default bridge. */
export function networkSettingsView(c: ContainerRecord): Record<string, unknown> {
  const ns = c.NetworkSettings;
  const networks = Object.fromEntries(Object.entries(ns?.Networks ?? {}).map(([k, { HostIf: _h, IfName: _i, RequestedMac: _m, LastIPAddress: _l, ...s }]) => [k, s]));
  const def = ns?.Networks["bridge"];
  return {
    Bridge: "",
    SandboxID: c.State.Running && ns?.SandboxKey ? c.Id : "",
    SandboxKey: c.State.Running ? (ns?.SandboxKey ?? "") : "",
    Ports: c.State.Running ? (ns?.Ports ?? {}) : {},
    HairpinMode: false,
    LinkLocalIPv6Address: "",
    LinkLocalIPv6PrefixLen: 0,
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    EndpointID: def?.EndpointID ?? "",
    Gateway: def?.Gateway ?? "",
    GlobalIPv6Address: def?.GlobalIPv6Address ?? "",
    GlobalIPv6PrefixLen: def?.GlobalIPv6PrefixLen ?? 0,
    IPAddress: def?.IPAddress ?? "",
    IPPrefixLen: def?.IPPrefixLen ?? 0,
    IPv6Gateway: def?.IPv6Gateway ?? "",
    MacAddress: def?.MacAddress ?? "",
    Networks: networks,
  };
}

/** `Ports` of `docker ps`: published bindings, and exposed ports without one. */
function portsSummary(c: ContainerRecord): { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] {
  if (!c.State.Running) return [];
  const out: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] = [];
  for (const [key, list] of Object.entries(c.NetworkSettings?.Ports ?? {})) {
    const [port, type = "tcp"] = key.split("/");
    if (!list) out.push({ PrivatePort: Number(port), Type: type });
    else for (const b of list) out.push({ IP: b.HostIp, PrivatePort: Number(port), PublicPort: Number(b.HostPort), Type: type });
  }
  return out;
}

/** Summaries by record, rebuilt when the record changes (its JSON on disk is rewritten then). */
const summaries = new WeakMap<ContainerRecord, { key: string; created: number; value: Record<string, unknown> }>();

function cachedSummary(c: ContainerRecord): { created: number; value: Record<string, unknown> } {
  const key = `${c.Name}\0${c.State.Status}\0${c.State.StartedAt}\0${c.State.FinishedAt}\0${c.State.ExitCode}\0${c.State.Paused}\0${c.State.Health?.Status}\0${Object.entries(c.NetworkSettings?.Networks ?? {})
    .map(([k, n]) => k + n.IPAddress)
    .join()}`;
  const hit = summaries.get(c);
  if (hit && hit.key === key) return hit;
  const entry = { key, created: Date.parse(c.Created), value: buildSummary(c) };
  summaries.set(c, entry);
  return entry;
}

/** `docker ps`'s object. */
export function summaryOf(c: ContainerRecord): Record<string, unknown> {
  return { ...cachedSummary(c).value, Status: statusText(c) };
}

function buildSummary(c: ContainerRecord): Record<string, unknown> {
  return {
    Id: c.Id,
    Names: [c.Name],
    Image: c.ImageName,
    ImageID: c.Image,
    Command: [c.Path, ...c.Args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(" "),
    Created: Math.floor(Date.parse(c.Created) / 1000),
    Ports: portsSummary(c),
    Labels: c.Config.Labels ?? {},
    State: c.State.Status,
    Status: statusText(c),
    HostConfig: { NetworkMode: c.HostConfig.NetworkMode || "none" },
    NetworkSettings: { Networks: (networkSettingsView(c) as { Networks: Record<string, unknown> }).Networks },
    Mounts: mountsView(c),
  };
}
