/**
 * What the API asks of the container domain (moby's `router/container/backend.go`): the routes
 * call these and nothing else of it: no store, log file, driver or `Sys`. `ContainerService` is
 * the implementation; the types a route needs come from here.
 */
import type { Filters } from "../filters.ts";
import type { CommitOptions } from "./commit.ts";
import type { ContainerRecord } from "./container-store.ts";
import type { ExecService } from "./exec-service.ts";
import type { AttachHandle } from "./io.ts";
import type { LogEntry } from "./json-log.ts";
import type { ConnectConfig } from "./links.ts";
import type { ListQuery } from "./list.ts";
import type { OutputSubscriber } from "./output-pump.ts";
import type { PathStat } from "./archive.ts";
import type { TopResult } from "./top.ts";

export type { AttachHandle, CommitOptions, ConnectConfig, ContainerRecord, ListQuery, LogEntry, OutputSubscriber, PathStat, TopResult };
export type { SpoolRecord } from "./spool.ts";
export { rfc3339Nano } from "./json-log.ts";
export { CONTAINER_FILTER_KEYS } from "./list.ts";

/** A chunk sink for a streamed archive. */
export interface ArchiveSink {
  write(chunk: Uint8Array): Promise<void> | void;
  end(): void;
}

/** The container operations behind the Engine API's container routes. */
export interface ContainerBackend {
  /** Changes whenever a record does (list caches key on it). */
  readonly revision: number;
  /** The exec instances. */
  readonly execs: ExecService;
  /** The record of a container by ID, ID prefix or name (404 otherwise). */
  get(ref: string): ContainerRecord;
  /** The exec IDs of a container (inspect's ExecIDs). */
  execIds(id: string): string[];
  list(q: ListQuery): ContainerRecord[];
  /** Legacy link names by container ID. */
  linkNames(): Map<string, string[]>;
  create(raw: unknown, name?: string, platform?: string, apiVersion?: string): Promise<{ Id: string; Warnings: string[] }>;
  start(ref: string): Promise<boolean>;
  stop(ref: string, timeout?: number, signal?: string): Promise<boolean>;
  restart(ref: string, timeout?: number, signal?: string): Promise<void>;
  kill(ref: string, signal?: string): Promise<void>;
  pause(ref: string, paused: boolean): void;
  update(ref: string, raw: unknown, apiVersion?: string): { Warnings: string[] };
  rename(ref: string, name: string): void;
  resize(ref: string, height: number, width: number): void;
  wait(ref: string, condition?: string): Promise<number>;
  remove(ref: string, opts?: { force?: boolean; volumes?: boolean }): Promise<void>;
  removeLink(linkName: string): void;
  prune(filters: Filters, untilMs?: number): Promise<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }>;
  sizes(ref: string): Promise<{ SizeRw: number; SizeRootFs: number }>;
  statsSample(ref: string): Record<string, unknown>;
  top(ref: string, psArgs?: string): Promise<TopResult>;
  attach(ref: string, opts: { stdin: boolean }, out: OutputSubscriber): AttachHandle;
  /** What the log holds (400 for a container logging to `none`). */
  logs(ref: string): LogEntry[];
  /** Follow a running container's log; undefined when it does not run. Returns the stop. */
  followLogs(id: string, sink: { entries(e: LogEntry[]): void; end(): void }): (() => void) | undefined;
  commit(ref: string, opts: CommitOptions): Promise<string>;
  pathStat(ref: string, path: string): Promise<PathStat & { name: string }>;
  readArchive(ref: string, path: string, begin: (stat: PathStat & { name: string }) => ArchiveSink): Promise<void>;
  writeArchive(ref: string, path: string, tar: AsyncIterable<Uint8Array>): Promise<void>;
  changes(ref: string): Promise<{ Path: string; Kind: number }[]>;
  exportFs(ref: string): AsyncGenerator<Uint8Array>;
  connectNetwork(ref: string, network: string, cfg: ConnectConfig): Promise<void>;
  disconnectNetwork(ref: string, network: string): Promise<void>;
}
