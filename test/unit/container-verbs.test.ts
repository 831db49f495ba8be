/**
 * The container verbs on fakes: the `Sys` seam's recording fake, and recording fakes of the
 * runtime, the layer store, the networks and the volumes. Each test asserts the plan of calls a
 * verb makes, step by step (as devicemapper.test.ts does for its driver), and the record and
 * events it leaves: create, start (and a failed start's undo), exit and the restart policy,
 * update, stop.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { ContainerContext, type ContainerDeps } from "../../src/core/container/context.ts";
import { ContainerStore } from "../../src/core/container/container-store.ts";
import { createContainer } from "../../src/core/container/create.ts";
import { startContainer } from "../../src/core/container/start.ts";
import { stopContainer } from "../../src/core/container/stop.ts";
import { updateContainer } from "../../src/core/container/update.ts";
import { EventBus, type EventMessage } from "../../src/core/events/bus.ts";
import { Filters } from "../../src/core/filters.ts";
import { createLogger } from "../../src/core/log.ts";
import type { Resources, Spec } from "../../src/core/runtime/oci.ts";
import { createFakeSys } from "../../src/core/sys/fake-sys.ts";
import { tempDir } from "../helpers/daemon.ts";

const IMAGE_ID = `sha256:${"a".repeat(64)}`;
const TOP_CHAIN = `sha256:${"c".repeat(64)}`;

/** Every fake's calls, in the order they were made. */
type Call = [string, ...unknown[]];

function world() {
  const calls: Call[] = [];
  const rec = (name: string, ...args: unknown[]) => calls.push([name, ...args]);
  const dir = tempDir("bunker-verbs-");
  dirs.push(dir);
  const exits = new Map<string, (code: number) => void>();
  const failCreate: { err?: Error } = {};
  const layers = {
    driverName: "fake",
    prepareWritable: async (key: string, parent: string | undefined) => void rec("layers.prepareWritable", key, parent),
    mountWritable: async (key: string, target: string) => void rec("layers.mountWritable", key, target),
    unmountWritable: (key: string) => void rec("layers.unmountWritable", key),
    removeWritable: async (key: string) => void rec("layers.removeWritable", key),
    usage: async () => 0,
  };
  const images = {
    layers,
    provideBuiltin: async () => false,
    image: (name: string) => {
      rec("images.image", name);
      return { id: IMAGE_ID, chainIds: [TOP_CHAIN], config: { os: "linux", architecture: "amd64", config: { Cmd: ["/bin/sh"], Env: ["PATH=/bin"], WorkingDir: "" } } };
    },
    inspect: () => ({ Size: 0 }),
  };
  const runtime = {
    name: "fake",
    delete: async (id: string) => void rec("runtime.delete", id),
    create: async (id: string, opts: { spec?: Spec }) => {
      rec("runtime.create", id, opts.spec);
      if (failCreate.err) throw failCreate.err;
      return { pid: 4242 };
    },
    start: async (id: string) => void rec("runtime.start", id),
    watchExit: (id: string) => new Promise<number>((resolve) => exits.set(id, resolve)),
    kill: (id: string, sig: number, all?: boolean) => void rec("runtime.kill", id, sig, !!all),
    update: (id: string, r: Resources) => void rec("runtime.update", id, r),
    oomKills: () => 0,
    pause: () => undefined,
    resume: () => undefined,
    monitorFd: () => {
      throw new Error("no terminal in these tests");
    },
  };
  const networks = {
    find: () => undefined,
    initialNetworking: () => ({ Networks: {}, Ports: {}, SandboxKey: "" }),
    portsOf: () => [],
    allocate: async () => void rec("networks.allocate"),
    attach: async (_c: unknown, pid: number) => void rec("networks.attach", pid),
    detach: async () => void rec("networks.detach"),
    linkEnv: () => [],
    hostsEntries: () => [],
    dnsServerFor: () => undefined,
    daemonDns: undefined,
    hostGatewayIp: () => "172.17.0.1",
  };
  const volumes = { inUse: () => [], create: async () => ({ Name: "v", Driver: "local", Mountpoint: "/x" }), mount: async () => "/x", unmount: async () => undefined, remove: async () => undefined };
  const events = new EventBus();
  const seen: EventMessage[] = [];
  events.subscribe(Filters.parse(null, []), (e) => seen.push(e));
  const log = createLogger({ level: "fatal", sink: () => {} });
  const deps = {
    sys: createFakeSys(),
    store: new ContainerStore(dir),
    images: async () => images,
    runtime,
    events,
    log,
    networks,
    volumes,
  } as unknown as ContainerDeps;
  const ctx = new ContainerContext(deps);
  const exit = (id: string, code: number) => exits.get(id)!(code);
  return { ctx, calls, seen, exit, failCreate, dir };
}

const actions = (events: EventMessage[]) => events.filter((e) => e.Type === "container").map((e) => e.Action);

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("container verbs on fakes", () => {
  test("create merges the image's config, prepares the writable layer on the image's top layer, and records it", async () => {
    const w = world();
    const { Id } = await createContainer(w.ctx, { Image: "busybox", Env: ["A=1"], HostConfig: { Memory: 64 << 20 } }, "web");
    expect(w.calls).toEqual([
      ["images.image", "busybox"],
      ["layers.prepareWritable", `container-${Id}`, TOP_CHAIN],
    ]);
    const c = w.ctx.store.get("web");
    expect(c.Path).toBe("/bin/sh");
    expect(c.Config.Env).toEqual(["PATH=/bin", "A=1"]);
    expect(c.HostConfig.Memory).toBe(64 << 20);
    expect(c.State.Status).toBe("created");
    expect(actions(w.seen)).toEqual(["create"]);
  });

  test("a memory limit under 6 MB is refused with Docker's words before anything is prepared", async () => {
    const w = world();
    await expect(createContainer(w.ctx, { Image: "busybox", HostConfig: { Memory: 1 << 20 } })).rejects.toThrow("Minimum memory limit allowed is 6MB");
    await expect(createContainer(w.ctx, { Image: "busybox", HostConfig: { Memory: 64 << 20, MemorySwap: 32 << 20 } })).rejects.toThrow("Minimum memoryswap limit should be larger than memory limit");
    expect(w.calls.filter(([n]) => n.startsWith("layers."))).toEqual([]);
  });

  test("start runs its steps in order and hands the runtime the typed spec (-m 64m as linux.resources.memory.limit)", async () => {
    const w = world();
    const { Id } = await createContainer(w.ctx, { Image: "busybox", HostConfig: { Memory: 64 << 20 } });
    w.calls.length = 0;
    expect(await startContainer(w.ctx, Id)).toBe(true);
    expect(w.calls.map(([n]) => n)).toEqual(["layers.mountWritable", "networks.allocate", "runtime.delete", "runtime.create", "networks.attach", "runtime.start"]);
    const spec = w.calls.find(([n]) => n === "runtime.create")![2] as Spec;
    expect(spec.linux?.resources?.memory).toEqual({ limit: 64 << 20, swap: 128 << 20 });
    expect(spec.process?.args).toEqual(["/bin/sh"]);
    expect(w.calls.find(([n]) => n === "networks.attach")).toEqual(["networks.attach", 4242]);
    const c = w.ctx.store.get(Id);
    expect(c.State).toMatchObject({ Status: "running", Running: true, Pid: 4242 });
    expect(actions(w.seen)).toEqual(["create", "start"]);
    expect(await startContainer(w.ctx, Id)).toBe(false); // running already: 304
  });

  test("a start whose runtime create fails undoes the done steps, newest first, and records why", async () => {
    const w = world();
    const { Id } = await createContainer(w.ctx, { Image: "busybox", Cmd: ["nosuch"] });
    w.calls.length = 0;
    w.failCreate.err = new Error("exec: nosuch: ENOENT");
    await expect(startContainer(w.ctx, Id)).rejects.toThrow('exec: "nosuch": stat nosuch: no such file or directory');
    expect(w.calls.map(([n]) => n)).toEqual([
      "layers.mountWritable",
      "networks.allocate",
      "runtime.delete", // a leftover from a crash
      "runtime.create",
      "runtime.delete", // its own undo
      "networks.detach",
      "layers.unmountWritable",
    ]);
    const c = w.ctx.store.get(Id);
    expect(c.State).toMatchObject({ Status: "created", Running: false, ExitCode: 128, Error: "exec: nosuch: ENOENT" });
    expect(actions(w.seen)).toEqual(["create"]);
  });

  test("an exit releases what the container held, records the status, and on-failure restarts it after the backoff", async () => {
    const w = world();
    const { Id } = await createContainer(w.ctx, { Image: "busybox", HostConfig: { RestartPolicy: { Name: "on-failure", MaximumRetryCount: 1 } } });
    await startContainer(w.ctx, Id);
    w.calls.length = 0;
    w.exit(Id, 3);
    await w.ctx.live.get(Id)?.handled;
    expect(w.calls.map(([n]) => n)).toEqual(["runtime.delete", "layers.unmountWritable", "networks.detach"]);
    expect(w.ctx.store.get(Id).State).toMatchObject({ Status: "restarting", Restarting: true, ExitCode: 3 });
    expect(actions(w.seen)).toEqual(["create", "start", "die"]);
    // Docker's first backoff is 100 ms.
    for (let i = 0; i < 100 && w.ctx.store.get(Id).State.Status !== "running"; i++) await Bun.sleep(10);
    expect(w.ctx.store.get(Id)).toMatchObject({ RestartCount: 1, State: { Status: "running" } });
    expect(actions(w.seen)).toEqual(["create", "start", "die", "start", "restart"]);
    w.exit(Id, 3);
    await w.ctx.live.get(Id)?.handled;
    expect(w.ctx.store.get(Id).State.Status).toBe("exited"); // MaximumRetryCount reached
  });

  test("update writes the same resources a start would (no device rules) and refuses what a create refuses", async () => {
    const w = world();
    const { Id } = await createContainer(w.ctx, { Image: "busybox" });
    await startContainer(w.ctx, Id);
    w.calls.length = 0;
    updateContainer(w.ctx, Id, { Memory: 32 << 20, MemorySwap: -1, CpuShares: 512 });
    expect(w.calls).toEqual([["runtime.update", Id, { memory: { limit: 32 << 20, swap: -1 }, cpu: { shares: 512 } }]]);
    expect(w.ctx.store.get(Id).HostConfig.Memory).toBe(32 << 20);
    expect(() => updateContainer(w.ctx, Id, { Memory: 1 << 20 })).toThrow("Minimum memory limit allowed is 6MB");
    expect(() => updateContainer(w.ctx, Id, { NanoCpus: 1e9, CpuQuota: 50000 })).toThrow("Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set");
    expect(w.calls.length).toBe(1);
    expect(actions(w.seen).at(-1)).toBe("update");
  });

  test("stop sends the stop signal, then SIGKILL after the timeout, and answers once the exit is recorded", async () => {
    const w = world();
    const { Id } = await createContainer(w.ctx, { Image: "busybox", StopSignal: "SIGUSR1" });
    await startContainer(w.ctx, Id);
    w.calls.length = 0;
    const stopped = stopContainer(w.ctx, Id, 0);
    for (let i = 0; i < 100 && !w.calls.some(([n, , sig]) => n === "runtime.kill" && sig === 9); i++) await Bun.sleep(5);
    expect(w.calls.filter(([n]) => n === "runtime.kill")).toEqual([
      ["runtime.kill", Id, 10, false],
      ["runtime.kill", Id, 9, true],
    ]);
    w.exit(Id, 137);
    expect(await stopped).toBe(true);
    expect(w.ctx.store.get(Id)).toMatchObject({ ManuallyStopped: true, State: { Status: "exited", ExitCode: 137 } });
    expect(actions(w.seen).slice(-2)).toEqual(["die", "stop"]);
  });
});
