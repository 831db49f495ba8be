/**
 * What every client command gets: the parsed global flags, a lazily created EngineClient, and
 * output streams (so tests can capture them).
 */
import { EngineClient } from "../core/client/engine-client.ts";

/** Global client flags, as docker names them. */
export interface GlobalFlags {
  host?: string | string[];
  tlsverify?: boolean;
  tlscacert?: string;
  debug?: boolean;
}

/** Shared state for a CLI invocation. */
export interface CliContext {
  flags: GlobalFlags;
  client(): EngineClient;
  out(text: string): void;
  err(text: string): void;
}

/** The default context writing to stdout/stderr. */
export function createCliContext(flags: GlobalFlags): CliContext {
  let client: EngineClient | undefined;
  const host = Array.isArray(flags.host) ? flags.host.at(-1) : flags.host;
  return {
    flags,
    client: () => (client ??= new EngineClient({ ...(host ? { host } : {}), ...(flags.tlsverify ? { tlsVerify: true } : {}) })),
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
  };
}
