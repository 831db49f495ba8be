/**
 * Every rule a host config must keep, in one place (moby's `verifyContainerSettings` and
 * `verifyPlatformContainerResources`): checked once when a container is created and when its
 * limits are updated, so the spec builder and the runtime take the values as they are.
 */
import { invalidArgument } from "../errors.ts";
import type { HostConfig } from "./create-config.ts";
import { securityOptions } from "./oci-spec.ts";

/** The smallest memory limit Docker allows (`-m 6m`). */
export const MIN_MEMORY = 6 * 1024 * 1024;

/** The resource limits' rules: the memory minimum, swap at least the memory, CPU options that conflict. */
export function validateResources(h: Pick<HostConfig, "Memory" | "MemorySwap" | "NanoCpus" | "CpuQuota" | "CpuPeriod">): void {
  if (h.Memory !== undefined && h.Memory !== null && h.Memory > 0 && h.Memory < MIN_MEMORY) throw invalidArgument("Minimum memory limit allowed is 6MB");
  if (h.Memory && h.MemorySwap && h.MemorySwap > 0 && h.MemorySwap < h.Memory) throw invalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage");
  if (h.NanoCpus && (h.CpuQuota || h.CpuPeriod)) throw invalidArgument("Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set");
}

/** The restart policy's rules (moby's `validateRestartPolicy`). */
function validateRestartPolicy(h: HostConfig): void {
  const restart = h.RestartPolicy?.Name ?? "";
  if (restart && restart !== "no" && h.AutoRemove) throw invalidArgument("can't create 'AutoRemove' container with restart policy");
  if ((h.RestartPolicy?.MaximumRetryCount ?? 0) < 0) throw invalidArgument("invalid restart policy: maximum retry count cannot be negative");
  if (restart !== "on-failure" && (h.RestartPolicy?.MaximumRetryCount ?? 0) > 0) throw invalidArgument(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
}

/** The namespace modes' rules. */
function validateModes(h: HostConfig): void {
  if (h.UTSMode && h.UTSMode !== "host") throw invalidArgument(`invalid UTS mode: ${h.UTSMode}`);
  if (h.IpcMode && !["", "private", "shareable", "host", "none"].includes(h.IpcMode) && !h.IpcMode.startsWith("container:")) throw invalidArgument(`invalid IPC mode: ${h.IpcMode}`);
  if (h.PidMode && h.PidMode !== "host" && !h.PidMode.startsWith("container:")) throw invalidArgument(`invalid PID mode: ${h.PidMode}`);
}

/** Every rule of a new container's host config. */
export function validateHostConfig(h: HostConfig, opts: { cgroupDriver?: "cgroupfs" | "systemd" | undefined } = {}): void {
  validateRestartPolicy(h);
  validateResources(h);
  validateModes(h);
  securityOptions(h.SecurityOpt ?? []); // a bad --security-opt fails the create, as dockerd's does
  if (opts.cgroupDriver === "systemd" && h.CgroupParent && !/^[A-Za-z0-9:_.\\-]+\.slice$/.test(h.CgroupParent)) throw invalidArgument('cgroup-parent for systemd cgroup should be a valid slice named as "xxx.slice"');
}
