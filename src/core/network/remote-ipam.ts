/**
 * An address manager behind Docker's remote IpamDriver protocol (docker-api.md §5.3): pools and
 * addresses come from the plugin (`RequestPool`, `RequestAddress`, and their releases), so an
 * existing Docker IPAM plugin works with Bunker. Its errors arrive as `{"Error": "…"}`.
 */
import * as v from "valibot";
import { EngineError } from "../errors.ts";
import { type DockerPluginClient, dockerPluginFinder } from "../plugin/docker-plugin.ts";

const PoolReply = v.looseObject({ PoolID: v.string(), Pool: v.string(), Data: v.nullish(v.record(v.string(), v.string())) });
const AddressReply = v.looseObject({ Address: v.string() });
/** Docker's option asking for the gateway address of a pool. */
export const GATEWAY_REQUEST = { RequestAddressType: "com.docker.network.gateway" };

/** One activated IPAM plugin. */
export class RemoteIpam {
  constructor(
    readonly name: string,
    private readonly client: DockerPluginClient,
  ) {}

  private async call<S extends v.GenericSchema>(method: string, body: unknown, schema: S): Promise<v.InferOutput<S>> {
    const res = await this.client.request(method, body);
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new EngineError("unavailable", `plugin ${this.name}: ${method}: response is not JSON (HTTP ${res.status})`);
    }
    const err = (json as { Error?: string }).Error;
    if (err || !res.ok) throw new EngineError("internal", `plugin ${this.name}: ${method}: ${err || `HTTP ${res.status}`}`);
    const parsed = v.safeParse(schema, json);
    if (!parsed.success) throw new EngineError("unavailable", `plugin ${this.name}: ${method}: unexpected response: ${parsed.issues[0].message}`);
    return parsed.output;
  }

  /** A pool: the requested subnet (or the plugin's choice) and optional sub-range. */
  requestPool(pool: string, subPool: string, options: Record<string, string>) {
    return this.call("IpamDriver.RequestPool", { AddressSpace: "LocalDefault", Pool: pool, SubPool: subPool, Options: options, V6: false }, PoolReply);
  }

  async releasePool(poolId: string): Promise<void> {
    await this.call("IpamDriver.ReleasePool", { PoolID: poolId }, v.looseObject({}));
  }

  /** An address (`ip/prefix`): `address` exactly, or the plugin's next one when empty. */
  async requestAddress(poolId: string, address: string, options: Record<string, string> = {}): Promise<string> {
    return (await this.call("IpamDriver.RequestAddress", { PoolID: poolId, Address: address, Options: options }, AddressReply)).Address;
  }

  async releaseAddress(poolId: string, address: string): Promise<void> {
    await this.call("IpamDriver.ReleaseAddress", { PoolID: poolId, Address: address }, v.looseObject({}));
  }
}

/** IPAM plugins by name (moby's discovery), activated once each; undefined when absent. */
export function remoteIpamDrivers(opts: { dirs?: string[]; retryFor?: number } = {}): (name: string) => Promise<RemoteIpam | undefined> {
  return dockerPluginFinder("IpamDriver", (name, client) => new RemoteIpam(name, client), opts);
}
