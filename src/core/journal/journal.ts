/**
 * The intent journal: a mutating operation writes what it is about to do (an intent record,
 * atomically and durably) before its first side effect and drops the record when it is done. A
 * daemon killed in between finds the record at its next start and rolls the operation forward or
 * back with the handler its service registered for that kind of operation, so what the store
 * shows is always the old state or the new one.
 *
 * Records live one per file in `<data-root>/journal/`, named by a sequence number, so a
 * recovery sees them in the order they were begun.
 */
import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../atomic-file.ts";
import { failpoint } from "../failpoints.ts";
import { messageOf } from "../errors.ts";
import { ignored, type Logger } from "../log.ts";

/** One open operation. */
export interface Intent {
  /** The record's file name (its identity). */
  readonly key: string;
  /** What kind of operation: `container.start`, `volume.remove`, … (the handler's name). */
  readonly op: string;
  /** What it acts on: a container ID, a volume name, an image reference. */
  readonly target: string;
  /** What the handler needs to roll it forward or back (paths, names). */
  readonly data: Record<string, unknown>;
  /** When it began (RFC 3339). */
  readonly at: string;
}

/** Rolls one open intent of its kind forward or back; it must be safe to run more than once. */
export type RecoveryHandler = (intent: Intent) => Promise<void> | void;

/** The journal of one data root. */
export class Journal {
  private seq = 0;

  constructor(
    readonly dir: string,
    private readonly log?: Logger,
  ) {
    for (const k of this.keys()) this.seq = Math.max(this.seq, Number(k.split("-")[0]) || 0);
  }

  /** Record the intent, durably, before the operation's first side effect. */
  begin(op: string, target: string, data: Record<string, unknown> = {}): Intent {
    const key = `${String(++this.seq).padStart(12, "0")}-${op}.json`;
    const intent: Intent = { key, op, target, data, at: new Date().toISOString() };
    writeFileAtomic(join(this.dir, key), JSON.stringify(intent), 0o600);
    return intent;
  }

  /** Drop the intent: the operation finished (or was undone) and needs nothing at restart. */
  end(intent: Intent): void {
    failpoint(`journal end ${intent.op}`);
    try {
      unlinkSync(join(this.dir, intent.key));
    } catch (err) {
      ignored("an intent already dropped (a recovery ran it)", err);
    }
  }

  /** Run `fn` under an intent: begun first, dropped when `fn` returns or throws (its own undo ran). */
  async run<T>(op: string, target: string, data: Record<string, unknown>, fn: (intent: Intent) => Promise<T>): Promise<T> {
    const intent = this.begin(op, target, data);
    try {
      return await fn(intent);
    } finally {
      this.end(intent);
    }
  }

  /** The open intents, oldest first; an unreadable record (torn by a crash) is dropped. */
  open(ops?: string[]): Intent[] {
    const out: Intent[] = [];
    for (const key of this.keys()) {
      try {
        const i = JSON.parse(readFileSync(join(this.dir, key), "utf8")) as Intent;
        if (!ops || ops.includes(i.op)) out.push({ ...i, key });
      } catch (err) {
        this.log?.warn("unreadable intent dropped", { intent: key, error: messageOf(err) });
        this.end({ key } as Intent);
      }
    }
    return out;
  }

  /**
   * Roll every open intent of the given kinds forward or back, oldest first, and drop each one
   * whose handler succeeded. A handler that fails leaves its intent for the next start (and the
   * log says why); the others still run.
   */
  async recover(handlers: Record<string, RecoveryHandler>): Promise<number> {
    let n = 0;
    for (const intent of this.open(Object.keys(handlers))) {
      try {
        await handlers[intent.op]!(intent);
        this.end(intent);
        n++;
        this.log?.info("interrupted operation recovered", { op: intent.op, target: intent.target.slice(0, 64), began: intent.at });
      } catch (err) {
        this.log?.warn("interrupted operation not recovered", { op: intent.op, target: intent.target, error: messageOf(err) });
      }
    }
    return n;
  }

  private keys(): string[] {
    try {
      return readdirSync(this.dir)
        .filter((f) => /^\d+-[\w.-]+\.json$/.test(f))
        .sort();
    } catch {
      return [];
    }
  }
}
