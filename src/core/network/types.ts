/**
 * The network driver seam (plugin type `network.v1`), modelled on libnetwork's driverapi:
 * networks are created and deleted, and a container's endpoint joins its sandbox (the
 * container's network namespace) and leaves it. Drivers own their host-side state (bridges,
 * veths, rules, reserved ports) and rebuild it after a daemon restart from what `restore` hands
 * them. Records are the shapes `docker network inspect` shows.
 */
import type { IpamPoolConfig } from "./ipam.ts";

/** A network as stored and as `GET /networks/{id}` returns it (without `Containers`). */
export interface NetworkRecord {
  Name: string;
  Id: string;
  Created: string;
  Scope: "local";
  Driver: string;
  EnableIPv4: boolean;
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: IpamPoolConfig[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Options: Record<string, string>;
  Labels: Record<string, string>;
  /** The pool's ID at a remote IPAM driver (Bunker's own field; not shown by inspect). */
  PoolID?: string;
}

/** A published port: container port/proto to host ip:port (HostPort "" = ephemeral). */
export interface PortBinding {
  proto: "tcp" | "udp";
  containerPort: number;
  hostIp: string;
  hostPort: number;
}

/** An endpoint as drivers see it. */
export interface Endpoint {
  id: string;
  containerId: string;
  /** IPv4 address, prefix length and the network's gateway. */
  ip: string;
  prefix: number;
  gateway: string;
  /** IPv6 address, prefix length and gateway, on networks with IPv6 enabled. */
  ip6?: string;
  prefix6?: number;
  gateway6?: string;
  mac: string;
  /** Ports to publish (only on the first network that can publish them). */
  ports: PortBinding[];
}

/** Where an endpoint goes: the container's network namespace and the interface name there. */
export interface Sandbox {
  netnsFd: number;
  /** A path naming the namespace (`/proc/<pid>/ns/net`), Docker's SandboxKey for remote drivers. */
  key: string;
  ifname: string;
  /** Whether this endpoint's gateway becomes the container's default route (the first network's does). */
  defaultRoute: boolean;
}

/** What a driver returns from `join`: the host-side state to remember, and the bound ports. */
export interface JoinResult {
  /** Host-side interface name, if any (kept for `leave` after a daemon restart). */
  hostIf?: string;
  /** Ports with their host port resolved (ephemeral ones chosen). */
  ports: PortBinding[];
}

/** How an endpoint is left. */
export interface LeaveOptions {
  /** The container exited: its namespace and what lives only there are gone already. */
  sandboxGone?: boolean;
  /** A running container being disconnected: its namespace and the endpoint's interface there. */
  sandbox?: { netnsFd: number; ifname: string };
}

/** A network driver. */
export interface NetworkDriver {
  readonly name: string;
  /** True when the network's gateway address lives on this host (the embedded DNS binds it). */
  readonly gatewayOnHost?: boolean;
  /** Create the network's host side (idempotent: also called for existing networks at start). */
  createNetwork(net: NetworkRecord): Promise<void>;
  deleteNetwork(net: NetworkRecord): Promise<void>;
  /** Put the endpoint into the sandbox, configured (address, route, up) and connected. */
  join(net: NetworkRecord, ep: Endpoint, sandbox: Sandbox): Promise<JoinResult>;
  /**
   * Undo `join` (tolerates a sandbox that is already gone). `sandboxGone`: the container exited,
   * so interfaces inside its namespace go with it and need not be removed on the caller's time.
   */
  leave(net: NetworkRecord, ep: Endpoint, hostIf?: string, opts?: LeaveOptions): Promise<void>;
  /** After a daemon restart: an endpoint of a running container, to take back (ports, rules). */
  restoreEndpoint?(net: NetworkRecord, ep: Endpoint, hostIf?: string): Promise<void>;
}
