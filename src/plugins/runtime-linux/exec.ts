/**
 * A process in a running container (`exec`): the process spec, based on the container's own,
 * joined to its namespaces and cgroup by the same stub.
 */
import { closeSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import { writeFileAtomic } from "../../core/atomic-file.ts";

import { EngineError, invalidArgument } from "../../core/errors.ts";
import { AT_FDCWD, O_CLOEXEC, O_RDONLY } from "../../core/sys/sys.ts";

import { containerPlan } from "./container-plan.ts";

import { NAMESPACES } from "./linux-constants.ts";
import { spawnPlan, type Spawned } from "./spawn.ts";
import { type NamespaceType, type ProcessSpec } from "../../core/runtime/oci.ts";
import { LinuxRuntime, processStartTime, VOLATILE } from "./runtime.ts";

/**
 * Run another process in a running container: it joins every namespace of the container's
 * init (at clone time, by the stub), its cgroup, and gets the given process spec (the
 * container's capabilities, seccomp filter and no_new_privs unless the process says otherwise).
 * Returns the exec'd pid and the pid to wait for (its exit status is the process's).
 */
export async function exec(
  rt: LinuxRuntime,
  id: string,
  proc: ProcessSpec,
  opts: { pidFile?: string; consoleSocket?: string; detach?: boolean; stdio?: [number, number, number]; receiveTerminal?: boolean } = {},
): Promise<{ pid: number; waitPid: number; master?: number }> {
  const s = rt.load(id);
  const status = rt.statusOf(s);
  if (status !== "running" && status !== "created") throw new EngineError("failed-precondition", `cannot exec in a ${status} container`);
  if (proc.terminal && !opts.consoleSocket && !opts.receiveTerminal) throw invalidArgument("exec: a terminal needs --console-socket");
  const consolePair = proc.terminal && opts.receiveTerminal ? rt.sys.socketpair() : undefined;
  const joinFds: Partial<Record<NamespaceType, number>> = {};
  let cgroupJoinFds: { fd: number; what: string }[] = [];
  const [syncR, syncW] = rt.sys.pipe();
  let spawned: Spawned | undefined;
  try {
    for (const ns of s.spec.linux?.namespaces ?? []) {
      joinFds[ns.type] = rt.sys.openat2(AT_FDCWD, `/proc/${s.pid}/ns/${NAMESPACES[ns.type].file}`, O_RDONLY | O_CLOEXEC, 0, 0);
    }
    if (processStartTime(s.pid) !== s.startTime) throw new EngineError("failed-precondition", `container ${id} stopped`);
    cgroupJoinFds = rt.openSelfJoin(rt.cgroupOf(s));
    spawned = spawnPlan(rt.sys, (statusFd) =>
      containerPlan({
        spec: s.spec,
        process: proc,
        rootfs: s.rootfs,
        joinFds,
        newNamespaces: [],
        statusFd,
        syncFd: syncR,
        exec: true,
        cgroupJoinFds,
        ...(opts.stdio && !proc.terminal ? { stdio: opts.stdio } : {}),
        ...(consolePair ? { consoleFd: consolePair[1] } : {}),
        ...(opts.detach ? { detach: true } : {}),
        ...(opts.consoleSocket ? { consoleSocket: resolve(opts.consoleSocket) } : {}),
      }),
    );
    await spawned.settle(() => {
      writeSync(syncW, new Uint8Array([1]));
    });
    if (opts.pidFile) writeFileAtomic(resolve(opts.pidFile), String(spawned.pid), 0o644, VOLATILE);
    let master: number | undefined;
    if (consolePair) {
      closeSync(consolePair[1]);
      consolePair[1] = -1;
      master = rt.sys.recvFd(consolePair[0]); // sent before exec: already queued
      if (master === undefined) throw new EngineError("internal", `exec in ${id}: the process did not send its terminal`);
    }
    return { pid: spawned.pid, waitPid: spawned.childPid, ...(master !== undefined ? { master } : {}) };
  } catch (err) {
    if (spawned) {
      rt.reap(spawned.pid, true);
      rt.reap(spawned.childPid, true);
    }
    throw err;
  } finally {
    spawned?.close();
    for (const fd of [syncR, syncW, ...Object.values(joinFds), ...cgroupJoinFds.map((j) => j.fd), ...(consolePair ?? []).filter((fd) => fd >= 0)]) closeSync(fd);
  }
}

/** The container's process spec (the base of an exec's). */
export function processSpec(rt: LinuxRuntime, id: string): ProcessSpec {
  const p = rt.load(id).spec.process;
  if (!p) throw invalidArgument(`container ${id} has no process`);
  return p;
}
