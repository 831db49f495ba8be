/**
 * Measures of containers: one `GET /containers/{id}/stats` sample in Docker's shape, the sizes
 * of a container's writable layer and root, and the counts `/info` reports.
 */
import { ignored } from "../log.ts";
import { readFileSync } from "node:fs";
import { interfaceCounters } from "../network/counters.ts";
import type { ContainerContext } from "./context.ts";

const NO_CPU = { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };

/** The host's CPU time (ns, USER_HZ = 100) and online CPUs, from /proc/stat. */
function hostCpu(): { systemNs: number; online: number } {
  const procStat = readFileSync("/proc/stat", "utf8").split("\n");
  const cpuLine = procStat[0]!.split(/\s+/).slice(1).map(Number);
  return { systemNs: cpuLine.slice(0, 8).reduce((a, b) => a + b, 0) * 1e7, online: procStat.filter((l) => /^cpu\d+ /.test(l)).length };
}

/** One `GET /containers/{id}/stats` sample, in Docker's shape (without precpu_stats). */
export function statsSample(ctx: ContainerContext, ref: string): Record<string, unknown> {
  const c = ctx.store.get(ref);
  const read = new Date().toISOString().replace("Z", "000000Z");
  const { systemNs, online } = hostCpu();
  if (!c.State.Running) {
    return { read: "0001-01-01T00:00:00Z", preread: "0001-01-01T00:00:00Z", pids_stats: {}, blkio_stats: {}, num_procs: 0, storage_stats: {}, cpu_stats: NO_CPU, memory_stats: {}, name: c.Name, id: c.Id };
  }
  const st = ctx.deps.runtime.stats(c.Id);
  const memTotal = Number(/MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))?.[1] ?? 0) * 1024;
  const blk = st.blkio.map((b) => ({ major: b.major, minor: b.minor, op: b.op[0]!.toUpperCase() + b.op.slice(1), value: b.value }));
  return {
    read,
    preread: "0001-01-01T00:00:00Z",
    pids_stats: { current: st.pids, ...(st.pidsLimit ? { limit: st.pidsLimit } : {}) },
    blkio_stats: {
      io_service_bytes_recursive: blk.length ? blk : null,
      io_serviced_recursive: null,
      io_queue_recursive: null,
      io_service_time_recursive: null,
      io_wait_time_recursive: null,
      io_merged_recursive: null,
      io_time_recursive: null,
      sectors_recursive: null,
    },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: {
      cpu_usage: { total_usage: st.cpuNs, usage_in_kernelmode: st.systemNs, usage_in_usermode: st.userNs },
      system_cpu_usage: systemNs,
      online_cpus: online,
      throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
    },
    memory_stats: { usage: st.memUsage, ...(st.memMax ? { max_usage: st.memMax } : {}), stats: st.memStats, limit: st.memLimit || memTotal },
    ...(c.HostConfig.NetworkMode !== "host" && c.State.Pid ? { networks: interfaceCounters(c.State.Pid) ?? {} } : {}),
    name: c.Name,
    id: c.Id,
  };
}

/** The writable layer's size and the whole root's (image plus writable layer), in bytes. */
export async function sizes(ctx: ContainerContext, ref: string): Promise<{ SizeRw: number; SizeRootFs: number }> {
  const c = ctx.store.get(ref);
  const images = await ctx.deps.images();
  const rw = await images.layers.usage(c.RwLayer);
  let image = 0;
  try {
    image = (images.inspect(c.Image) as { Size?: number }).Size ?? 0;
  } catch (err) {
    ignored("the image was removed (rmi --force): only the writable layer counts", err);
  }
  return { SizeRw: rw, SizeRootFs: image + rw };
}

/** Counts for `GET /info`. */
export function counts(ctx: ContainerContext): Record<string, number> {
  const all = ctx.store.all();
  const running = all.filter((c) => c.State.Running && !c.State.Paused).length;
  const paused = all.filter((c) => c.State.Paused).length;
  return { Containers: all.length, ContainersRunning: running, ContainersPaused: paused, ContainersStopped: all.length - running - paused };
}
