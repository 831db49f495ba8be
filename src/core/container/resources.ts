/**
 * A host config's resource limits as the runtime-spec's `linux.resources`: one function serves
 * the spec a container starts with and `docker update` of a running one. The values were checked
 * once, at create or update (host-config-rules.ts).
 */
import type { Resources } from "../runtime/oci.ts";
import type { HostConfig } from "./create-config.ts";
import { type DeviceRule, parseDeviceCgroupRule } from "./devices.ts";

/** Docker's memory-swap rule: -1 unlimited, 0/unset twice the memory, else memory+swap. */
function swapOf(h: HostConfig): number | undefined {
  if (!h.Memory) return undefined;
  if (h.MemorySwap === -1) return -1;
  if (!h.MemorySwap) return h.Memory * 2;
  return h.MemorySwap;
}

/** CPU shares, quota and period (`--cpus` as a quota of a 100 ms period), realtime, cpusets. */
function cpuOf(h: HostConfig): NonNullable<Resources["cpu"]> {
  const cpu: NonNullable<Resources["cpu"]> = {};
  if (h.CpuShares) cpu.shares = h.CpuShares;
  if (h.NanoCpus) {
    cpu.period = 100000;
    cpu.quota = Math.round((h.NanoCpus / 1e9) * 100000);
  } else {
    if (h.CpuQuota) cpu.quota = h.CpuQuota;
    if (h.CpuPeriod) cpu.period = h.CpuPeriod;
  }
  // --cpu-rt-period / --cpu-rt-runtime (microseconds), as runc writes them.
  if (h.CpuRealtimePeriod) cpu.realtimePeriod = h.CpuRealtimePeriod;
  if (h.CpuRealtimeRuntime) cpu.realtimeRuntime = h.CpuRealtimeRuntime;
  if (h.CpusetCpus) cpu.cpus = h.CpusetCpus;
  if (h.CpusetMems) cpu.mems = h.CpusetMems;
  return cpu;
}

/**
 * The limits of `h`. Given the `--device` nodes' rules (`deviceRules`, from `hostDevices`), the
 * device cgroup comes too: deny all, then those and the `--device-cgroup-rule`s (allow all when
 * privileged); without them (an update) the device rules stay as they are.
 */
export function resourcesOf(h: HostConfig, opts: { deviceRules?: DeviceRule[] } = {}): Resources {
  const resources: Resources = {};
  if (opts.deviceRules) {
    resources.devices = h.Privileged ? [{ allow: true, access: "rwm" }] : [{ allow: false, access: "rwm" }, ...opts.deviceRules, ...(h.DeviceCgroupRules ?? []).map(parseDeviceCgroupRule)];
  }
  const memory: NonNullable<Resources["memory"]> = {};
  if (h.Memory) memory.limit = h.Memory;
  const swap = swapOf(h);
  if (swap !== undefined) memory.swap = swap;
  if (h.MemoryReservation) memory.reservation = h.MemoryReservation;
  if (Object.keys(memory).length) resources.memory = memory;
  const cpu = cpuOf(h);
  if (Object.keys(cpu).length) resources.cpu = cpu;
  if (h.PidsLimit && h.PidsLimit > 0) resources.pids = { limit: h.PidsLimit };
  if (h.BlkioWeight) resources.blockIO = { weight: h.BlkioWeight };
  return resources;
}
