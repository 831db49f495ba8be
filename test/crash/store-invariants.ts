/**
 * What a data root must look like after any crash and restart, read from the engine's API and
 * its files: every listed object usable, nothing on disk that no record owns (snapshots, staging
 * directories, mounts, runtime state), no container left frozen or half-started.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** A JSON API call over the daemon's socket. */
export type Api = (method: string, path: string, body?: unknown) => Promise<{ status: number; json: any; text: string }>;

/** An API client on a Unix socket. */
export function apiOn(socket: string): Api {
  return async (method, path, body) => {
    const r = await fetch(`http://localhost${path}`, {
      method,
      unix: socket,
      ...(body !== undefined ? { body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body), headers: { "content-type": body instanceof Uint8Array ? "application/x-tar" : "application/json" } } : {}),
      signal: AbortSignal.timeout(30_000),
    } as RequestInit);
    const text = await r.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: r.status, json, text };
  };
}

/** Chain IDs of a layer list (diff IDs, lowest first), as the image spec defines them. */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) out.push(out.length ? `sha256:${createHash("sha256").update(`${out.at(-1)} ${d}`).digest("hex")}` : d);
  return out;
}

/** The container records on disk (the store's own files). */
export function containerRecords(dataRoot: string): { Id: string; RwLayer: string; State: { Running: boolean; Paused: boolean; Pid: number; Status: string } }[] {
  const dir = join(dataRoot, "containers");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((id) => existsSync(join(dir, id, "config.v2.json")))
    .map((id) => JSON.parse(readFileSync(join(dir, id, "config.v2.json"), "utf8")));
}

/**
 * The invariants, as a list of problems (empty: all hold). `driver`: the storage driver's name
 * (its snapshots are read from `storage.v1.<driver>/metadata.json`).
 */
export async function storeProblems(api: Api, dataRoot: string, driver: string): Promise<string[]> {
  const problems: string[] = [];
  const containers = (await api("GET", "/containers/json?all=1")).json as { Id: string; State: string }[];
  if (!Array.isArray(containers)) return ["GET /containers/json failed"];
  const owned = new Set<string>();
  for (const c of containers) {
    const i = await api("GET", `/containers/${c.Id}/json`);
    if (i.status !== 200) {
      problems.push(`listed container ${c.Id.slice(0, 12)} does not inspect: ${i.status} ${i.text.trim()}`);
      continue;
    }
    const st = i.json.State;
    if (st.Running && !st.Paused) {
      const pid = st.Pid as number;
      if (!pid || !existsSync(`/proc/${pid}`)) problems.push(`container ${c.Id.slice(0, 12)} listed as running, its process ${pid} is gone`);
      const frozen = freezerState(pid);
      if (frozen && frozen !== "THAWED") problems.push(`container ${c.Id.slice(0, 12)} is not paused but its cgroup is ${frozen}`);
    }
    if (!st.Running && st.Pid) problems.push(`container ${c.Id.slice(0, 12)} is not running but has pid ${st.Pid}`);
  }
  for (const rec of containerRecords(dataRoot)) {
    owned.add(rec.RwLayer);
    if (!containers.some((c) => c.Id === rec.Id)) problems.push(`container record ${rec.Id.slice(0, 12)} on disk is not listed`);
  }
  const images = (await api("GET", "/images/json?all=1")).json as { Id: string }[];
  const chains = new Set<string>();
  for (const im of images ?? []) {
    const i = await api("GET", `/images/${im.Id}/json`);
    if (i.status !== 200) {
      problems.push(`listed image ${im.Id.slice(7, 19)} does not inspect: ${i.status}`);
      continue;
    }
    for (const ch of chainIds(i.json.RootFS?.Layers ?? [])) chains.add(ch);
  }
  const volumes = ((await api("GET", "/volumes")).json?.Volumes ?? []) as { Name: string; Mountpoint: string; Driver: string }[];
  for (const v of volumes) if (v.Driver === "local" && !existsSync(v.Mountpoint)) problems.push(`listed volume ${v.Name} has no directory`);
  const volDir = join(dataRoot, "volumes");
  if (existsSync(volDir))
    for (const n of readdirSync(volDir)) {
      if (n.startsWith(".")) {
        if (readdirSync(join(volDir, n)).length) problems.push(`volume removals left unfinished in ${n}: ${readdirSync(join(volDir, n)).join(", ")}`);
      } else if (!volumes.some((v) => v.Name === n)) problems.push(`volume directory ${n} on disk is not listed`);
    }
  // Snapshots: each one owned by an image's chain or a container's writable layer.
  const meta = join(dataRoot, `storage.v1.${driver}`, "metadata.json");
  if (existsSync(meta)) {
    const snaps = Object.values(JSON.parse(readFileSync(meta, "utf8")).snapshots ?? {}) as { key: string; kind: string; id: number }[];
    for (const s of snaps) {
      if (s.kind === "committed" ? !chains.has(s.key) : !owned.has(s.key)) problems.push(`snapshot ${s.key.slice(0, 40)} (${s.kind}) is owned by no image or container`);
    }
    const dirs = join(dataRoot, `storage.v1.${driver}`, "snapshots");
    if (existsSync(dirs)) for (const d of readdirSync(dirs)) if (!snaps.some((s) => String(s.id) === d)) problems.push(`snapshot directory ${d} has no record`);
  }
  const tmp = join(dataRoot, "tmp");
  if (existsSync(tmp) && readdirSync(tmp).length) problems.push(`staging directories left: ${readdirSync(tmp).join(", ")}`);
  // Mounts under the data root: only running containers' roots.
  const running = new Set(containers.filter((c) => c.State === "running" || c.State === "paused").map((c) => c.Id));
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const mp = line.split(" ")[4];
    if (!mp?.startsWith(dataRoot + "/")) continue;
    const m = /\/containers\/([0-9a-f]{64})\/rootfs$/.exec(mp);
    if (!m || !running.has(m[1]!)) problems.push(`mount left: ${mp}`);
  }
  return problems;
}

/** The freezer state of a process's cgroup (v1 freezer.state, or v2 cgroup.freeze), or undefined. */
function freezerState(pid: number): string | undefined {
  try {
    const lines = readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n");
    const v1 = lines.find((l) => /^\d+:freezer:/.test(l));
    if (v1) return readFileSync(join("/sys/fs/cgroup/freezer", v1.split(":")[2]!, "freezer.state"), "utf8").trim();
    const v2 = lines.find((l) => l.startsWith("0::"));
    if (v2) return readFileSync(join("/sys/fs/cgroup", v2.slice(3), "cgroup.freeze"), "utf8").trim() === "1" ? "FROZEN" : "THAWED";
  } catch {
    return undefined;
  }
  return undefined;
}
