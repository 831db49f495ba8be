/**
 * Plugin registrations, modelled on containerd's plugin records: a plain object with a type, an
 * id, the types it requires, an optional valibot-backed config section and an `init` that returns
 * the instance. `init` throws NotSupportedError when the host cannot support the plugin.
 */
import type * as v from "valibot";
import type { EventMessage } from "../events/bus.ts";
import type { Logger } from "../log.ts";
import type { NetworkDriver } from "../network/types.ts";
import type { ContainerRuntime } from "../runtime/types.ts";
import type { StorageDriver } from "../storage/driver.ts";
import type { Sys } from "../sys/sys.ts";

/** Receives every engine event: audit trails, forwarding to a collector, metrics. */
export interface EventSink {
  onEvent(event: EventMessage): void | Promise<void>;
  close?(): void | Promise<void>;
}

/**
 * Instance type for each plugin type. Later subsystems add their types here (storage.v1,
 * network.v1, runtime.v1) so registrations and lookups stay fully typed.
 */
export interface PluginInstances {
  "events.v1": EventSink;
  "storage.v1": StorageDriver;
  "runtime.v1": ContainerRuntime;
  "network.v1": NetworkDriver;
}

/** A plugin type such as `events.v1`. */
export type PluginType = keyof PluginInstances;

/** Every plugin type this build knows, for validating third-party registrations. */
export const PLUGIN_TYPES: readonly PluginType[] = ["events.v1", "storage.v1", "runtime.v1", "network.v1"];

/** A plugin's config section: defaults plus a parser (a valibot schema behind it). */
export interface PluginConfig<C> {
  defaults: C;
  /** Validate the raw section from daemon.json; throw with the offending key on error. */
  parse(raw: unknown): C;
}

/** What `init` receives. */
export interface InitContext<C> {
  type: PluginType;
  id: string;
  /** The plugin's own directory, `<data-root>/<type>.<id>`, created with mode 0700. */
  root: string;
  /** The daemon's data root and exec root. */
  dataRoot: string;
  execRoot: string;
  config: C;
  log: Logger;
  /** The system-call seam (the real one in the daemon, a fake in unit tests). */
  sys: Sys;
  /** Instances of a type this plugin `requires`, by id (only those that initialised). */
  get<T extends PluginType>(type: T): Map<string, PluginInstances[T]>;
}

/** A plugin record. */
export interface Registration<T extends PluginType = PluginType, C = unknown> {
  type: T;
  id: string;
  /** Types that must be initialised first. */
  requires?: PluginType[];
  /** When true, a failure of this plugin stops the daemon. */
  required?: boolean;
  config?: PluginConfig<C>;
  init(ctx: InitContext<C>): Promise<PluginInstances[T]>;
}

/** Any registration, whatever its type and config. */
export type AnyRegistration = { [T in PluginType]: Registration<T, any> }[PluginType];

/** Typed identity helper so a registration's config type is inferred from its schema. */
export function definePlugin<T extends PluginType, C>(reg: Registration<T, C>): Registration<T, C> {
  return reg;
}

/** `<type>.<id>`, the key for a plugin's directory and its config section. */
export function pluginKey(reg: { type: string; id: string }): string {
  return `${reg.type}.${reg.id}`;
}

/** How one plugin fared at start-up, for `info` and logs. */
export interface PluginStatus {
  type: PluginType;
  id: string;
  status: "ok" | "skipped" | "failed";
  /** Why it was skipped or failed. */
  reason?: string;
  /** "builtin" or the module file it came from. */
  source: string;
}

/** What third-party plugin modules receive from the engine, so they need not import it. */
export interface PluginHostApi {
  /** The engine's valibot, for config schemas. */
  v: typeof v;
  /** Throw this from `init` to be skipped with a reason. */
  NotSupportedError: new (
    reason: string,
  ) => Error;
  /** Build a PluginConfig from a valibot schema. */
  configFrom<S extends v.GenericSchema>(schema: S, defaults: v.InferOutput<S>): PluginConfig<v.InferOutput<S>>;
  engineVersion: string;
  apiVersion: string;
}
