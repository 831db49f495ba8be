/**
 * Moves a running container's output from its monitor's spool to where it goes: the json-file
 * or local log (if the container has one) and every attached client or `logs -f` follower. One pump per
 * running container; it wakes on inotify (fs.watch) when the monitor appends, and remembers how
 * far it got in `<container>/spool.offset`, so a restarted daemon goes on where the old one
 * stopped and logs what the container wrote in between, with the times it was written.
 */
import { existsSync, type FSWatcher, readFileSync, watch } from "node:fs";
import { writeFileAtomic } from "../atomic-file.ts";
import { type LogEntry, type LogWriter, LineSplitter } from "./json-log.ts";
import { readSpool, type SpoolRecord } from "./spool.ts";

/** The backstop for missed inotify events. */
const POLL_MS = 250;

/** Receives output as it arrives (raw records) and the end of the output. */
export interface OutputSubscriber {
  data(rec: SpoolRecord): void;
  end(): void;
}

/** A pump from one spool. */
export class OutputPump {
  private offset: number;
  private watcher: FSWatcher | undefined;
  private poll: ReturnType<typeof setInterval> | undefined;
  private readonly subscribers = new Set<OutputSubscriber>();
  private readonly splitter = new LineSplitter();
  private scheduled = false;
  private finished = false;
  private readonly followers = new Set<{ entries(e: LogEntry[]): void; end(): void }>();

  constructor(
    private readonly spool: string,
    private readonly offsetFile: string,
    private readonly log: LogWriter | undefined,
  ) {
    this.offset = existsSync(offsetFile) ? Number(readFileSync(offsetFile, "utf8")) || 0 : 0;
  }

  /** Start following the spool. */
  start(): void {
    // Watch first, then read: an append between a first read and the watch would otherwise go
    // unnoticed until the container writes again (test runs here saw `logs` stuck at the first
    // line for seconds). The watch may also start late (it is set up off the JavaScript thread),
    // so a slow poll backs it up: a missed event costs at most POLL_MS.
    this.watcher = watch(this.spool, () => this.schedule());
    this.poll = setInterval(() => this.schedule(), POLL_MS);
    this.poll.unref?.();
    this.pump();
  }

  subscribe(s: OutputSubscriber): () => void {
    if (this.finished) {
      s.end();
      return () => {};
    }
    this.subscribers.add(s);
    return () => this.subscribers.delete(s);
  }

  /** Log entries as they are written (`logs -f`), until the output ends. */
  follow(f: { entries(e: LogEntry[]): void; end(): void }): () => void {
    if (this.finished) {
      f.end();
      return () => {};
    }
    this.followers.add(f);
    return () => this.followers.delete(f);
  }

  private schedule(): void {
    if (this.scheduled || this.finished) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** Read and deliver everything complete in the spool now. */
  pump(): void {
    for (;;) {
      const { records, next } = readSpool(this.spool, this.offset);
      if (!records.length) return;
      const entries: LogEntry[] = [];
      for (const r of records) {
        for (const s of this.subscribers) s.data(r);
        entries.push(...this.splitter.push(r));
      }
      this.deliver(entries);
      this.offset = next;
      writeFileAtomic(this.offsetFile, String(next), 0o600, { durable: false });
    }
  }

  private deliver(entries: LogEntry[]): void {
    if (!entries.length) return;
    this.log?.write(entries);
    for (const f of this.followers) f.entries(entries);
  }

  /** The container exited: deliver the rest, end every subscriber, stop. */
  finish(): void {
    if (this.finished) return;
    this.pump();
    this.deliver(this.splitter.flush());
    this.finished = true;
    this.watcher?.close();
    clearInterval(this.poll);
    this.log?.close();
    for (const s of this.subscribers) s.end();
    this.subscribers.clear();
    for (const f of this.followers) f.end();
    this.followers.clear();
  }
}
