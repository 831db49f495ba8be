/**
 * The container domain's shared context: the services a verb uses and what running containers
 * have in the daemon's memory. Each verb (create, start, exit, stop, remove, restore, io, logs,
 * archive, commit, stats, update, top) is a module of functions over it; `ContainerService` is
 * the facade the API's backend interface is served by.
 */
import { join } from "node:path";
import type { EventBus } from "../events/bus.ts";
import type { ImageService } from "../image/image-service.ts";
import type { Logger } from "../log.ts";
import type { NetworkService } from "../network/network-service.ts";
import type { ContainerRuntime } from "../runtime/types.ts";
import type { Journal } from "../journal/journal.ts";
import type { Sys } from "../sys/sys.ts";
import type { VolumeService } from "../volume/volume-service.ts";
import type { ContainerRecord, ContainerStore } from "./container-store.ts";
import { ExecService } from "./exec-service.ts";
import type { HealthMonitor } from "./health.ts";
import type { OutputPump, OutputSubscriber } from "./output-pump.ts";

/** What a running container has in the daemon's memory. */
export interface Live {
  pump: OutputPump;
  /** Write end of the container's stdin (a pipe), or the pty master for a terminal. */
  input?: number;
  /** Resolves with the exit status. */
  exited: Promise<number>;
  /** Resolves once the exit has been handled (state saved, layer unmounted, events sent). */
  handled?: Promise<void>;
  health?: HealthMonitor;
}

/** Services the container domain uses. */
export interface ContainerDeps {
  sys: Sys;
  volumes: VolumeService;
  store: ContainerStore;
  images: () => Promise<ImageService>;
  runtime: ContainerRuntime;
  events: EventBus;
  log: Logger;
  networks: NetworkService;
  /** dockerd's native.cgroupdriver: systemd names containers' cgroups <parent>.slice/docker-<id>.scope. */
  cgroupDriver?: "cgroupfs" | "systemd";
  /** The log config of containers that name no driver (dockerd's log-driver and log-opts). */
  defaultLog?: { Type: string; Config: Record<string, string> };
  /** The data root's intent journal: start and remove are recorded there before their first side effect. */
  journal?: Journal;
}

/** Docker's timestamp with nanoseconds ("2024-01-02T03:04:05.678000000Z"). */
export const now = (): string => new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000000Z");

/** The default PATH of a container whose image sets none. */
export const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The shared state of the container verbs. */
export class ContainerContext {
  /** Running containers, by ID. */
  readonly live = new Map<string, Live>();
  /** Waiters for the next exit, by container ID. */
  readonly exitWaiters = new Map<string, ((code: number) => void)[]>();
  /** Waiters for the removal (`wait --condition removed`), by container ID. */
  readonly removeWaiters = new Map<string, (() => void)[]>();
  /** The exit status of removed containers, kept a minute for their `wait`. */
  readonly lastExit = new Map<string, number>();
  /** Starts in progress, by container ID. */
  readonly starting = new Map<string, Promise<void>>();
  /** Restarts pending after a backoff, by container (cancelled by stop, kill, rm). */
  readonly restartTimers = new Map<string, ReturnType<typeof setTimeout>>();
  /** The last restart backoff, by container. */
  readonly backoff = new Map<string, number>();
  /** Containers being restarted: their stop is not an exit that removes an AutoRemove container. */
  readonly restartingNow = new Set<string>();
  /** Attachers waiting for a created container to start. */
  readonly pendingAttach = new Map<string, Set<OutputSubscriber>>();
  /** Input sent before the start, with whether it ended. */
  readonly pendingInput = new Map<string, { chunks: Uint8Array[]; end: boolean }>();
  /** The exec instances of this daemon's containers. */
  readonly execs: ExecService;

  constructor(readonly deps: ContainerDeps) {
    this.execs = new ExecService({ sys: deps.sys, store: deps.store, runtime: deps.runtime, events: deps.events });
  }

  get store(): ContainerStore {
    return this.deps.store;
  }

  /** Publish a container event with Docker's attributes (labels, image, name). */
  publish(c: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    this.deps.events.publish({
      Type: "container",
      Action: action,
      Actor: { ID: c.Id, Attributes: { ...(c.Config.Labels ?? {}), image: c.ImageName, name: c.Name.slice(1), ...extra } },
    });
  }

  /** Where the container's root is mounted while it runs. */
  rootfsOf(c: ContainerRecord): string {
    return join(this.store.dir(c.Id), "rootfs");
  }
}
