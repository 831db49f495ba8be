/**
 * Registration of the bridge driver as the engine's `network.v1` plugin "bridge". Needs root
 * (netlink writes, nf_tables); without it the plugin is skipped with the reason.
 */
import * as v from "valibot";
import { NotSupportedError } from "../../core/errors.ts";
import { definePlugin } from "../../core/plugin/types.ts";
import { configFrom } from "../../core/validate.ts";
import { BridgeDriver } from "./bridge-driver.ts";

const Config = v.object({
  /** The nf_tables table (family ip; an ip6 one of the same name for IPv6 networks) holding the driver's rules. */
  table: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,32}$/, "must be a short table name")), "bunker"),
  /** Install nf_tables rules (dockerd's --iptables); false leaves the firewall to the user. */
  iptables: v.optional(v.boolean(), true),
  /** Turn on IPv4 forwarding for the bridges (dockerd's --ip-forward). */
  ipForward: v.optional(v.boolean(), true),
});

/** The bridge network driver plugin. */
export const bridgeNetworkPlugin = definePlugin({
  type: "network.v1",
  id: "bridge",
  config: configFrom(Config, { table: "bunker", iptables: true, ipForward: true }),
  async init(ctx) {
    if (process.getuid?.() !== 0) throw new NotSupportedError("the bridge driver needs root (netlink, nf_tables)");
    return new BridgeDriver(ctx.sys, { table: ctx.config.table, iptables: ctx.config.iptables, ipForward: ctx.config.ipForward, log: ctx.log });
  },
});
