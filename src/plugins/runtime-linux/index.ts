/**
 * Registration of the Linux runtime as the engine's `runtime.v1` plugin "linux": the FFI
 * libcontainer of this directory, with every container under a monitor (README.md). State lives
 * in `<exec-root>/runtime.v1.linux`, cgroups under the configured parent.
 */
import { join } from "node:path";
import * as v from "valibot";
import { NotSupportedError } from "../../core/errors.ts";
import { definePlugin } from "../../core/plugin/types.ts";
import type { ContainerRuntime, RuntimeProcess } from "../../core/runtime/types.ts";
import { configFrom } from "../../core/validate.ts";
import type { LinuxRuntime } from "./runtime.ts";
import type { ProcessSpec } from "../../core/runtime/oci.ts";

const Config = v.object({
  /** Parent of the containers' cgroups (like dockerd's --cgroup-parent). */
  "cgroup-parent": v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/, "must be a relative cgroup path")), "bunker"),
});

/**
 * The engine's view of a LinuxRuntime, made on first use: an idle daemon with no containers does
 * not carry the runtime's modules (the plan builder, seccomp tables: several MB resident).
 */
export function linuxContainerRuntime(make: () => LinuxRuntime): ContainerRuntime {
  let instance: LinuxRuntime | undefined;
  const rt = () => (instance ??= make());
  return {
    name: "linux",
    async create(id, opts) {
      const c = await rt().create(id, { bundle: opts.bundle, monitor: true, io: opts.io, ...(opts.spec ? { spec: opts.spec } : {}) });
      return { pid: c.pid, ...(c.stdin !== undefined ? { stdin: c.stdin } : {}) };
    },
    start: (id) => rt().start(id),
    state(id) {
      const s = rt().state(id);
      return { id: s.id, status: s.status === "creating" ? "created" : s.status, pid: s.pid };
    },
    list: () =>
      rt()
        .list()
        .map((s) => s.id),
    kill: (id, signal, all) => rt().kill(id, signal, all),
    pause: (id) => rt().pause(id),
    resume: (id) => rt().resume(id),
    delete: (id, force) => rt().delete(id, force),
    exitCode: (id) => rt().exitCode(id),
    oomKills: (id) => rt().oomKills(id),
    pids: (id) => rt().ps(id),
    stats: (id) => rt().stats(id),
    update: (id, resources) => rt().update(id, resources),
    monitorFd: (id, which) => rt().monitorFd(id, which),
    exec: (id, process: RuntimeProcess, opts) => rt().exec(id, process as unknown as ProcessSpec, { ...(opts.stdio ? { stdio: opts.stdio } : {}), receiveTerminal: true }),
    waitExit: (pid) => rt().waitExit(pid),
    watchExit: (id) => rt().watchExit(id),
  };
}

export const linuxRuntimePlugin = definePlugin({
  type: "runtime.v1",
  id: "linux",
  config: configFrom(Config, { "cgroup-parent": "bunker" }),
  async init(ctx) {
    if (process.platform !== "linux") throw new NotSupportedError("needs Linux");
    if (process.getuid?.() !== 0) throw new NotSupportedError("needs root (rootless containers are not supported yet)");
    // Live processes' state: under the exec root (tmpfs), not the data root.
    return linuxContainerRuntime(() => {
      const { LinuxRuntime } = require("./runtime.ts") as typeof import("./runtime.ts");
      return new LinuxRuntime(ctx.sys, join(ctx.execRoot, "runtime.v1.linux"), ctx.config["cgroup-parent"]);
    });
  },
});
