/**
 * The `filters` query parameter. The Go client sends `{"key":{"value":true}}`; docker-py,
 * dockerode and the swagger docs send `{"key":["value"]}`. Both are accepted, as moby's
 * `filters.FromJSON` does.
 */
import { invalidArgument } from "./errors.ts";

/** Parsed filters: key → set of values. */
export class Filters {
  constructor(readonly values: Map<string, Set<string>> = new Map()) {}

  /** Parse the raw query value; empty or absent gives no filters. Malformed JSON is a 400. */
  static parse(raw: string | null | undefined, accepted?: readonly string[]): Filters {
    const f = new Filters();
    if (!raw) return f;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch {
      throw invalidArgument(`invalid filter: ${raw}`);
    }
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw invalidArgument(`invalid filter: ${raw}`);
    for (const [key, val] of Object.entries(obj)) {
      const set = new Set<string>();
      if (Array.isArray(val)) {
        for (const v of val) {
          if (typeof v !== "string") throw invalidArgument(`invalid filter '${key}': values must be strings`);
          set.add(v);
        }
      } else if (typeof val === "object" && val !== null) {
        for (const [v, on] of Object.entries(val)) if (on === true) set.add(v);
      } else {
        throw invalidArgument(`invalid filter '${key}'`);
      }
      f.values.set(key, set);
    }
    if (accepted) for (const key of f.values.keys()) if (!accepted.includes(key)) throw invalidArgument(`invalid filter '${key}'`);
    return f;
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  get(key: string): string[] {
    return [...(this.values.get(key) ?? [])];
  }

  /** True when `key` is absent or `value` is one of its values. */
  exactMatch(key: string, value: string): boolean {
    const set = this.values.get(key);
    return !set || set.size === 0 || set.has(value);
  }

  /** True when `key` is absent, or a value equals `source` or is a prefix of it (IDs). */
  fuzzyMatch(key: string, source: string): boolean {
    const set = this.values.get(key);
    if (!set || set.size === 0) return true;
    for (const v of set) if (source === v || (v.length > 0 && source.startsWith(v))) return true;
    return false;
  }

  /** `label=key` or `label=key=value` against a label map. */
  matchKV(key: string, labels: Record<string, string>): boolean {
    const set = this.values.get(key);
    if (!set || set.size === 0) return true;
    for (const v of set) {
      const eq = v.indexOf("=");
      const k = eq < 0 ? v : v.slice(0, eq);
      if (!(k in labels)) return false;
      if (eq >= 0 && labels[k] !== v.slice(eq + 1)) return false;
    }
    return true;
  }
}
