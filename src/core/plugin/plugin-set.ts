/**
 * The daemon's loaded plugins: config sections validated up front, init in dependency order,
 * skip-versus-fail bookkeeping, typed lookup by type, and close in reverse order.
 */
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { EngineError, invalidArgument, isNotSupported, messageOf } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Sys } from "../sys/sys.ts";
import { orderPlugins } from "./graph.ts";
import { type AnyRegistration, pluginKey, type PluginInstances, type PluginStatus, type PluginType } from "./types.ts";

/** A registration and where it came from ("builtin" or a module path). */
export interface SourcedRegistration {
  reg: AnyRegistration;
  source: string;
}

/** Options for a plugin set. */
export interface PluginSetOptions {
  registrations: SourcedRegistration[];
  dataRoot: string;
  execRoot: string;
  /** daemon.json's `plugins` object: `<type>.<id>` → raw section. */
  configs?: Record<string, unknown>;
  /** `<type>.<id>` keys whose absence or failure stops the daemon. */
  required?: string[];
  log: Logger;
  sys: Sys;
}

interface Loaded {
  reg: AnyRegistration;
  instance: unknown;
}

/** The loaded plugins of one daemon. */
export class PluginSet {
  private readonly status = new Map<string, PluginStatus>();
  private readonly loaded: Loaded[] = [];
  private readonly order: SourcedRegistration[];
  private readonly parsedConfig = new Map<string, unknown>();

  /**
   * Validate registrations and config sections and compute the init order. Throws (so start-up
   * stops) on duplicate ids, config sections for unknown plugins, invalid sections and cycles.
   */
  constructor(private readonly opts: PluginSetOptions) {
    const seen = new Map<string, string>();
    for (const { reg, source } of opts.registrations) {
      const key = pluginKey(reg);
      const prev = seen.get(key);
      if (prev) throw new EngineError("already-exists", `plugin ${key} is registered twice (${prev} and ${source})`);
      seen.set(key, source);
    }
    for (const key of Object.keys(opts.configs ?? {})) {
      if (!seen.has(key)) throw invalidArgument(`plugins.${key}: no such plugin (known: ${[...seen.keys()].join(", ") || "none"})`);
    }
    for (const key of opts.required ?? []) {
      if (!seen.has(key)) throw invalidArgument(`required-plugins: no such plugin ${key}`);
    }
    for (const { reg } of opts.registrations) {
      const key = pluginKey(reg);
      const raw = opts.configs?.[key];
      if (!reg.config) {
        if (raw !== undefined) throw invalidArgument(`plugins.${key}: this plugin takes no configuration`);
        continue;
      }
      try {
        this.parsedConfig.set(key, raw === undefined ? reg.config.defaults : reg.config.parse(raw));
      } catch (err) {
        throw invalidArgument(`plugins.${key}: ${messageOf(err)}`, err);
      }
    }
    const byReg = new Map(opts.registrations.map((s) => [s.reg, s]));
    this.order = orderPlugins(opts.registrations.map((s) => s.reg)).map((r) => byReg.get(r)!);
  }

  /** Init every plugin in order. Throws when a required plugin (or a dependency) fails. */
  async initAll(): Promise<void> {
    const { log } = this.opts;
    for (const { reg, source } of this.order) {
      const key = pluginKey(reg);
      const record = (status: PluginStatus["status"], reason?: string) => this.status.set(key, { type: reg.type, id: reg.id, status, source, ...(reason ? { reason } : {}) });
      const missing = this.missingDependency(reg);
      if (missing) {
        record(missing.failed ? "failed" : "skipped", missing.reason);
        log.warn("plugin not loaded", { plugin: key, reason: missing.reason });
        continue;
      }
      const root = join(this.opts.dataRoot, key);
      try {
        mkdirSync(root, { recursive: true, mode: 0o700 });
        chmodSync(root, 0o700);
        const instance = await reg.init({
          type: reg.type,
          id: reg.id,
          root,
          dataRoot: this.opts.dataRoot,
          execRoot: this.opts.execRoot,
          config: this.parsedConfig.get(key),
          log: log.with({ plugin: key }),
          sys: this.opts.sys,
          get: <T extends PluginType>(type: T) => {
            if (!(reg.requires ?? []).includes(type)) {
              throw new EngineError("internal", `plugin ${key} did not declare requires: ${type}`);
            }
            return this.instances(type);
          },
        });
        this.loaded.push({ reg, instance });
        record("ok");
        log.debug("plugin loaded", { plugin: key, source });
      } catch (err) {
        if (isNotSupported(err)) {
          const reason = (err as { reason?: string }).reason ?? err.message;
          record("skipped", reason);
          log.info("plugin skipped", { plugin: key, reason });
        } else {
          record("failed", messageOf(err));
          log.error("plugin failed to initialise", { plugin: key, error: messageOf(err) });
        }
      }
    }
    this.checkRequired();
  }

  /** Why `reg` cannot init because of its dependencies, if it cannot. */
  private missingDependency(reg: AnyRegistration): { reason: string; failed: boolean } | undefined {
    for (const type of reg.requires ?? []) {
      const others = [...this.status.values()].filter((s) => s.type === type && !(s.type === reg.type && s.id === reg.id));
      if (others.some((s) => s.status === "ok")) continue;
      const failed = others.filter((s) => s.status === "failed");
      if (failed.length) return { failed: true, reason: `requires ${type}, which failed: ${failed.map((s) => `${s.type}.${s.id}: ${s.reason}`).join("; ")}` };
      return { failed: false, reason: `requires ${type}, and no plugin of that type is available` };
    }
    return undefined;
  }

  /** Fail start-up when a required plugin, or a plugin others depend on, did not load. */
  private checkRequired(): void {
    const required = new Set(this.opts.required ?? []);
    for (const { reg } of this.order) {
      const key = pluginKey(reg);
      const st = this.status.get(key)!;
      if (st.status === "ok") continue;
      const dependedOn = st.status === "failed" && this.order.some((o) => o.reg !== reg && (o.reg.requires ?? []).includes(reg.type));
      if (required.has(key) || (reg.required && st.status === "failed") || dependedOn) {
        throw new EngineError("failed-precondition", `required plugin ${key} did not load: ${st.reason ?? st.status}`);
      }
    }
  }

  /** Initialised instances of `type`, by id. */
  instances<T extends PluginType>(type: T): Map<string, PluginInstances[T]> {
    const out = new Map<string, PluginInstances[T]>();
    for (const { reg, instance } of this.loaded) if (reg.type === type) out.set(reg.id, instance as PluginInstances[T]);
    return out;
  }

  /** Status of every registered plugin, in init order. */
  statuses(): PluginStatus[] {
    return this.order.map(({ reg }) => this.status.get(pluginKey(reg))).filter((s): s is PluginStatus => !!s);
  }

  /** Close initialised plugins in reverse init order; errors are logged, not thrown. */
  async closeAll(): Promise<void> {
    for (const { reg, instance } of this.loaded.splice(0).reverse()) {
      const close = (instance as { close?: () => unknown }).close;
      if (typeof close !== "function") continue;
      try {
        await close.call(instance);
        this.opts.log.debug("plugin closed", { plugin: pluginKey(reg) });
      } catch (err) {
        this.opts.log.error("plugin close failed", { plugin: pluginKey(reg), error: messageOf(err) });
      }
    }
  }
}
