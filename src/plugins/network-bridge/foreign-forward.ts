/**
 * Coexistence with other firewalls: a filter `forward` base chain that another program owns and
 * whose policy is DROP (dockerd sets iptables-nft's `ip filter FORWARD` to DROP; ufw does the
 * same) drops Bunker's container traffic whatever Bunker's own table accepts, because every base
 * chain on a hook must accept a packet. For each such chain, Bunker appends `iifname BR accept`
 * and `oifname BR accept` for each of its own bridges, marked with a comment naming its table
 * and the bridge, and deletes those marks again when the bridge goes. Appended rules come after
 * the owner's, so an explicit drop the owner wrote still applies: nothing of theirs is weakened,
 * and Bunker's own table keeps isolating its networks.
 */
import { messageOf } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { action, editChain, type ListedChain, listChains, listRules, match, type Rule } from "../../core/network/nftables.ts";
import type { Sys } from "../../core/sys/sys.ts";

/** The comment marking a rule Bunker (table `table`) added for `bridge`. */
const mark = (table: string, bridge: string, dir: "in" | "out") => `bunker ${table} ${bridge} ${dir}`;

/** The foreign forward chains that drop by default (not Bunker's own table). */
export function droppingForwardChains(chains: ListedChain[], ownTable: string): ListedChain[] {
  return chains.filter((c) => c.hook === "forward" && c.policy === "drop" && (c.type ?? "filter") === "filter" && !(c.table === ownTable && (c.family === "ip" || c.family === "ip6")));
}

/**
 * Bring the marks in every dropping foreign forward chain to exactly `bridges`. Errors are logged,
 * not thrown: a foreign table that vanishes between the listing and the edit is not Bunker's fault.
 */
export function acceptBridgesInForeignForward(sys: Sys, ownTable: string, bridges: string[], log: Logger): number {
  let edited = 0;
  let chains: ListedChain[];
  try {
    chains = droppingForwardChains(listChains(sys), ownTable);
  } catch (err) {
    log.warn("cannot list nf_tables chains", { error: messageOf(err) });
    return 0;
  }
  const prefix = `bunker ${ownTable} `;
  for (const c of chains) {
    try {
      const present = new Map<string, bigint>();
      for (const r of listRules(sys, c.family, c.table, c.name)) if (r.comment?.startsWith(prefix)) present.set(r.comment, r.handle);
      const wanted = new Map<string, Rule>();
      for (const br of bridges) {
        wanted.set(mark(ownTable, br, "in"), { chain: c.name, exprs: [...match.iifname(br), action.accept()], comment: mark(ownTable, br, "in") });
        wanted.set(mark(ownTable, br, "out"), { chain: c.name, exprs: [...match.oifname(br), action.accept()], comment: mark(ownTable, br, "out") });
      }
      const add = [...wanted].filter(([k]) => !present.has(k)).map(([, r]) => r);
      const remove = [...present].filter(([k]) => !wanted.has(k)).map(([, h]) => h);
      if (!add.length && !remove.length) continue;
      editChain(sys, c.family, c.table, c.name, add, remove);
      edited++;
      log.info("bridges accepted in a foreign forward chain", { chain: `${c.family} ${c.table} ${c.name}`, added: add.length, removed: remove.length });
    } catch (err) {
      log.warn("cannot edit a foreign forward chain", { chain: `${c.family} ${c.table} ${c.name}`, error: messageOf(err) });
    }
  }
  return edited;
}
