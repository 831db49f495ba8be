/** Environment lists (`KEY=value`) as Docker merges them. */

/** Merge `KEY=value` lists: later ones override earlier keys, order of first appearance kept. */
export function mergeEnv(...lists: (string[] | null | undefined)[]): string[] {
  const out = new Map<string, string>();
  for (const l of lists) for (const e of l ?? []) out.set(e.includes("=") ? e.slice(0, e.indexOf("=")) : e, e);
  return [...out.values()];
}
