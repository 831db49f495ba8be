/**
 * The in-process event bus behind `GET /events`. Services publish; the API streams. Recent events
 * are kept in a ring so `since` can replay them, as dockerd keeps its last events in memory.
 */
import { Filters } from "../filters.ts";
import { invalidArgument } from "../errors.ts";
import { stringifyJson } from "../json.ts";

/** Event object types, as Docker names them. */
export type EventType = "container" | "image" | "volume" | "network" | "daemon" | "plugin" | "builder" | "node";

/** Docker's `events.Message` wire shape. */
export interface EventMessage {
  status?: string;
  id?: string;
  from?: string;
  Type: EventType;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: "local" | "swarm";
  time: number;
  /** Nanoseconds since the epoch; a bigint because it exceeds 2^53 (see `encodeEvent`). */
  timeNano: bigint;
}

/** One NDJSON line for the wire, with `timeNano` written as an exact integer. */
export function encodeEvent(e: EventMessage): string {
  return stringifyJson(e);
}

/** Parse a wire line back, keeping `timeNano` exact. */
export function decodeEvent(line: string): EventMessage {
  const e = JSON.parse(line) as EventMessage;
  const m = /"timeNano":\s*(\d+)/.exec(line);
  e.timeNano = m ? BigInt(m[1]!) : BigInt(e.time ?? 0) * 1_000_000_000n;
  return e;
}

/** What a publisher supplies; time and the legacy fields are filled in. */
export interface EventInput {
  Type: EventType;
  Action: string;
  Actor: { ID: string; Attributes?: Record<string, string> };
  scope?: "local" | "swarm";
}

/** Filter keys `GET /events` accepts. */
export const EVENT_FILTER_KEYS = ["config", "container", "daemon", "event", "image", "label", "network", "node", "plugin", "scope", "secret", "service", "type", "volume"] as const;

/** A live subscription; call `close` to stop receiving. */
export interface Subscription {
  close(): void;
}

/** Number of past events kept for `since` (dockerd keeps 256). */
export const EVENT_HISTORY = 256;

/** The bus. Subscribers are called synchronously, in publish order. */
export class EventBus {
  private ring: EventMessage[] = [];
  private subscribers = new Set<(e: EventMessage) => void>();
  private lastNano = 0n;

  constructor(private readonly now: () => bigint = wallClockNanos) {}

  /** Publish an event to every subscriber and the history ring. */
  publish(input: EventInput): EventMessage {
    let nano = this.now();
    if (nano <= this.lastNano) nano = this.lastNano + 1n; // keep timeNano strictly increasing
    this.lastNano = nano;
    const msg: EventMessage = {
      Type: input.Type,
      Action: input.Action,
      Actor: { ID: input.Actor.ID, Attributes: { ...input.Actor.Attributes } },
      scope: input.scope ?? "local",
      time: Number(nano / 1_000_000_000n),
      timeNano: nano,
    };
    if (input.Type === "container" || input.Type === "image") {
      // Legacy fields older clients still read.
      msg.status = input.Action;
      msg.id = input.Actor.ID;
      const image = input.Actor.Attributes?.image;
      if (image) msg.from = image;
    }
    this.ring.push(msg);
    if (this.ring.length > EVENT_HISTORY) this.ring.shift();
    for (const s of [...this.subscribers]) s(msg);
    return msg;
  }

  /** Past events in [since, until] that match `filters`. */
  history(filters: Filters, since?: bigint, until?: bigint): EventMessage[] {
    return this.ring.filter((e) => inWindow(e, since, until) && matchesEvent(filters, e));
  }

  /** Receive future events matching `filters`. */
  subscribe(filters: Filters, cb: (e: EventMessage) => void): Subscription {
    const fn = (e: EventMessage) => {
      if (matchesEvent(filters, e)) cb(e);
    };
    this.subscribers.add(fn);
    return { close: () => this.subscribers.delete(fn) };
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }
}

function inWindow(e: EventMessage, since?: bigint, until?: bigint): boolean {
  const t = e.timeNano;
  return (since === undefined || t >= since) && (until === undefined || t <= until);
}

/** moby's event filter semantics (daemon/events/filter.go). */
export function matchesEvent(f: Filters, e: EventMessage): boolean {
  const attrs = e.Actor.Attributes;
  const byName = (type: EventType, key: string) => !f.has(key) || (e.Type === type && (f.fuzzyMatch(key, e.Actor.ID) || f.fuzzyMatch(key, attrs.name ?? "")));
  const action = e.Action.includes(":") ? e.Action.slice(0, e.Action.indexOf(":")) : e.Action;
  return (
    f.exactMatch("type", e.Type) &&
    f.exactMatch("scope", e.scope) &&
    (f.exactMatch("event", e.Action) || f.exactMatch("event", action)) &&
    byName("daemon", "daemon") &&
    byName("container", "container") &&
    byName("plugin", "plugin") &&
    byName("volume", "volume") &&
    byName("network", "network") &&
    byName("node", "node") &&
    (!f.has("image") || (e.Type === "image" && (f.fuzzyMatch("image", e.Actor.ID) || f.fuzzyMatch("image", attrs.name ?? ""))) || (e.Type === "container" && f.fuzzyMatch("image", attrs.image ?? ""))) &&
    f.matchKV("label", attrs)
  );
}

/**
 * Parse Docker's timestamp forms: `<seconds>[.<nanoseconds>]` as the CLI sends, or RFC 3339.
 * Returns nanoseconds since the epoch.
 */
export function parseEventTime(raw: string, name: string): bigint {
  const m = /^(\d+)(?:\.(\d{1,9}))?$/.exec(raw);
  if (m) return BigInt(m[1]!) * 1_000_000_000n + BigInt((m[2] ?? "").padEnd(9, "0") || "0");
  const ms = Date.parse(raw);
  if (Number.isNaN(ms)) throw invalidArgument(`invalid value for ${name}: ${raw}`);
  return BigInt(ms) * 1_000_000n;
}

const clockBase = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
/** Wall-clock nanoseconds with the monotonic clock's resolution. */
export function wallClockNanos(): bigint {
  return clockBase + process.hrtime.bigint();
}
