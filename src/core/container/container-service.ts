/**
 * The container manager: a facade over the container verbs (one module each: create, start,
 * exit, stop, remove, restore, io, logs, files, commit, stats, update, top, links) and their
 * shared context. State changes are saved atomically and published as events.
 */
import type { Filters } from "../filters.ts";
import type { NetworkService } from "../network/network-service.ts";
import { commitContainer, type CommitOptions } from "./commit.ts";
import type { ArchiveSink, ContainerBackend } from "./container-backend.ts";
import type { ContainerRecord, ContainerStore } from "./container-store.ts";
import { ContainerContext, type ContainerDeps, type Live } from "./context.ts";
import { createContainer } from "./create.ts";
import type { ExecService } from "./exec-service.ts";
import { waitContainer } from "./exit.ts";
import { changes, exportFs, pathStat, readArchive, withRoot, writeArchive } from "./files.ts";
import { type AttachHandle, attach, closeStdin, resize } from "./io.ts";
import type { LogEntry } from "./json-log.ts";
import { type ConnectConfig, connectNetwork, disconnectNetwork, removeLink } from "./links.ts";
import { linkNames, type ListQuery, listContainers } from "./list.ts";
import { followLogs, readLogs } from "./logs.ts";
import type { OutputSubscriber } from "./output-pump.ts";
import { pruneContainers, removeContainer, volumeUsers } from "./remove.ts";
import { restoreContainers } from "./restore.ts";
import { startContainer } from "./start.ts";
import { counts, sizes, statsSample } from "./stats.ts";
import { killContainer, pauseContainer, renameContainer, restartContainer, stopContainer } from "./stop.ts";
import { top, type TopResult } from "./top.ts";
import { updateContainer } from "./update.ts";

export type { ContainerDeps } from "./context.ts";
export { parseSignal } from "./stop.ts";

/** The container manager. */
export class ContainerService implements ContainerBackend {
  private readonly ctx: ContainerContext;

  constructor(deps: ContainerDeps) {
    this.ctx = new ContainerContext(deps);
    deps.volumes.inUse = (name) => volumeUsers(this.ctx, name);
  }

  get store(): ContainerStore {
    return this.ctx.store;
  }
  get revision(): number {
    return this.ctx.store.revision;
  }
  /** The exec instances of this daemon's containers. */
  get execs(): ExecService {
    return this.ctx.execs;
  }
  /** The networks containers join. */
  get networks(): NetworkService {
    return this.ctx.deps.networks;
  }

  get(ref: string): ContainerRecord {
    return this.ctx.store.get(ref);
  }
  execIds(id: string): string[] {
    return this.ctx.execs.idsOf(id);
  }
  list(q: ListQuery): ContainerRecord[] {
    return listContainers(this.ctx, q);
  }
  linkNames(): Map<string, string[]> {
    return linkNames(this.ctx);
  }
  /** `POST /containers/create`. */
  create(raw: unknown, name?: string, platform?: string, apiVersion = "1.51", opts: { transient?: boolean } = {}): Promise<{ Id: string; Warnings: string[] }> {
    return createContainer(this.ctx, raw, name, platform, apiVersion, opts);
  }
  /** `POST /containers/{id}/start`: false when it was running already (304). */
  start(ref: string): Promise<boolean> {
    return startContainer(this.ctx, ref);
  }
  stop(ref: string, timeout?: number, signal?: string): Promise<boolean> {
    return stopContainer(this.ctx, ref, timeout, signal);
  }
  restart(ref: string, timeout?: number, signal?: string): Promise<void> {
    return restartContainer(this.ctx, ref, timeout, signal);
  }
  kill(ref: string, signal = "SIGKILL"): Promise<void> {
    return killContainer(this.ctx, ref, signal);
  }
  pause(ref: string, paused: boolean): void {
    pauseContainer(this.ctx, ref, paused);
  }
  update(ref: string, raw: unknown, apiVersion = "1.51"): { Warnings: string[] } {
    return updateContainer(this.ctx, ref, raw, apiVersion);
  }
  rename(ref: string, name: string): void {
    renameContainer(this.ctx, ref, name);
  }
  resize(ref: string, height: number, width: number): void {
    resize(this.ctx, ref, height, width);
  }
  wait(ref: string, condition = "not-running"): Promise<number> {
    return waitContainer(this.ctx, ref, condition);
  }
  remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    return removeContainer(this.ctx, ref, opts);
  }
  removeLink(linkName: string): void {
    removeLink(this.ctx, linkName);
  }
  prune(filters: Filters, untilMs?: number): Promise<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }> {
    return pruneContainers(this.ctx, filters, untilMs);
  }
  /** Names of the containers using volume `name`. */
  volumeUsers(name: string): string[] {
    return volumeUsers(this.ctx, name);
  }
  sizes(ref: string): Promise<{ SizeRw: number; SizeRootFs: number }> {
    return sizes(this.ctx, ref);
  }
  statsSample(ref: string): Record<string, unknown> {
    return statsSample(this.ctx, ref);
  }
  /** Counts for `GET /info`. */
  counts(): Record<string, number> {
    return counts(this.ctx);
  }
  top(ref: string, psArgs = "-ef"): Promise<TopResult> {
    return top(this.ctx, ref, psArgs);
  }
  attach(ref: string, opts: { stdin: boolean }, out: OutputSubscriber): AttachHandle {
    return attach(this.ctx, ref, opts, out);
  }
  /** The running container's output pump and input fd. */
  io(id: string): Live | undefined {
    return this.ctx.live.get(id);
  }
  closeStdin(id: string): void {
    closeStdin(this.ctx, id);
  }
  logs(ref: string): LogEntry[] {
    return readLogs(this.ctx, ref);
  }
  followLogs(id: string, sink: { entries(e: LogEntry[]): void; end(): void }): (() => void) | undefined {
    return followLogs(this.ctx, id, sink);
  }
  commit(ref: string, opts: CommitOptions): Promise<string> {
    return commitContainer(this.ctx, ref, opts);
  }
  /** Run `fn` on the host directory holding the container's `path` (see files.ts). */
  withRoot<T>(ref: string, path: string, fn: (root: string, path: string) => Promise<T>, event?: { action: string; path: string }): Promise<T> {
    return withRoot(this.ctx, ref, path, fn, event);
  }
  pathStat(ref: string, path: string) {
    return pathStat(this.ctx, ref, path);
  }
  readArchive(ref: string, path: string, begin: Parameters<ContainerBackend["readArchive"]>[2]): Promise<void> {
    return readArchive(this.ctx, ref, path, begin as (s: Parameters<Parameters<ContainerBackend["readArchive"]>[2]>[0]) => ArchiveSink);
  }
  writeArchive(ref: string, path: string, tar: AsyncIterable<Uint8Array>): Promise<void> {
    return writeArchive(this.ctx, ref, path, tar);
  }
  changes(ref: string): Promise<{ Path: string; Kind: number }[]> {
    return changes(this.ctx, ref);
  }
  exportFs(ref: string): AsyncGenerator<Uint8Array> {
    return exportFs(this.ctx, ref);
  }
  connectNetwork(ref: string, network: string, cfg: ConnectConfig): Promise<void> {
    return connectNetwork(this.ctx, ref, network, cfg);
  }
  disconnectNetwork(ref: string, network: string): Promise<void> {
    return disconnectNetwork(this.ctx, ref, network);
  }
  /** Re-attach to the containers that ran when the daemon stopped; apply restart policies. */
  restore(): Promise<void> {
    return restoreContainers(this.ctx);
  }
}
