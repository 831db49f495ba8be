/**
 * valibot helpers shared by config files and API bodies: parse or throw an invalid-argument error
 * whose message names the offending key path.
 */
import * as v from "valibot";
import { invalidArgument } from "./errors.ts";
import type { PluginConfig } from "./plugin/types.ts";

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

/** A plugin config section backed by a valibot schema. */
export function configFrom<S extends v.GenericSchema>(schema: S, defaults: v.InferOutput<S>): PluginConfig<v.InferOutput<S>> {
  return {
    defaults,
    parse(raw) {
      const r = v.safeParse(schema, raw);
      if (!r.success) throw invalidArgument(formatIssues(r.issues));
      return r.output;
    },
  };
}
