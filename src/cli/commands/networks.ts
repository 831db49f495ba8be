/**
 * `bunker network create|ls|inspect|rm|connect|disconnect|prune`: docker's subcommands, flags
 * and output (IDs and tables as docker prints them).
 */
import { invalidArgument } from "../../core/errors.ts";
import type { CliContext } from "../context.ts";
import { renderFormat, tabwrite } from "../output.ts";

type Opts = Record<string, unknown>;
const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);
const kv = (items: string[]) => Object.fromEntries(items.map((l) => (l.includes("=") ? [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)] : [l, ""])));

/** `IPAMConfig` of an endpoint from `--ip`/`--ip6` (run, create, network connect), or nothing. */
export function endpointIpam(o: Opts): { IPAMConfig?: { IPv4Address?: string; IPv6Address?: string } } {
  if (!o.ip && !o.ip6) return {};
  return { IPAMConfig: { ...(o.ip ? { IPv4Address: String(o.ip) } : {}), ...(o.ip6 ? { IPv6Address: String(o.ip6) } : {}) } };
}

interface NetworkView {
  Id: string;
  Name: string;
  Driver: string;
  Scope: string;
}

/** Run the subcommand. */
export async function networkCommand(ctx: CliContext, o: Opts, sub: string, args: string[]): Promise<number> {
  const client = ctx.client();
  switch (sub) {
    case "create": {
      if (args.length !== 1) throw invalidArgument(`"network create" requires exactly 1 argument`);
      const subnets = list(o.subnet);
      const gateways = list(o.gateway);
      const ranges = list(o.ipRange);
      const aux = kv(list(o.auxAddress));
      const config = subnets.map((s, i) => ({ Subnet: s, ...(gateways[i] ? { Gateway: gateways[i] } : {}), ...(ranges[i] ? { IPRange: ranges[i] } : {}), ...(Object.keys(aux).length ? { AuxiliaryAddresses: aux } : {}) }));
      const r = await client.json<{ Id: string }>("POST", "/networks/create", {
        body: {
          Name: args[0],
          Driver: o.driver ?? "bridge",
          Internal: !!o.internal,
          EnableIPv6: !!o.ipv6,
          Attachable: !!o.attachable,
          IPAM: { Driver: o.ipamDriver ? String(o.ipamDriver) : "default", Config: config, Options: {} },
          Options: kv(list(o.opt)),
          Labels: kv(list(o.label)),
        },
      });
      ctx.out(`${r.Id}\n`);
      return 0;
    }
    case "ls":
    case "list": {
      const nets = await client.json<NetworkView[]>("GET", "/networks");
      nets.sort((a, b) => a.Name.localeCompare(b.Name));
      if (o.quiet) for (const n of nets) ctx.out(`${n.Id.slice(0, 12)}\n`);
      else if (o.format) for (const n of nets) ctx.out(`${renderFormat(String(o.format), { ID: n.Id.slice(0, 12), Name: n.Name, Driver: n.Driver, Scope: n.Scope })}\n`);
      else ctx.out(`${tabwrite(["NETWORK ID\tNAME\tDRIVER\tSCOPE", ...nets.map((n) => `${n.Id.slice(0, 12)}\t${n.Name}\t${n.Driver}\t${n.Scope}`)].join("\n"), 10, 3)}\n`);
      return 0;
    }
    case "inspect": {
      const out = [];
      for (const n of args) out.push(await client.json("GET", `/networks/${n}`));
      if (o.format) for (const v of out) ctx.out(`${renderFormat(String(o.format), v)}\n`);
      else ctx.out(`${JSON.stringify(out, null, 4)}\n`);
      return 0;
    }
    case "rm":
    case "remove": {
      let code = 0;
      for (const n of args) {
        try {
          await client.request("DELETE", `/networks/${n}`);
          ctx.out(`${n}\n`);
        } catch (err) {
          ctx.err(`Error response from daemon: ${err instanceof Error ? err.message : String(err)}\n`);
          code = 1;
        }
      }
      return code;
    }
    case "connect": {
      const [net, container] = args;
      if (!net || !container) throw invalidArgument(`"network connect" requires exactly 2 arguments`);
      const aliases = list(o.alias);
      await client.request("POST", `/networks/${net}/connect`, { body: { Container: container, EndpointConfig: { ...endpointIpam(o), ...(aliases.length ? { Aliases: aliases } : {}) } } });
      return 0;
    }
    case "disconnect": {
      const [net, container] = args;
      if (!net || !container) throw invalidArgument(`"network disconnect" requires exactly 2 arguments`);
      await client.request("POST", `/networks/${net}/disconnect`, { body: { Container: container, Force: !!o.force } });
      return 0;
    }
    case "prune": {
      const r = await client.json<{ NetworksDeleted: string[] | null }>("POST", "/networks/prune");
      if (r.NetworksDeleted?.length) ctx.out(`Deleted Networks:\n${r.NetworksDeleted.map((n) => `${n}\n`).join("")}`);
      return 0;
    }
  }
  throw invalidArgument(`unknown network command: ${sub}`);
}
