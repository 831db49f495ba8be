/**
 * A container's network settings as `docker inspect` shows them (per network, and the ports), and
 * what a request asks for on a network.
 */

/** A container's settings on one network, as `docker inspect` shows them. */
export interface EndpointSettings {
  IPAMConfig: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] } | null;
  Links: string[] | null;
  Aliases: string[] | null;
  MacAddress: string;
  /** The MAC address the request asked for (not shown by Docker; MacAddress shows it while connected). */
  RequestedMac?: string;
  /** The IPv4 address of the last run: asked for again at the next start, while it is free (as Docker keeps a container's address). */
  LastIPAddress?: string;
  DriverOpts: Record<string, string> | null;
  GwPriority: number;
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  IPv6Gateway: string;
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
  DNSNames: string[] | null;
  /** Host-side interface (not shown by Docker; kept so `leave` works after a restart). */
  HostIf?: string;
  /** The endpoint's interface in the container (not shown by Docker; for a disconnect). */
  IfName?: string;
}

/** What a request asks of a container's endpoint on a network (`EndpointsConfig`, connect). */
export interface EndpointRequest {
  IPAMConfig?: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] } | null;
  Aliases?: string[] | null;
  Links?: string[] | null;
  /** A MAC address for the endpoint's interface (default: one derived from its IPv4 address). */
  MacAddress?: string | null;
  /** Options for the network driver, kept and shown by inspect. */
  DriverOpts?: Record<string, string> | null;
}

/** The network part of a container record. */
export interface ContainerNetworking {
  Networks: Record<string, EndpointSettings>;
  /** "80/tcp" → bindings (null: exposed, not published), as Docker shows them. */
  Ports: Record<string, { HostIp: string; HostPort: string }[] | null>;
  SandboxKey: string;
}
