/**
 * A container's mounts from `-v`/`Binds`, `--mount`/`Mounts`, `--tmpfs` and the image's and
 * request's `Volumes` (anonymous volumes), in Docker's syntax and with its messages; and their
 * runtime-spec form at start.
 */
import type { MountSpec } from "../runtime/oci.ts";
import { existsSync } from "node:fs";
import { posix } from "node:path";
import { invalidArgument } from "../errors.ts";
import type { ContainerConfig, HostConfig } from "./create-config.ts";

/** One mount as recorded with the container (and shown by inspect's `Mounts`). */
export interface MountPoint {
  Type: "bind" | "volume" | "tmpfs";
  /** Volume name (volumes only). */
  Name?: string;
  /** Host path (binds), empty until start for volumes (their mountpoint). */
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
  /** Volumes: copy the image's content at the destination into an empty volume on first start. */
  CopyUp?: boolean;
  /** Anonymous volume (removed with `rm -v`). */
  Anonymous?: boolean;
  /** tmpfs options (size=…, mode=…). */
  TmpfsOptions?: string[];
  /** From `HostConfig.Tmpfs` (`--tmpfs`): mounted, but not listed in inspect's Mounts (as Docker). */
  FromTmpfsOption?: boolean;
}

const PROPAGATION = ["shared", "slave", "private", "rshared", "rslave", "rprivate"];

function cleanDest(d: string, spec: string): string {
  if (!d.startsWith("/")) throw invalidArgument(`invalid volume specification: '${spec}': invalid mount config for type "volume": invalid mount path: '${d}' mount path must be absolute`);
  const n = posix.normalize(d);
  if (n === "/") throw invalidArgument(`invalid volume specification: '${spec}': invalid mount config for type "bind": invalid specification: destination can't be '/'`);
  return n.replace(/\/+$/, "");
}

/** `src:dst[:opts]` (a `-v` / Binds entry). */
export function parseBind(spec: string): MountPoint {
  const parts = spec.split(":");
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) throw invalidArgument(`invalid volume specification: '${spec}'`);
  const [src, dst, opts = ""] = parts as [string, string, string?];
  let rw = true;
  let propagation = "";
  let copy = true;
  for (const o of opts.split(",").filter(Boolean)) {
    if (o === "ro") rw = false;
    else if (o === "rw") rw = true;
    else if (PROPAGATION.includes(o)) propagation = o;
    else if (o === "nocopy") copy = false;
    else if (o === "z" || o === "Z" || o === "consistent" || o === "cached" || o === "delegated") continue;
    else throw invalidArgument(`invalid mode: ${o}`);
  }
  const destination = cleanDest(dst, spec);
  if (src.startsWith("/")) {
    if (!existsSync(src)) throw invalidArgument(`invalid mount config for type "bind": bind source path does not exist: ${src}`);
    return { Type: "bind", Source: posix.normalize(src), Destination: destination, Mode: opts, RW: rw, Propagation: propagation || "rprivate" };
  }
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(src))
    throw invalidArgument(`create ${src}: "${src}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
  if (propagation) throw invalidArgument(`invalid volume specification: '${spec}': propagation is only for bind mounts`);
  return { Type: "volume", Name: src, Source: "", Destination: destination, Driver: "local", Mode: opts, RW: rw, Propagation: "", CopyUp: copy };
}

/** Every mount of a container being created, checked (no duplicate destination). */
export function containerMounts(config: ContainerConfig, host: HostConfig, imageVolumes: Record<string, unknown>, volumesOf: (container: string) => MountPoint[] = () => []): MountPoint[] {
  const out: MountPoint[] = [];
  const add = (m: MountPoint) => {
    if (out.some((x) => x.Destination === m.Destination)) throw invalidArgument(`Duplicate mount point: ${m.Destination}`);
    out.push(m);
  };
  for (const b of host.Binds ?? []) add(parseBind(b));
  for (const m of host.Mounts ?? []) {
    const dest = cleanDest(m.Target, m.Target);
    if (m.Type === "bind") {
      if (!m.Source) throw invalidArgument(`invalid mount config for type "bind": field Source must not be empty`);
      if (!existsSync(m.Source)) throw invalidArgument(`invalid mount config for type "bind": bind source path does not exist: ${m.Source}`);
      const prop = m.BindOptions?.Propagation || "rprivate";
      if (!PROPAGATION.includes(prop)) throw invalidArgument(`invalid mount config for type "bind": invalid propagation mode: ${prop}`);
      add({ Type: "bind", Source: posix.normalize(m.Source), Destination: dest, Mode: "", RW: !m.ReadOnly, Propagation: prop });
    } else if (m.Type === "volume") {
      const anonymous = !m.Source;
      add({
        Type: "volume",
        ...(m.Source ? { Name: m.Source } : {}),
        Source: "",
        Destination: dest,
        Driver: m.VolumeOptions?.DriverConfig?.Name || "local",
        Mode: "",
        RW: !m.ReadOnly,
        Propagation: "",
        CopyUp: !m.VolumeOptions?.NoCopy,
        ...(anonymous ? { Anonymous: true } : {}),
      });
    } else if (m.Type === "tmpfs") {
      if (m.Source) throw invalidArgument(`invalid mount config for type "tmpfs": field Source must not be specified`);
      const opts = [...(m.TmpfsOptions?.SizeBytes ? [`size=${m.TmpfsOptions.SizeBytes}`] : []), ...(m.TmpfsOptions?.Mode ? [`mode=${m.TmpfsOptions.Mode.toString(8)}`] : [])];
      add({ Type: "tmpfs", Source: "", Destination: dest, Mode: "", RW: !m.ReadOnly, Propagation: "", TmpfsOptions: opts });
    } else throw invalidArgument(`mount type ${m.Type} is not supported`);
  }
  for (const [dest, opts] of Object.entries(host.Tmpfs ?? {})) add({ Type: "tmpfs", Source: "", Destination: cleanDest(dest, dest), Mode: "", RW: true, Propagation: "", TmpfsOptions: opts ? opts.split(",") : [], FromTmpfsOption: true });
  // --volumes-from c[:ro|rw]: the other container's volumes and binds, shared, where nothing else is mounted.
  for (const spec of host.VolumesFrom ?? []) {
    const [name = "", mode] = spec.split(":");
    if (mode !== undefined && mode !== "ro" && mode !== "rw") throw invalidArgument(`invalid mode for volumes-from: ${mode}`);
    for (const m of volumesOf(name)) {
      if ((m.Type !== "volume" && m.Type !== "bind") || out.some((x) => x.Destination === m.Destination)) continue;
      const { Anonymous: _a, CopyUp: _c, ...shared } = m;
      out.push({ ...shared, RW: mode === "ro" ? false : mode === "rw" ? true : m.RW });
    }
  }
  // Anonymous volumes: the image's VOLUMEs and `-v /path`, where nothing else is mounted.
  for (const dest of Object.keys({ ...imageVolumes, ...(config.Volumes ?? {}) })) {
    const d = cleanDest(dest, dest);
    if (out.some((x) => x.Destination === d)) continue;
    out.push({ Type: "volume", Source: "", Destination: d, Driver: "local", Mode: "", RW: true, Propagation: "", CopyUp: true, Anonymous: true });
  }
  return out;
}

/** A mount in runtime-spec form. */
export function specMount(m: MountPoint): MountSpec {
  if (m.Type === "tmpfs") return { destination: m.Destination, type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "noexec", ...(m.RW ? [] : ["ro"]), ...(m.TmpfsOptions ?? [])] };
  return { destination: m.Destination, type: "bind", source: m.Source, options: ["rbind", m.RW ? "rw" : "ro", ...(m.Type === "bind" ? [m.Propagation || "rprivate"] : ["rprivate"])] };
}
