/**
 * The descriptors a container's processes inherit from the daemon, closed: the stub clones them
 * from the daemon without an exec, so until their own execve they hold everything the daemon
 * has open, close-on-exec or not. Each process closes all of it but what its plan uses, first.
 */
import type { ContainerPlanInput } from "./container-plan.ts";
import { E } from "./container-plan.ts";
import type { PlanBuilder } from "./plan.ts";

/**
 * Close every fd above stdio the rest of the plan does not use. The process was cloned from the
 * caller (the daemon) without an exec, so it holds all the caller's descriptors until its own
 * execve, close-on-exec or not: the data-root lock, the API socket, other containers' pipes. A
 * process left waiting on the exec fifo by a daemon killed mid-start would otherwise keep the lock
 * and the socket for good, and no new daemon could start.
 */
export function closeInherited(p: PlanBuilder, input: ContainerPlanInput): void {
  closeAllBut(p, [input.statusFd, input.syncFd, input.consoleFd, input.monitor?.output?.tty?.containerEnd, ...Object.values(input.joinFds), ...(input.hookStdin?.createContainer ?? []), ...(input.hookStdin?.startContainer ?? [])]);
}

/**
 * The monitor's first step: every fd above stdio closed but those it or the container it clones
 * will use, so that the monitor, too, holds the data-root lock and the API socket for no longer
 * than its first system call (a daemon killed at that instant must be able to start again).
 */
export function closeInheritedInMonitor(p: PlanBuilder, input: ContainerPlanInput): void {
  const out = input.monitor?.output;
  closeAllBut(p, [
    input.statusFd,
    input.syncFd,
    input.consoleFd,
    ...Object.values(input.joinFds),
    ...(input.hookStdin?.createContainer ?? []),
    ...(input.hookStdin?.startContainer ?? []),
    ...(input.stdio ?? []),
    ...(input.cgroupJoinFds ?? []).map((j) => j.fd),
    ...(input.closeFds ?? []),
    out?.spool,
    out?.stdout,
    out?.stderr,
    out?.stdinHold,
    out?.tty?.monitorEnd,
    out?.tty?.containerEnd,
  ]);
}

/** close_range over every fd above stdio except `keep`. */
function closeAllBut(p: PlanBuilder, keep: (number | undefined)[]): void {
  const fds = [...new Set(keep.filter((fd): fd is number => fd !== undefined && fd > 2))].sort((a, b) => a - b);
  let from = 3;
  for (const fd of [...fds, 0x100000000]) {
    if (fd > from) p.call("close_range", [from, Math.min(fd - 1, 0xffffffff), 0, 0], `close inherited fds ${from}…${fd - 1}`, { ok: [E.ENOSYS] });
    from = fd + 1;
  }
}
