/**
 * The container runtime as the engine sees it (plugin type `runtime.v1`): OCI bundles in,
 * processes under a monitor out. runtime-linux implements it with its FFI libcontainer; a third
 * party could implement it over another runtime. Containers are named by the engine's IDs.
 */
import type { Resources, Spec } from "./oci.ts";

/** Where a created container's output goes and what its stdin is (see runtime-linux). */
export interface RuntimeIo {
  /** File the monitor appends output records to (core/container/spool.ts). */
  spool: string;
  /** "null": /dev/null; "pipe": the caller gets the write end; "hold": the monitor keeps it open too. */
  stdin: "null" | "pipe" | "hold";
}

/** A container's state as the runtime knows it. */
export interface RuntimeState {
  id: string;
  status: "created" | "running" | "paused" | "stopped";
  /** Host pid of the container's init (0 when unknown). */
  pid: number;
}

/** A process to run in a running container (the runtime-spec process object). */
export type RuntimeProcess = Record<string, unknown> & { args: string[]; cwd: string; terminal?: boolean };

/** A container's resource usage, from its cgroup (CPU in ns, memory in bytes). */
export interface RuntimeStats {
  cpuNs: number;
  userNs: number;
  systemNs: number;
  memUsage: number;
  memMax: number;
  memLimit: number;
  memStats: Record<string, number>;
  pids: number;
  pidsLimit: number;
  blkio: { major: number; minor: number; op: string; value: number }[];
}

/** The runtime's operations. */
export interface ContainerRuntime {
  readonly name: string;
  /**
   * Create from the bundle under a monitor; with `io` a pipe stdin, its write end comes back.
   * `spec` is the bundle's config.json as the engine built it (typed): a runtime that is handed
   * it need not read and check the file again.
   */
  create(id: string, opts: { bundle: string; io: RuntimeIo; spec?: Spec }): Promise<{ pid: number; stdin?: number }>;
  start(id: string): Promise<void>;
  state(id: string): RuntimeState;
  /** IDs of the containers the runtime has state for. */
  list(): string[];
  kill(id: string, signal: string | number, all?: boolean): void;
  pause(id: string): void;
  resume(id: string): void;
  delete(id: string, force?: boolean): Promise<void>;
  /** The exit status a stopped container's monitor recorded (128+n for signal n). */
  exitCode(id: string): number | undefined;
  /** Times the container's cgroup ran out of memory and killed. */
  oomKills(id: string): number;
  /** Resource usage from the container's cgroup (CPU in ns, memory in bytes). */
  stats(id: string): RuntimeStats;
  /** Change a running container's limits (runtime-spec `linux.resources`). */
  update(id: string, resources: Resources): void;
  /** Host pids in the container's cgroup. */
  pids(id: string): number[];
  /** A copy of the monitor's pty master ("output") or held stdin ("stdinHold"). */
  monitorFd(id: string, which: "output" | "stdinHold"): number;
  /**
   * Run `process` in the container. stdio: fds for 0, 1, 2 (ignored for a terminal process);
   * a terminal process's pty master comes back as `master`.
   */
  exec(id: string, process: RuntimeProcess, opts: { stdio?: [number, number, number] }): Promise<{ pid: number; waitPid: number; master?: number }>;
  /** Resolve with a container's exit status once its monitor recorded it (255: found dead). */
  watchExit(id: string): Promise<number>;
  /** Resolve with the exit status of `waitPid` (a child of the caller). */
  waitExit(waitPid: number): Promise<number>;
}
