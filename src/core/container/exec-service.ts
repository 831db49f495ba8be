/**
 * `docker exec`: exec instances (`POST /containers/{id}/exec`, `POST /exec/{id}/start`,
 * `GET /exec/{id}/json`, `POST /exec/{id}/resize`). The process joins every namespace and the
 * cgroup of the container's init, with the container's process settings unless the exec says
 * otherwise; its stdio are pipes (or a pty) held by the daemon. The exit code is recorded before
 * the attached stream closes, since the CLI asks for it right after.
 */
import { ignored } from "../log.ts";
import { randomHex } from "../bytes.ts";
import { closeSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ReadStream } from "node:tty";
import * as v from "valibot";
import { conflict, invalidArgument, notFound } from "../errors.ts";
import type { EventBus } from "../events/bus.ts";
import type { ContainerRuntime, RuntimeProcess } from "../runtime/types.ts";
import { AT_FDCWD, O_CLOEXEC, O_RDONLY, type Sys } from "../sys/sys.ts";
import { foldKeys, parseOrThrow } from "../validate.ts";
import type { ContainerStore } from "./container-store.ts";
import { ALL_CAPS } from "./oci-spec.ts";
import { mergeEnv } from "./env.ts";
import { resolveUser } from "./user.ts";
import { WriteQueue } from "./write-queue.ts";

const ExecConfigSchema = v.looseObject({
  User: v.nullish(v.string()),
  Privileged: v.nullish(v.boolean()),
  Tty: v.nullish(v.boolean()),
  ConsoleSize: v.nullish(v.array(v.pipe(v.number(), v.integer()))),
  AttachStdin: v.nullish(v.boolean()),
  AttachStdout: v.nullish(v.boolean()),
  AttachStderr: v.nullish(v.boolean()),
  DetachKeys: v.nullish(v.string()),
  Env: v.nullish(v.array(v.string())),
  WorkingDir: v.nullish(v.string()),
  Cmd: v.nullish(v.array(v.string())),
});
type ExecConfig = v.InferOutput<typeof ExecConfigSchema>;

/** One exec instance. */
interface ExecInstance {
  id: string;
  containerId: string;
  config: ExecConfig;
  running: boolean;
  exitCode: number | null;
  pid: number;
  /** Input fd (stdin pipe write end, or the pty master). */
  input?: number;
  master?: number;
  started: boolean;
}

/** Where an exec's output goes (the hijacked stream), by stream number 1 or 2. */
export interface ExecSink {
  data(stream: 1 | 2, chunk: Uint8Array): void;
}

/** The exec instances of the daemon. */
export class ExecService {
  private readonly execs = new Map<string, ExecInstance>();

  constructor(private readonly deps: { sys: Sys; store: ContainerStore; runtime: ContainerRuntime; events: EventBus }) {}

  /** `POST /containers/{id}/exec`. */
  create(ref: string, raw: unknown): string {
    const config = parseOrThrow(ExecConfigSchema, foldKeys(raw ?? {}, ExecConfigSchema.entries), "exec config");
    const c = this.deps.store.get(ref);
    if (!c.State.Running) throw conflict(`container ${c.Id} is not running`);
    if (c.State.Paused) throw conflict(`container ${c.Id} is paused, unpause the container before exec`);
    if (!config.Cmd?.length) throw invalidArgument("No exec command specified");
    const id = randomHex(32);
    this.execs.set(id, { id, containerId: c.Id, config, running: false, exitCode: null, pid: 0, started: false });
    this.deps.events.publish({ Type: "container", Action: `exec_create: ${config.Cmd.join(" ")}`, Actor: { ID: c.Id, Attributes: { name: c.Name.slice(1), image: c.ImageName, execID: id } } });
    return id;
  }

  /** Forget a container's finished exec instances (it stopped or went away), as dockerd does. */
  forget(containerId: string): void {
    for (const [id, e] of this.execs) if (e.containerId === containerId && !e.running) this.execs.delete(id);
  }

  /** IDs of the container's exec instances (inspect's ExecIDs). */
  idsOf(containerId: string): string[] {
    return [...this.execs.values()].filter((e) => e.containerId === containerId).map((e) => e.id);
  }

  get(id: string): ExecInstance {
    const e = this.execs.get(id);
    if (!e) throw notFound(`No such exec instance: ${id}`);
    return e;
  }

  /** `GET /exec/{id}/json`. */
  inspect(id: string): Record<string, unknown> {
    const e = this.get(id);
    const c = this.deps.store.get(e.containerId);
    return {
      ID: e.id,
      Running: e.running,
      ExitCode: e.exitCode,
      ProcessConfig: { tty: !!e.config.Tty, entrypoint: e.config.Cmd![0], arguments: e.config.Cmd!.slice(1), privileged: !!e.config.Privileged, user: e.config.User ?? "" },
      OpenStdin: !!e.config.AttachStdin,
      OpenStderr: !!e.config.AttachStderr,
      OpenStdout: !!e.config.AttachStdout,
      CanRemove: false,
      ContainerID: c.Id,
      DetachKeys: e.config.DetachKeys ?? "",
      Pid: e.pid,
    };
  }

  /** The process spec: the container's, with the exec's command, env, user, cwd and terminal. */
  private processFor(e: ExecInstance): RuntimeProcess {
    const c = this.deps.store.get(e.containerId);
    const spec = JSON.parse(readFileSync(join(this.deps.store.dir(c.Id), "bundle", "config.json"), "utf8")) as { process: RuntimeProcess & { env?: string[]; user: Record<string, unknown>; capabilities: Record<string, string[]> } };
    const base = spec.process;
    const cfg = e.config;
    const proc: RuntimeProcess = {
      ...base,
      terminal: !!cfg.Tty,
      args: cfg.Cmd!,
      env: mergeEnv(base.env, cfg.Tty ? ["TERM=xterm"] : [], cfg.Env),
      cwd: cfg.WorkingDir || base.cwd,
    };
    if (cfg.Tty && cfg.ConsoleSize?.length === 2 && cfg.ConsoleSize[0]! > 0) proc.consoleSize = { height: cfg.ConsoleSize[0], width: cfg.ConsoleSize[1] };
    else delete proc.consoleSize;
    if (cfg.User) {
      const { home, ...user } = resolveUser(this.deps.sys, join(this.deps.store.dir(c.Id), "rootfs"), cfg.User);
      proc.user = user;
      // HOME is the exec user's unless the image, the container or the exec set one (as with runc).
      if (![...(c.Config.Env ?? []), ...(cfg.Env ?? [])].some((x) => x.startsWith("HOME="))) proc.env = mergeEnv(proc.env as string[], [`HOME=${home}`]);
    }
    if (cfg.Privileged) proc.capabilities = { bounding: ALL_CAPS, effective: ALL_CAPS, permitted: ALL_CAPS };
    return proc;
  }

  /**
   * `POST /exec/{id}/start`: run it; output goes to `sink` until the process ends; resolves with
   * the exit code (recorded before it resolves). With `detach` it resolves at once.
   */
  async start(id: string, opts: { detach: boolean; sink?: ExecSink }): Promise<{ done: Promise<number>; input(chunk: Uint8Array): void; endInput(): void; resize(h: number, w: number): void }> {
    const e = this.get(id);
    if (e.started) throw conflict(`Error: Exec command ${id} has already run`);
    const c = this.deps.store.get(e.containerId);
    if (!c.State.Running) throw conflict(`container ${c.Id} is not running`);
    e.started = true;
    const cfg = e.config;
    const sys = this.deps.sys;
    const proc = this.processFor(e);
    const fds: number[] = [];
    let stdio: [number, number, number] | undefined;
    const readers: Promise<void>[] = [];
    // Bun's stream of a pipe or pty fd reads through its event loop (epoll), not a pool thread:
    // a blocked read must not hold one of the few threads the daemon's file I/O runs on.
    const pump = async (fd: number, stream: 1 | 2) => {
      try {
        for await (const chunk of Bun.file(fd).stream()) opts.sink?.data(stream, chunk);
      } catch (err) {
        ignored("the reader failed: the output ends", err);
      } finally {
        // Bun's stream of an fd does not close it at its end: two pipes leaked per exec (a health
        // check every second exhausted the daemon's descriptors).
        sys.close(fd);
      }
    };
    // A pty master is a character device, which Bun's file stream reads with pread (ESPIPE); a
    // tty stream polls it. EIO when the last slave closes is its end.
    let ptyStream: ReadStream | undefined; // owns the master: closes it when destroyed
    const pumpPty = (fd: number) =>
      new Promise<void>((resolve) => {
        const s = (ptyStream = new ReadStream(fd));
        s.on("data", (d: Buffer) => opts.sink?.data(1, d));
        s.on("error", () => resolve());
        s.on("close", () => resolve());
      });
    if (!cfg.Tty) {
      const [outR, outW] = sys.pipe();
      const [errR, errW] = sys.pipe();
      let inR: number;
      if (cfg.AttachStdin && !opts.detach) {
        const [r, w] = sys.pipe();
        inR = r;
        e.input = w;
      } else inR = sys.openat2(AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC, 0, 0);
      stdio = [inR, outW, errW];
      fds.push(inR, outW, errW);
      readers.push(pump(outR, 1), pump(errR, 2));
    }
    let started;
    try {
      started = await this.deps.runtime.exec(c.Id, proc, stdio ? { stdio } : {});
    } catch (err) {
      e.exitCode = 126; // dockerd: any exec that cannot start (missing, not executable) is 126
      throw err;
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    if (started.master !== undefined) {
      e.master = started.master;
      e.input = started.master;
      readers.push(pumpPty(started.master));
      if (cfg.ConsoleSize?.length === 2 && cfg.ConsoleSize[0]! > 0) resizePty(sys, started.master, cfg.ConsoleSize[0]!, cfg.ConsoleSize[1]!);
    }
    e.running = true;
    e.pid = started.pid;
    this.deps.events.publish({ Type: "container", Action: `exec_start: ${cfg.Cmd!.join(" ")}`, Actor: { ID: c.Id, Attributes: { name: c.Name.slice(1), image: c.ImageName, execID: id } } });
    const done = (async () => {
      const code = await this.deps.runtime.waitExit(started.waitPid);
      // A background child may keep the pipes open: output is waited for only briefly after the exit.
      await Promise.race([Promise.all(readers), Bun.sleep(started.master !== undefined ? 50 : 2000)]);
      e.running = false;
      e.exitCode = code;
      if (ptyStream) ptyStream.destroy();
      else if (e.input !== undefined) closeSync(e.input);
      delete e.input;
      delete e.master;
      this.deps.events.publish({ Type: "container", Action: "exec_die", Actor: { ID: c.Id, Attributes: { name: c.Name.slice(1), image: c.ImageName, execID: id, exitCode: String(code) } } });
      return code;
    })();
    const queue = new WriteQueue();
    return {
      done,
      input: (chunk) => {
        if (e.input !== undefined) queue.write(e.input, chunk);
      },
      endInput: () => {
        if (cfg.Tty || e.input === undefined) return;
        const fd = e.input;
        delete e.input;
        queue.then(() => closeSync(fd));
      },
      resize: (h, w) => this.resize(id, h, w),
    };
  }

  /**
   * Run `cmd` in the container and collect its output (a health check): killed after
   * `timeoutMs`, which counts as a failure (exit code -1), as dockerd reports it.
   */
  async probe(containerId: string, cmd: string[], timeoutMs: number): Promise<{ exitCode: number; output: string }> {
    const id = this.create(containerId, { Cmd: cmd, AttachStdout: true, AttachStderr: true });
    let output = "";
    const dec = new TextDecoder();
    const run = await this.start(id, { detach: false, sink: { data: (_s, chunk) => void (output.length < 8192 && (output += dec.decode(chunk))) } });
    const e = this.get(id);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
    const r = await Promise.race([run.done, timedOut]);
    clearTimeout(timer);
    this.execs.delete(id);
    if (r === "timeout") {
      try {
        process.kill(e.pid, "SIGKILL");
      } catch (err) {
        ignored("gone", err);
      }
      return { exitCode: -1, output: `Health check exceeded timeout (${timeoutMs / 1000}s)` };
    }
    return { exitCode: r, output };
  }

  /** `POST /exec/{id}/resize`. */
  resize(id: string, h: number, w: number): void {
    const e = this.get(id);
    if (e.master === undefined) {
      if (!e.running && e.started) throw conflict(`exec ${id} is not running`);
      return;
    }
    resizePty(this.deps.sys, e.master, h, w);
  }
}

/** Set a terminal's size (TIOCSWINSZ on its master): containers' and execs' ptys. */
export function resizePty(sys: Sys, fd: number, h: number, w: number, what = "the exec's terminal"): void {
  const ws = new Uint8Array(8);
  new DataView(ws.buffer).setUint16(0, h, true);
  new DataView(ws.buffer).setUint16(2, w, true);
  sys.ioctl(fd, 0x5414 /* TIOCSWINSZ */, ws, what);
}
