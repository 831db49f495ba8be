/**
 * nf_tables through netlink (no `nft` or `iptables` process): a table described as chains and
 * rules made of expressions, installed in one atomic batch that first drops the previous copy
 * of the table. The whole table is regenerated from the engine's state on every change, so a
 * daemon that crashed and restarts converges by installing it again, and a failed update leaves
 * the previous rules in place (the kernel applies a batch entirely or not at all).
 */
import type { Sys } from "../sys/sys.ts";
import { type Attr, be, decodeAttrs, encodeMessage, le, type Message, NETLINK_NETFILTER, NetlinkSocket, nla, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_ECHO, NLM_F_REQUEST } from "./netlink.ts";
import { ipBytes } from "./rtnl.ts";
import { concatBytes } from "../bytes.ts";
import { ipv6Bytes, isIPv6, maskBytes6 } from "./ipv6.ts";

const NFNL_SUBSYS_NFTABLES = 10;
const NFNL_MSG_BATCH_BEGIN = 16;
const NFNL_MSG_BATCH_END = 17;
const NFT_MSG_NEWTABLE = 0;
const NFT_MSG_DELTABLE = 2;
const NFT_MSG_NEWCHAIN = 3;
const NFT_MSG_GETCHAIN = 4;
const NFT_MSG_NEWRULE = 6;
const NFT_MSG_GETRULE = 7;
const NFT_MSG_DELRULE = 8;
const NFPROTO_IPV4 = 2;
const NFPROTO_IPV6 = 10;
const NFPROTO_INET = 1;
const FAMILY = { ip: NFPROTO_IPV4, ip6: NFPROTO_IPV6, inet: NFPROTO_INET } as const;
/** A table family Bunker reads or edits. */
export type Family = keyof typeof FAMILY;
const msgType = (m: number) => (NFNL_SUBSYS_NFTABLES << 8) | m;

/** Netfilter hooks. */
export const HOOK = { prerouting: 0, input: 1, forward: 2, output: 3, postrouting: 4 } as const;

/** A chain: base chains have a hook, a type and a priority. */
export interface Chain {
  name: string;
  hook?: keyof typeof HOOK;
  type?: "nat" | "filter";
  priority?: number;
}

/** A chain as the kernel lists it (any table, any owner). */
export interface ListedChain {
  family: Family;
  table: string;
  name: string;
  /** Base chains only. */
  hook?: keyof typeof HOOK;
  type?: string;
  priority?: number;
  /** Base chains only: the verdict for packets no rule decides. */
  policy?: "accept" | "drop";
}

/** A rule as the kernel lists it: its handle and its comment (nft's user data). */
export interface ListedRule {
  handle: bigint;
  comment?: string;
}

/** One expression: its kernel name and attributes. */
export interface Expr {
  name: string;
  attrs: Attr[];
}

/** A rule in a chain; `comment` is kept as user data (shown by `nft list`). */
export interface Rule {
  chain: string;
  exprs: Expr[];
  comment?: string;
  /**
   * What identifies the rule: two rules with the same key are the same rule. A builder that
   * knows its rules' inputs sets it (cheap); otherwise the expressions are serialised.
   */
  key?: string;
}

/** A table as installed: the ruleset and, per chain, the kernel's handles of its rules in order. */
export interface Installed {
  rs: Ruleset;
  handles: Map<string, bigint[]>;
}

/** A whole table. */
export interface Ruleset {
  table: string;
  /** The table's family: `ip` (the default) or `ip6`. */
  family?: keyof typeof FAMILY;
  chains: Chain[];
  rules: Rule[];
}

// Registers: the verdict register and two 16-byte data registers.
const REG_VERDICT = 0;
const REG_1 = 1;
const REG_2 = 2;
const NFT_CMP_EQ = 0;
const NFT_CMP_NEQ = 1;
const NF_DROP = 0;
const NF_ACCEPT = 1;
const NFT_JUMP = -3;
const IPS_DST_NAT = 0x20;

const data = (type: number, bytes: Uint8Array) => nla.nest(type, nla.bytes(1 /* NFTA_DATA_VALUE */, bytes));
const cmp = (op: number, bytes: Uint8Array, reg = REG_1): Expr => ({ name: "cmp", attrs: [nla.be32(1, reg), nla.be32(2, op), data(3, bytes)] });
const meta = (key: number, reg = REG_1): Expr => ({ name: "meta", attrs: [nla.be32(1, reg), nla.be32(2, key)] });
const payload = (base: number, offset: number, len: number, reg = REG_1): Expr => ({ name: "payload", attrs: [nla.be32(1, reg), nla.be32(2, base), nla.be32(3, offset), nla.be32(4, len)] });
const bitwiseAnd = (len: number, mask: Uint8Array): Expr => ({ name: "bitwise", attrs: [nla.be32(1, REG_1), nla.be32(2, REG_1), nla.be32(3, len), data(4, mask), data(5, new Uint8Array(len))] });
const ifname = (name: string) => {
  const b = new Uint8Array(16);
  b.set(new TextEncoder().encode(name));
  return b;
};
const prefixBytes = (cidr: string) => {
  const [ip, p] = cidr.split("/");
  const prefix = Number(p);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return { net: ipBytes(ip!), mask: be(4, mask) };
};

/** Expression builders, named after the `nft` syntax they stand for. */
export const match = {
  /** `iifname NAME` / `iifname != NAME`. */
  iifname: (name: string, eq = true): Expr[] => [meta(6), cmp(eq ? NFT_CMP_EQ : NFT_CMP_NEQ, ifname(name))],
  /** `oifname NAME` / `oifname != NAME`. */
  oifname: (name: string, eq = true): Expr[] => [meta(7), cmp(eq ? NFT_CMP_EQ : NFT_CMP_NEQ, ifname(name))],
  /** `ip saddr CIDR` (`ip6 saddr CIDR` for an IPv6 one, in an ip6 table). */
  saddr: (cidr: string): Expr[] => {
    if (isIPv6(cidr)) {
      const [ip, p] = cidr.split("/");
      return [payload(1, 8, 16), bitwiseAnd(16, maskBytes6(Number(p))), cmp(NFT_CMP_EQ, ipv6Bytes(ip!))];
    }
    const { net, mask } = prefixBytes(cidr);
    return [payload(1, 12, 4), bitwiseAnd(4, mask), cmp(NFT_CMP_EQ, net)];
  },
  /** `ip daddr CIDR` (`ip6 daddr CIDR`), or `!= CIDR` with `eq` false. */
  daddrIn: (cidr: string, eq = true): Expr[] => {
    const op = eq ? NFT_CMP_EQ : NFT_CMP_NEQ;
    if (isIPv6(cidr)) {
      const [ip, p] = cidr.split("/");
      return [payload(1, 24, 16), bitwiseAnd(16, maskBytes6(Number(p))), cmp(op, ipv6Bytes(ip!))];
    }
    const { net, mask } = prefixBytes(cidr);
    return [payload(1, 16, 4), bitwiseAnd(4, mask), cmp(op, net)];
  },
  /** `ip daddr != IP` (`ip6 daddr != IP`). */
  daddrNot: (ip: string): Expr[] => (isIPv6(ip) ? [payload(1, 24, 16), cmp(NFT_CMP_NEQ, ipv6Bytes(ip))] : [payload(1, 16, 4), cmp(NFT_CMP_NEQ, ipBytes(ip))]),
  /** `ip daddr IP` (`ip6 daddr IP` for an IPv6 one, in an ip6 table). */
  daddr: (ip: string): Expr[] => (isIPv6(ip) ? [payload(1, 24, 16), cmp(NFT_CMP_EQ, ipv6Bytes(ip))] : [payload(1, 16, 4), cmp(NFT_CMP_EQ, ipBytes(ip))]),
  /** `meta l4proto tcp|udp th dport PORT`. */
  dport: (proto: "tcp" | "udp", port: number): Expr[] => [meta(16), cmp(NFT_CMP_EQ, Uint8Array.of(proto === "tcp" ? 6 : 17)), payload(2, 2, 2), cmp(NFT_CMP_EQ, be(2, port))],
  /** `fib daddr type local`. */
  daddrLocal: (): Expr[] => [{ name: "fib", attrs: [nla.be32(1, REG_1), nla.be32(2, 3 /* ADDRTYPE */), nla.be32(3, 2 /* F_DADDR */)] }, cmp(NFT_CMP_EQ, le(4, 2 /* RTN_LOCAL */))],
  /** `ct status dnat`. */
  ctDnat: (): Expr[] => [{ name: "ct", attrs: [nla.be32(1, REG_1), nla.be32(2, 2 /* NFT_CT_STATUS */)] }, bitwiseAnd(4, le(4, IPS_DST_NAT)), cmp(NFT_CMP_NEQ, new Uint8Array(4))],
};

const verdict = (code: number, chain?: string): Expr => ({
  name: "immediate",
  attrs: [nla.be32(1, REG_VERDICT), nla.nest(2, nla.nest(2 /* NFTA_DATA_VERDICT */, nla.be32(1, code), ...(chain ? [nla.str(2, chain)] : [])))],
});

/** Statements. */
export const action = {
  accept: (): Expr => verdict(NF_ACCEPT),
  drop: (): Expr => verdict(NF_DROP),
  jump: (chain: string): Expr => verdict(NFT_JUMP, chain),
  masquerade: (): Expr => ({ name: "masq", attrs: [] }),
  /** `dnat to IP:PORT` (`dnat to [IP]:PORT` for an IPv6 one, in an ip6 table). */
  dnat: (ip: string, port: number): Expr[] => {
    const six = isIPv6(ip);
    return [
      { name: "immediate", attrs: [nla.be32(1, REG_1), data(2, six ? ipv6Bytes(ip) : ipBytes(ip))] },
      { name: "immediate", attrs: [nla.be32(1, REG_2), data(2, be(2, port))] },
      { name: "nat", attrs: [nla.be32(1, 1 /* DNAT */), nla.be32(2, six ? NFPROTO_IPV6 : NFPROTO_IPV4), nla.be32(3, REG_1), nla.be32(5, REG_2)] },
    ];
  },
};

function nfgen(family: number, resId = 0): Uint8Array {
  const b = new Uint8Array(4);
  b[0] = family;
  b.set(be(2, resId), 2);
  return b;
}

/** One message of a batch. */
interface Op {
  type: number;
  flags: number;
  attrs: Attr[];
}

/**
 * An nf_tables batch of `ops` for `family`, numbered from `seq0`. Only the last message asks for
 * an acknowledgement: the kernel reports an error on any message anyway, and an ACK per message
 * (hundreds of rules) overflows the socket's receive buffer (ENOBUFS) before it is read.
 */
function encodeBatch(family: number, ops: Op[], seq0: number): { data: Uint8Array; lastSeq: number } {
  let seq = seq0;
  const msgs = [encodeMessage(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, nfgen(0, NFNL_SUBSYS_NFTABLES), [])];
  ops.forEach((o, i) => msgs.push(encodeMessage(msgType(o.type), NLM_F_REQUEST | o.flags | (i === ops.length - 1 ? NLM_F_ACK : 0), ++seq, nfgen(family), o.attrs)));
  const lastSeq = seq;
  msgs.push(encodeMessage(NFNL_MSG_BATCH_END, NLM_F_REQUEST, ++seq, nfgen(0, NFNL_SUBSYS_NFTABLES), []));
  return { data: concatBytes(msgs), lastSeq };
}

/** Send a batch on a fresh socket and wait for its acknowledgement; answers what the kernel echoed. */
function sendBatch(sys: Sys, batch: { data: Uint8Array; lastSeq: number }, what: string): Message[] {
  const sock = NetlinkSocket.open(sys, NETLINK_NETFILTER);
  try {
    sock.fitSendBuffer(batch.data.length);
    return sock.request(batch.data, batch.lastSeq, what, "nf_tables");
  } finally {
    sock.close();
  }
}

/** A NEWRULE message's attributes (the rule appended to its chain). */
function ruleAttrs(table: string, r: Rule): Attr[] {
  const attrs: Attr[] = [nla.str(1, table), nla.str(2, r.chain), nla.nest(4, ...r.exprs.map(exprAttr))];
  if (r.comment) attrs.push(nla.bytes(7, userdataComment(r.comment)));
  return attrs;
}

function exprAttr(e: Expr): Attr {
  const attrs: Attr[] = [nla.str(1, e.name)];
  if (e.attrs.length) attrs.push(nla.nest(2, ...e.attrs));
  return nla.nest(1 /* NFTA_LIST_ELEM */, ...attrs);
}

const ruleKey = (r: Rule) => r.key ?? JSON.stringify(r.exprs, (_k, v) => (v instanceof Uint8Array ? [...v] : v)) + (r.comment ?? "");

/** A ruleset's rules by chain, in order. */
function byChain(rs: Ruleset): Map<string, Rule[]> {
  const out = new Map<string, Rule[]>();
  for (const r of rs.rules) {
    const list = out.get(r.chain);
    if (list) list.push(r);
    else out.set(r.chain, [r]);
  }
  return out;
}

/** Keys of one chain's rules, each made unique by its occurrence (`key#n`). */
function chainKeys(rules: Rule[] = []): string[] {
  const seen = new Map<string, number>();
  return rules.map((r) => {
    const k = ruleKey(r);
    const n = seen.get(k) ?? 0;
    seen.set(k, n + 1);
    return `${k}#${n}`;
  });
}

/** A planned change: the batch, and the chains whose handles must be read back afterwards. */
export interface RulesetPlan {
  data: Uint8Array;
  lastSeq: number;
  /** Chains to list again for their handles (flushed ones; every chain after a full install). */
  reread: string[];
  /** Chains changed in place: their handles, with a hole for each new rule... */
  patched: Map<string, (bigint | undefined)[]>;
  /** ...filled in this order by the kernel's echoes of the new rules (NLM_F_ECHO). */
  echoed: { chain: string; index: number }[];
}

/**
 * The batch that brings table `rs.table` (family `rs.family`, default ip) from `previous` (what
 * this process installed last, with the rules' handles) to `rs`. When only rules changed, each
 * changed chain gets just its differences: rules that went are deleted by handle and new ones
 * are inserted next to the rule they follow, so the kernel's work (and the batch) grows with the
 * change, not with the table; a chain whose surviving rules changed order is flushed and
 * refilled. Base chains and hooks stay in place (a new nat hook costs an RCU grace period,
 * 10-25 ms measured here). Otherwise the table is dropped and made again. `remove` drops it.
 * Undefined: nothing to do.
 */
export function encodeRuleset(rs: Ruleset, seq0: number, remove = false, previous?: Installed): RulesetPlan | undefined {
  const ops: Op[] = [];
  const add = (type: number, flags: number, attrs: Attr[]) => ops.push({ type, flags, attrs });
  const newRule = (r: Rule, flags = NLM_F_APPEND, after?: bigint) => add(NFT_MSG_NEWRULE, NLM_F_CREATE | flags, [...ruleAttrs(rs.table, r), ...(after !== undefined ? [nla.bytes(6 /* NFTA_RULE_POSITION */, be64(after))] : [])]);
  const patched = new Map<string, (bigint | undefined)[]>();
  const echoed: { chain: string; index: number }[] = [];
  const table = nla.str(1, rs.table);
  const prev = previous?.rs;
  const sameChains = !remove && prev && prev.table === rs.table && prev.family === rs.family && JSON.stringify(prev.chains) === JSON.stringify(rs.chains);
  const reread: string[] = [];
  if (sameChains) {
    const oldByChain = byChain(prev);
    const newByChain = byChain(rs);
    for (const c of rs.chains) {
      const newRules = newByChain.get(c.name) ?? [];
      const oldKeys = chainKeys(oldByChain.get(c.name));
      const newKeys = chainKeys(newRules);
      if (oldKeys.length === newKeys.length && oldKeys.every((k, i) => k === newKeys[i])) continue;
      const handles = previous.handles.get(c.name);
      const oldSet = new Set(oldKeys);
      const newSet = new Set(newKeys);
      const keptOld = oldKeys.filter((k) => newSet.has(k));
      const keptNew = newKeys.filter((k) => oldSet.has(k));
      if (!handles || handles.length !== oldKeys.length || keptOld.some((k, i) => k !== keptNew[i])) {
        add(NFT_MSG_DELRULE, 0, [nla.str(1, rs.table), nla.str(2, c.name)]); // flush the chain
        for (const r of newRules) newRule(r);
        reread.push(c.name);
        continue;
      }
      {
        oldKeys.forEach((k, i) => {
          if (!newSet.has(k)) add(NFT_MSG_DELRULE, 0, [nla.str(1, rs.table), nla.str(2, c.name), nla.bytes(3, be64(handles[i]!))]);
        });
        const handleOf = new Map(oldKeys.map((k, i) => [k, handles[i]!]));
        // Runs of new rules: each run goes after the kept rule before it (or at the head),
        // inserted last-first so that every insert lands right after the same anchor.
        let anchor: bigint | undefined;
        let run: number[] = [];
        const flush = () => {
          for (const i of run.reverse()) {
            newRule(newRules[i]!, anchor === undefined ? NLM_F_ECHO : NLM_F_APPEND | NLM_F_ECHO, anchor);
            echoed.push({ chain: c.name, index: i });
          }
          run = [];
        };
        newKeys.forEach((k, i) => {
          if (oldSet.has(k)) {
            flush();
            anchor = handleOf.get(k);
          } else run.push(i);
        });
        flush();
        patched.set(
          c.name,
          newKeys.map((k) => handleOf.get(k)),
        );
      }
    }
    if (!ops.length) return undefined;
  } else {
    add(NFT_MSG_NEWTABLE, NLM_F_CREATE, [table]); // so that the delete below never fails
    add(NFT_MSG_DELTABLE, 0, [table]);
  }
  if (!remove && !sameChains) {
    add(NFT_MSG_NEWTABLE, NLM_F_CREATE, [table]);
    for (const c of rs.chains) {
      const attrs: Attr[] = [nla.str(1, rs.table), nla.str(3, c.name)];
      if (c.hook) {
        attrs.push(nla.nest(4, nla.be32(1, HOOK[c.hook]), nla.be32(2, c.priority ?? 0)));
        attrs.push(nla.str(7, c.type ?? "filter"));
        attrs.push(nla.be32(5, NF_ACCEPT));
      }
      add(NFT_MSG_NEWCHAIN, NLM_F_CREATE, attrs);
    }
    for (const r of rs.rules) newRule(r);
    reread.push(...rs.chains.map((c) => c.name));
  }
  return { ...encodeBatch(FAMILY[rs.family ?? "ip"], ops, seq0), reread, patched, echoed };
}

/** nftables' user-data TLV for a rule comment (type 0, length, NUL-terminated text). */
function userdataComment(text: string): Uint8Array {
  const t = new TextEncoder().encode(text.slice(0, 127) + "\0");
  return Uint8Array.of(0, t.length, ...t);
}

/** The comment text in a rule's user data (nftables' TLV type 0), if any. */
function commentOf(udata: Uint8Array | undefined): string | undefined {
  let off = 0;
  while (udata && off + 2 <= udata.length) {
    const type = udata[off]!;
    const len = udata[off + 1]!;
    if (type === 0)
      return Buffer.from(udata.subarray(off + 2, off + 2 + len))
        .toString("latin1")
        .replace(/\0.*$/s, "");
    off += 2 + len;
  }
  return undefined;
}

const str = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString("latin1").replace(/\0.*$/s, "") : "");
const beView = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const familyName = (n: number): Family | undefined => (Object.entries(FAMILY) as [Family, number][]).find(([, v]) => v === n)?.[0];

/** Every chain of the families Bunker knows (ip, ip6, inet), whoever made it. */
export function listChains(sys: Sys): ListedChain[] {
  const sock = NetlinkSocket.open(sys, NETLINK_NETFILTER);
  try {
    const seq = sock.nextSeq();
    const msg = encodeMessage(msgType(NFT_MSG_GETCHAIN), NLM_F_REQUEST | NLM_F_DUMP, seq, nfgen(0), []);
    const out: ListedChain[] = [];
    for (const m of sock.request(msg, seq, "nftables chains", "nf_tables")) {
      const family = familyName(m.payload[0]!);
      if (!family) continue;
      const a = decodeAttrs(m.payload.subarray(4));
      const c: ListedChain = { family, table: str(a.get(1)), name: str(a.get(3)) };
      const hook = a.get(4);
      if (hook) {
        const h = decodeAttrs(hook);
        const num = h.get(1) && beView(h.get(1)!).getUint32(0);
        c.hook = (Object.entries(HOOK) as [keyof typeof HOOK, number][]).find(([, v]) => v === num)?.[0];
        if (h.get(2)) c.priority = beView(h.get(2)!).getInt32(0);
      }
      if (a.get(7)) c.type = str(a.get(7));
      if (a.get(5)) c.policy = beView(a.get(5)!).getUint32(0) === NF_DROP ? "drop" : "accept";
      out.push(c);
    }
    return out;
  } finally {
    sock.close();
  }
}

/** The rules of one chain, with their handles and comments. */
export function listRules(sys: Sys, family: Family, table: string, chain: string): ListedRule[] {
  const sock = NetlinkSocket.open(sys, NETLINK_NETFILTER);
  try {
    const seq = sock.nextSeq();
    const msg = encodeMessage(msgType(NFT_MSG_GETRULE), NLM_F_REQUEST | NLM_F_DUMP, seq, nfgen(FAMILY[family]), [nla.str(1, table), nla.str(2, chain)]);
    const out: ListedRule[] = [];
    for (const m of sock.request(msg, seq, `nftables rules of ${family} ${table} ${chain}`, "nf_tables")) {
      const a = decodeAttrs(m.payload.subarray(4));
      if (str(a.get(1)) !== table || str(a.get(2)) !== chain || !a.get(3)) continue;
      const comment = commentOf(a.get(7));
      out.push({ handle: beView(a.get(3)!).getBigUint64(0), ...(comment !== undefined ? { comment } : {}) });
    }
    return out;
  } finally {
    sock.close();
  }
}

/**
 * Append `add` to and delete the rules with handles `remove` from one chain of a table that
 * Bunker does not own, in one atomic batch (nothing else in that table is touched).
 */
export function editChain(sys: Sys, family: Family, table: string, chain: string, add: Rule[], remove: bigint[]): void {
  if (!add.length && !remove.length) return;
  const ops: Op[] = remove.map((h) => ({ type: NFT_MSG_DELRULE, flags: 0, attrs: [nla.str(1, table), nla.str(2, chain), nla.bytes(3, be64(h))] }));
  for (const r of add) ops.push({ type: NFT_MSG_NEWRULE, flags: NLM_F_CREATE | NLM_F_APPEND, attrs: ruleAttrs(table, { ...r, chain }) });
  sendBatch(sys, encodeBatch(FAMILY[family], ops, 1), `nftables chain ${family} ${table} ${chain}`);
}

function be64(n: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n);
  return b;
}

/**
 * Install `rs` atomically. With `previous` (what this process installed last) only the
 * differences are sent, and nothing when there are none. Answers what is installed now.
 */
export function applyRuleset(sys: Sys, rs: Ruleset, previous?: Installed): Installed {
  const plan = encodeRuleset(rs, 1, false, previous); // a fresh socket: its sequence numbers start anywhere
  if (!plan) return { rs, handles: previous!.handles };
  const replies = sendBatch(sys, plan, `nftables table ${rs.family ?? "ip"} ${rs.table}`);
  const handles = new Map(previous?.handles);
  const family = rs.family ?? "ip";
  const echoes = replies.filter((m) => m.type === msgType(NFT_MSG_NEWRULE)).map((m) => decodeAttrs(m.payload.subarray(4)).get(3));
  plan.echoed.forEach((e, i) => {
    const h = echoes[i];
    if (h) plan.patched.get(e.chain)![e.index] = beView(h).getBigUint64(0);
  });
  for (const [c, list] of plan.patched) {
    if (list.every((h) => h !== undefined)) handles.set(c, list as bigint[]);
    else plan.reread.push(c); // an echo went missing: ask the kernel
  }
  for (const c of plan.reread) {
    const listed = listRules(sys, family, rs.table, c).map((r) => r.handle);
    // Someone else edited the table: without trustworthy handles the next change flushes the chain.
    if (listed.length === rs.rules.filter((r) => r.chain === c).length) handles.set(c, listed);
    else handles.delete(c);
  }
  return { rs, handles };
}

/** Remove table `name` of `family` (no error when it is absent). */
export function removeTable(sys: Sys, name: string, family: Family = "ip"): void {
  sendBatch(sys, encodeRuleset({ table: name, family, chains: [], rules: [] }, 1, true)!, `nftables table ${family} ${name}`);
}
