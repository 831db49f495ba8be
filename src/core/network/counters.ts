/**
 * Interface counters of a container for `stats` (Docker's `networks` object), read from
 * `/proc/<pid>/net/dev`, which shows the network namespace of process `pid`. Loopback is left
 * out, as Docker does.
 */
import { readFileSync } from "node:fs";

/** Docker's per-interface counters. */
export interface InterfaceCounters {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
}

/** Parse a `/proc/net/dev` text. */
export function parseNetDev(text: string): Record<string, InterfaceCounters> {
  const out: Record<string, InterfaceCounters> = {};
  for (const line of text.split("\n").slice(2)) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === "lo") continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    out[m[1]!] = { rx_bytes: f[0]!, rx_packets: f[1]!, rx_errors: f[2]!, rx_dropped: f[3]!, tx_bytes: f[8]!, tx_packets: f[9]!, tx_errors: f[10]!, tx_dropped: f[11]! };
  }
  return out;
}

/** The counters of the namespace `pid` is in; undefined when it is gone. */
export function interfaceCounters(pid: number): Record<string, InterfaceCounters> | undefined {
  try {
    return parseNetDev(readFileSync(`/proc/${pid}/net/dev`, "utf8"));
  } catch {
    return undefined;
  }
}
