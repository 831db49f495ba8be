/**
 * valibot helpers shared by config files and API bodies: parse or throw an invalid-argument error
 * whose message names the offending key path.
 */
import * as v from "valibot";
import { invalidArgument } from "./errors.ts";

/** `a.b[2].c: message` for each issue, joined with "; ". */
export function formatIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues
    .map((issue) => {
      const path = v.getDotPath(issue);
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join("; ");
}

/** Parse `input` with `schema`; throw invalid-argument naming the keys on failure. */
export function parseOrThrow<S extends v.GenericSchema>(schema: S, input: unknown, what: string): v.InferOutput<S> {
  const r = v.safeParse(schema, input);
  if (!r.success) throw invalidArgument(`${what}: ${formatIssues(r.issues)}`);
  return r.output;
}

/**
 * `input`'s top-level keys renamed to the schema's spelling when they differ only in case
 * (`detachKeys` → `DetachKeys`): Go's encoding/json matches field names case-insensitively, so
 * dockerd accepts such bodies and clients send them (docker-py's config-file detach keys).
 */
export function foldKeys(input: unknown, entries: Record<string, unknown>): unknown {
  if (!input || typeof input !== "object" || Array.isArray(input)) return input;
  const byLower = new Map(Object.keys(entries).map((k) => [k.toLowerCase(), k]));
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(input)) {
    const canonical = k in entries ? k : (byLower.get(k.toLowerCase()) ?? k);
    if (!(canonical in out) || canonical === k) out[canonical] = val;
  }
  return out;
}

/** A config section: defaults plus a parser (the shape of a plugin's `PluginConfig`). */
export interface ConfigSection<C> {
  defaults: C;
  parse(raw: unknown): C;
}

/** A plugin config section backed by a valibot schema. */
export function configFrom<S extends v.GenericSchema>(schema: S, defaults: v.InferOutput<S>): ConfigSection<v.InferOutput<S>> {
  return {
    defaults,
    parse(raw) {
      const r = v.safeParse(schema, raw);
      if (!r.success) throw invalidArgument(formatIssues(r.issues));
      return r.output;
    },
  };
}
