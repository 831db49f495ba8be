/**
 * Init order for plugins: a plugin comes after every plugin whose type it requires. Ties keep
 * registration order. A cycle is an error that names every plugin on it.
 */
import { EngineError } from "../errors.ts";
import { pluginKey, type PluginType } from "./types.ts";

/** The fields ordering needs. */
export interface Node {
  type: PluginType;
  id: string;
  requires?: PluginType[];
}

/** Return `nodes` in dependency order; throws failed-precondition naming the cycle. */
export function orderPlugins<N extends Node>(nodes: readonly N[]): N[] {
  const ordered: N[] = [];
  const state = new Map<N, "visiting" | "done">();
  const stack: N[] = [];
  const deps = (n: N) => nodes.filter((m) => m !== n && (n.requires ?? []).includes(m.type));
  const visit = (n: N) => {
    const s = state.get(n);
    if (s === "done") return;
    if (s === "visiting") {
      const cycle = [...stack.slice(stack.indexOf(n)), n].map(pluginKey).join(" -> ");
      throw new EngineError("failed-precondition", `plugin dependency cycle: ${cycle}`);
    }
    state.set(n, "visiting");
    stack.push(n);
    for (const d of deps(n)) visit(d);
    stack.pop();
    state.set(n, "done");
    ordered.push(n);
  };
  for (const n of nodes) visit(n);
  return ordered;
}
