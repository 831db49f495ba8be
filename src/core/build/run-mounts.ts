/**
 * RUN `--mount`s made real for one step: cache directories leased from {@link CacheMounts},
 * binds from the context, a stage or an image (a read-write bind gets a scratch copy whose
 * writes are thrown away, as BuildKit does), tmpfs, and secrets written to a private tmpfs
 * file bound read-only, SSH agent sockets forwarded to the client's agent. The mount targets the runtime had to create are left out of the
 * step's layer, so neither a secret nor its empty stub ends up in the image.
 */
import { chmodSync, chownSync, cpSync, existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join, posix } from "node:path";
import { tmpdir } from "node:os";
import { BuildError, type BuildRun, type Stage } from "./build-types.ts";
import type { RunFlags, RunMount } from "./run-flags.ts";

/** A mount in the Docker API's `HostConfig.Mounts` shape. */
export interface HostMount {
  Type: "bind" | "tmpfs";
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

/** The step's mounts, ready for its container. */
export interface PreparedMounts {
  mounts: HostMount[];
  /** Paths (no leading slash) to leave out of the step's layer. */
  drop: string[];
  /** Environment the mounts add to the step (`SSH_AUTH_SOCK`). */
  env: string[];
}

/** A stage's or an image's root, mounted for the duration of `fn`. */
export type WithSourceRoot = <T>(from: string, fn: (root: string) => Promise<T>) => Promise<T>;

/** `rel` inside `root`, refusing a path that leaves it (through `..` or a symlink). */
function inside(root: string, rel: string): string {
  const want = join(root, posix.normalize(`/${rel || "/"}`));
  if (!existsSync(want)) throw new BuildError(`failed to compute cache key: "${rel}" not found`);
  const real = realpathSync(want);
  const realRoot = realpathSync(root);
  if (real !== realRoot && !real.startsWith(`${realRoot}/`)) throw new BuildError(`mount source ${rel} points outside its root`);
  return real;
}

/**
 * Make `flags.mounts` real, run `body` with them, and release them after (cache leases,
 * scratch copies, secret files), whatever `body` does.
 */
export async function withRunMounts<T>(run: BuildRun, s: Stage, flags: RunFlags, withSourceRoot: WithSourceRoot, body: (p: PreparedMounts) => Promise<T>): Promise<T> {
  const cleanups: (() => void)[] = [];
  const prepared: PreparedMounts = { mounts: [], env: [], drop: flags.mounts.filter((m) => m.target).map((m) => m.target.slice(1)) };
  const step = async (i: number): Promise<T> => {
    if (i === flags.mounts.length) return body(prepared);
    const m = flags.mounts[i]!;
    if ((m.type === "bind" || m.type === "cache") && m.from) return withSourceRoot(m.from, async (root) => (await addMount(run, s, m, root, prepared, cleanups), step(i + 1)));
    await addMount(run, s, m, run.opts.context, prepared, cleanups);
    return step(i + 1);
  };
  try {
    return await step(0);
  } finally {
    for (const c of cleanups.reverse()) c();
  }
}

async function addMount(run: BuildRun, _s: Stage, m: RunMount, sourceRoot: string, out: PreparedMounts, cleanups: (() => void)[]): Promise<void> {
  switch (m.type) {
    case "bind": {
      const src = inside(sourceRoot, m.source ?? "/");
      if (m.readonly) {
        out.mounts.push({ Type: "bind", Source: src, Target: m.target, ReadOnly: true });
        return;
      }
      const scratch = mkdtempSync(join(run.deps.scratchRoot ?? tmpdir(), "bind-rw-"));
      cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
      cpSync(src, join(scratch, "data"), { recursive: true, verbatimSymlinks: true });
      out.mounts.push({ Type: "bind", Source: join(scratch, "data"), Target: m.target, ReadOnly: false });
      return;
    }
    case "cache": {
      if (!run.deps.cacheMounts) throw new BuildError("cache mounts are not available in this builder");
      const lease = await run.deps.cacheMounts.acquire(m.id!, m.sharing, { mode: m.mode ?? 0o755, uid: m.uid ?? 0, gid: m.gid ?? 0 });
      cleanups.push(() => lease.release());
      if (m.from && !existsSync(join(lease.path, ".bunker-seeded"))) {
        cpSync(inside(sourceRoot, m.source ?? "/"), lease.path, { recursive: true, verbatimSymlinks: true });
        writeFileSync(join(lease.path, ".bunker-seeded"), "");
      }
      out.mounts.push({ Type: "bind", Source: lease.path, Target: m.target, ReadOnly: m.readonly });
      return;
    }
    case "tmpfs":
      out.mounts.push({ Type: "tmpfs", Target: m.target, TmpfsOptions: { ...(m.size ? { SizeBytes: m.size } : {}) } });
      return;
    case "secret": {
      if (m.env) throw new BuildError(`secret ${m.id}: env= is not supported by Bunker's builder yet (mount it as a file)`);
      const data = await run.opts.secret?.(m.id!);
      if (data === undefined) {
        if (m.required) throw new BuildError(`secret ${m.id}: not found`);
        out.drop = out.drop.filter((d) => d !== m.target.slice(1));
        return;
      }
      // A tmpfs (when the host has /dev/shm) keeps the secret off the disk.
      const dir = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "bunker-secret-"));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const file = join(dir, "secret");
      writeFileSync(file, data, { mode: 0o600 });
      chownSync(file, m.uid ?? 0, m.gid ?? 0);
      chmodSync(file, m.mode ?? 0o400);
      out.mounts.push({ Type: "bind", Source: file, Target: m.target, ReadOnly: true });
      return;
    }
    case "ssh": {
      // As BuildKit: an optional agent that is not there is skipped; a required one fails the step.
      let agent: { path: string; close(): void };
      try {
        if (!run.opts.sshAgent) throw new Error(`no SSH key "${m.id}" forwarded from the client`);
        agent = await run.opts.sshAgent(m.id!, { uid: m.uid ?? 0, gid: m.gid ?? 0, mode: m.mode ?? 0o600 });
      } catch (err) {
        if (m.required) throw new BuildError((err as Error).message);
        out.drop = out.drop.filter((d) => d !== m.target.slice(1));
        return;
      }
      cleanups.push(() => agent.close());
      out.mounts.push({ Type: "bind", Source: agent.path, Target: m.target, ReadOnly: false });
      // As BuildKit: the first agent socket is the step's SSH_AUTH_SOCK.
      if (!out.env.some((e) => e.startsWith("SSH_AUTH_SOCK="))) out.env.push(`SSH_AUTH_SOCK=${m.target}`);
      return;
    }
  }
}
