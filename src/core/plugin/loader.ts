/**
 * Loads third-party plugin modules from the configured `plugins-dir`. A module is a `.js`, `.mjs`
 * or `.ts` file in that directory, or a subdirectory with an `index.{js,mjs,ts}`. It exports
 * either `registrations` (an array) or a default function that receives the `PluginHostApi` and
 * returns registrations, so it can use the engine's valibot and NotSupportedError without
 * importing engine internals. Every registration is checked before use.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import * as v from "valibot";
import { EngineError, invalidArgument, messageOf, NotSupportedError } from "../errors.ts";
import { configFrom, formatIssues } from "../validate.ts";
import { API_VERSION, VERSION } from "../version.ts";
import type { SourcedRegistration } from "./plugin-set.ts";
import { type AnyRegistration, PLUGIN_TYPES, type PluginHostApi } from "./types.ts";

const MODULE_EXT = [".js", ".mjs", ".ts"];

const fn = v.custom<(...a: unknown[]) => unknown>((x) => typeof x === "function", "must be a function");
const RegistrationSchema = v.object({
  type: v.picklist(PLUGIN_TYPES, `type must be one of: ${PLUGIN_TYPES.join(", ")}`),
  id: v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, "id must match [a-z0-9][a-z0-9_.-]*")),
  requires: v.optional(v.array(v.picklist(PLUGIN_TYPES))),
  required: v.optional(v.boolean()),
  config: v.optional(v.object({ defaults: v.unknown(), parse: fn })),
  init: fn,
});

/** The API handed to third-party module factories. */
export function pluginHostApi(): PluginHostApi {
  return { v, NotSupportedError, configFrom, engineVersion: VERSION, apiVersion: API_VERSION };
}

/** Module files (or directory entry points) in `dir`, sorted by name. */
export function findPluginModules(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith(".")) continue;
    const full = resolve(dir, name);
    const st = statSync(full);
    if (st.isFile() && MODULE_EXT.some((e) => name.endsWith(e)) && !name.endsWith(".d.ts")) out.push(full);
    else if (st.isDirectory()) {
      const index = MODULE_EXT.map((e) => join(full, `index${e}`)).find((p) => existsSync(p));
      if (index) out.push(index);
    }
  }
  return out;
}

/** Import and validate every module in `dir`. A module that cannot load stops start-up, naming it. */
export async function loadPluginModules(dir: string): Promise<SourcedRegistration[]> {
  const out: SourcedRegistration[] = [];
  for (const file of findPluginModules(dir)) {
    let mod: Record<string, unknown>;
    try {
      mod = await import(file);
    } catch (err) {
      throw new EngineError("invalid-argument", `plugin module ${file}: cannot load: ${messageOf(err)}`, { cause: err });
    }
    let regs: unknown;
    if (typeof mod.default === "function") regs = await (mod.default as (h: PluginHostApi) => unknown)(pluginHostApi());
    else regs = mod.registrations ?? mod.default;
    if (!Array.isArray(regs)) regs = [regs];
    for (const [i, raw] of (regs as unknown[]).entries()) {
      const r = v.safeParse(RegistrationSchema, raw);
      if (!r.success) throw invalidArgument(`plugin module ${file}: registration ${i}: ${formatIssues(r.issues)}`);
      out.push({ reg: raw as AnyRegistration, source: file });
    }
  }
  return out;
}
