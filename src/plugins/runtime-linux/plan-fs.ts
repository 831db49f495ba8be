/**
 * The filesystem steps of a container's plan: directories made inside the root, the mounts of
 * the spec (with the mount API's detached mounts for binds and propagation), pivot_root, and what
 * follows it (masked and read-only paths, sysctls, /proc writes).
 */
import { statSync } from "node:fs";
import { posix } from "node:path";
import { invalidArgument } from "../../core/errors.ts";
import { AT_FDCWD, AT_SYMLINK_NOFOLLOW, MNT_DETACH, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_NOFOLLOW, O_PATH, O_WRONLY, S_IFBLK, S_IFCHR, S_IFIFO } from "../../core/sys/sys.ts";
import { MS, parseMountOptions } from "./linux-constants.ts";
import { PlanBuilder, type Reg } from "./plan.ts";
import { expandCgroupMount } from "./cgroups.ts";

import type { MountSpec, Spec } from "../../core/runtime/oci.ts";
import { type ContainerPlanInput, DEFAULT_DEVICES, E, encodeDev, type FsRegs, IN_ROOT, inRoot, PROC_SUPER_MAGIC, SYSFS_MAGIC, u64s } from "./container-plan.ts";

/**
 * `mkdir -p` of `rel` inside the root, each parent resolved in the root (openat2 RESOLVE_IN_ROOT
 * from `root`), or from "/" after pivot_root (`root` undefined); the last component is a file
 * when `!dir` (a mount point for a file bind mount).
 */
export function mkdirAll(p: PlanBuilder, root: Reg | undefined, rel: string, dirReg: Reg, fileReg: Reg, dir: boolean): void {
  const parts = rel.split("/");
  for (let i = 0; i < parts.length; i++) {
    const parent = parts.slice(0, i).join("/");
    const base = p.str(parts[i]!);
    if (root === undefined) p.call("openat", [AT_FDCWD, p.str(`/${parent}`), O_PATH | O_DIRECTORY | O_CLOEXEC, 0], `open /${parent}`, { store: dirReg });
    else p.call("openat2", [root, p.str(parent || "."), p.bytes(u64s(O_PATH | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT)), 24], `resolve /${parent} in the rootfs`, { store: dirReg });
    if (i < parts.length - 1 || dir) p.call("mkdirat", [dirReg, base, 0o755], `mkdir /${parts.slice(0, i + 1).join("/")}`, { ok: [E.EEXIST] });
    else {
      p.call("openat", [dirReg, base, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o644], `create mount point /${rel}`, { ok: [E.EISDIR, E.ELOOP], store: fileReg });
      p.call("close", [fileReg], "close", { ok: [E.EBADF] });
    }
    p.call("close", [dirReg], "close");
  }
}

export function mounts(p: PlanBuilder, input: ContainerPlanInput, r: FsRegs, userns: boolean): void {
  const { spec } = input;
  const prop = spec.linux?.rootfsPropagation;
  const rootProp = prop ? parseMountOptions([prop], "linux.rootfsPropagation").propagation[0]! | MS.REC : MS.SLAVE | MS.REC;
  const none = p.str("");
  p.call("mount", [none, p.str("/"), 0, rootProp, 0], `make / ${prop ?? "rslave"}`);
  const rootfs = p.str(input.rootfs);
  p.call("mount", [rootfs, rootfs, p.str("bind"), MS.BIND | MS.REC, 0], `bind ${input.rootfs} on itself`);
  p.call("openat", [AT_FDCWD, rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC, 0], `open ${input.rootfs}`, { store: r.ROOT });

  let devIsTmpfs = false;
  let hasDevpts = false;
  // A "cgroup" mount stands for the host's cgroup filesystems (one per v1 hierarchy, or cgroup2).
  // In a user namespace cgroup v1 cannot be mounted: the host's tree is bound read-only instead.
  const specMounts = (spec.mounts ?? []).flatMap((m): MountSpec[] => {
    if (m.type !== "cgroup" || parseMountOptions(m.options, "mounts").bind) return [m];
    if (userns) return [{ destination: m.destination, type: "bind", source: "/sys/fs/cgroup", options: ["rbind", "ro", "nosuid", "noexec", "nodev"] }];
    return expandCgroupMount(m.destination, m.options ?? [], input.cgroupMode);
  });
  for (const [i, m] of specMounts.entries()) {
    const field = `mounts[${i}]`;
    const dest = inRoot(m.destination);
    if (!dest) throw invalidArgument(`${field}.destination: cannot mount over the root`);
    const o = parseMountOptions(m.options, `${field}.options`);
    const type = o.bind ? "bind" : (m.type ?? "");
    if (!o.bind && !type) throw invalidArgument(`${field}.type: required for a non-bind mount`);
    // /proc and /sys hold what they say: nothing else may be mounted over them (CVE-2019-19921).
    if ((dest === "proc" && type !== "proc") || (dest === "sys" && type !== "sysfs" && !o.bind)) {
      throw invalidArgument(`${field}: only ${dest === "proc" ? "proc" : "sysfs"} may be mounted on /${dest}`);
    }
    if (dest.startsWith("proc/") && !["proc/cpuinfo", "proc/meminfo", "proc/stat", "proc/uptime", "proc/diskstats", "proc/loadavg", "proc/swaps", "proc/slabinfo"].includes(dest)) {
      throw invalidArgument(`${field}.destination: ${m.destination} is inside /proc`);
    }
    if (dest === "dev" && type === "tmpfs") devIsTmpfs = true;
    if (dest === "dev/pts") hasDevpts = true;
    const source = m.source ?? (o.bind ? "" : type);
    let isDir = true;
    if (o.bind) {
      try {
        isDir = statSync(source).isDirectory();
      } catch (err) {
        throw invalidArgument(`${field}.source: ${source}: ${(err as Error).message}`);
      }
    }
    mkdirAll(p, r.ROOT, dest, r.TMP, r.TGT, isDir);
    p.call("openat2", [r.ROOT, p.str(dest), p.bytes(u64s(O_PATH | O_CLOEXEC, 0, IN_ROOT)), 24], `resolve ${m.destination} in the rootfs`, { store: r.TGT });
    p.fdPath(r.TGT, r.pathBuf, `path of ${m.destination}`);
    const data = o.data.length ? p.str(o.data.join(",")) : 0;
    const what = `mount ${type} ${source} on ${m.destination}`;
    if (o.bind) {
      p.call("mount", [p.str(source), r.pathBuf, 0, MS.BIND | (o.recursive ? MS.REC : 0), 0], what);
    } else {
      // In a new user namespace sysfs cannot be mounted without a new network namespace; bind it then, as runc does.
      if (type === "sysfs" && userns && !input.newNamespaces.includes("network")) {
        p.call("mount", [p.str("/sys"), r.pathBuf, 0, MS.BIND | MS.REC, 0], `${what} (bind, user namespace)`);
      } else p.call("mount", [p.str(source), r.pathBuf, p.str(type), o.flags & ~MS.REMOUNT, data], what);
    }
    const remount = o.bind && (o.flags & ~MS.REMOUNT) !== 0;
    if (remount || o.propagation.length) {
      // The fd still names the directory under the new mount: resolve again to reach the mount itself.
      p.call("close", [r.TGT], "close");
      p.call("openat2", [r.ROOT, p.str(dest), p.bytes(u64s(O_PATH | O_CLOEXEC, 0, IN_ROOT)), 24], `resolve ${m.destination} after mounting`, { store: r.TGT });
      p.fdPath(r.TGT, r.pathBuf, `path of ${m.destination}`);
    }
    // Bind mounts take their flags on a remount.
    if (remount) p.call("mount", [0, r.pathBuf, 0, MS.BIND | MS.REMOUNT | o.flags, 0], `${what}: remount with options`);
    for (const flag of o.propagation) p.call("mount", [0, r.pathBuf, 0, flag, 0], `${what}: propagation`);
    if (type === "proc" || type === "sysfs") {
      // Re-resolve and check the result really is procfs/sysfs.
      p.call("openat2", [r.ROOT, p.str(dest), p.bytes(u64s(O_PATH | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT)), 24], `resolve ${m.destination} again`, { store: r.TMP });
      p.fsType(r.TMP, type === "proc" ? PROC_SUPER_MAGIC : SYSFS_MAGIC, `${m.destination} is ${type}`);
      p.call("close", [r.TMP], "close");
    }
    p.call("close", [r.TGT], "close");
  }

  // Devices: the defaults (when /dev is a fresh tmpfs) and the spec's; bind-mounted from the host in a user namespace.
  const devices = [...(devIsTmpfs ? DEFAULT_DEVICES.map((d) => ({ ...d, fileMode: 0o666, uid: 0, gid: 0 })) : []), ...(spec.linux?.devices ?? [])];
  const seen = new Set<string>();
  for (const d of devices) {
    const rel = inRoot(d.path);
    if (seen.has(rel)) continue;
    seen.add(rel);
    if (!rel.startsWith("dev/")) throw invalidArgument(`linux.devices: ${d.path} is not under /dev`);
    const parent = posix.dirname(rel);
    if (parent !== "dev") mkdirAll(p, r.ROOT, parent, r.TMP, r.TGT, true);
    p.call("openat2", [r.ROOT, p.str(parent), p.bytes(u64s(O_PATH | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT)), 24], `resolve /${parent}`, { store: r.TMP });
    const base = p.str(posix.basename(rel));
    if (userns) {
      p.call("mknodat", [r.TMP, base, 0o644, 0], `create ${d.path}`, { ok: [E.EEXIST] });
      p.call("openat2", [r.ROOT, p.str(rel), p.bytes(u64s(O_PATH | O_CLOEXEC, 0, IN_ROOT)), 24], `resolve ${d.path}`, { store: r.TGT });
      p.fdPath(r.TGT, r.pathBuf, `path of ${d.path}`);
      p.call("mount", [p.str(d.path), r.pathBuf, 0, MS.BIND, 0], `bind ${d.path} from the host`);
      p.call("close", [r.TGT], "close");
    } else {
      const kind = d.type === "b" ? S_IFBLK : d.type === "p" ? S_IFIFO : S_IFCHR;
      p.call("unlinkat", [r.TMP, base, 0], `remove an old ${d.path}`, { ok: [E.ENOENT] });
      p.call("mknodat", [r.TMP, base, kind | ((d.fileMode ?? 0o666) & 0o7777), encodeDev(d.major ?? 0, d.minor ?? 0)], `mknod ${d.path}`);
      p.call("fchownat", [r.TMP, base, d.uid ?? 0, d.gid ?? 0, AT_SYMLINK_NOFOLLOW], `chown ${d.path}`);
    }
    p.call("close", [r.TMP], "close");
  }
  if (devIsTmpfs) {
    p.call("openat2", [r.ROOT, p.str("dev"), p.bytes(u64s(O_PATH | O_DIRECTORY | O_CLOEXEC, 0, IN_ROOT)), 24], "resolve /dev", { store: r.TMP });
    const links: [string, string][] = [
      ["/proc/self/fd", "fd"],
      ["/proc/self/fd/0", "stdin"],
      ["/proc/self/fd/1", "stdout"],
      ["/proc/self/fd/2", "stderr"],
      ["/proc/kcore", "core"],
    ];
    if (hasDevpts) links.push(["pts/ptmx", "ptmx"]);
    for (const [target, name] of links) p.call("symlinkat", [p.str(target), r.TMP, p.str(name)], `symlink /dev/${name}`, { ok: [E.EEXIST] });
    p.call("close", [r.TMP], "close");
  }
}

export function pivot(p: PlanBuilder, input: ContainerPlanInput, root: Reg): void {
  const dot = p.str(".");
  p.call("fchdir", [root], `chdir ${input.rootfs}`);
  p.call("pivot_root", [dot, dot], "pivot_root");
  p.call("umount2", [dot, MNT_DETACH], "detach the old root");
  p.call("chdir", [p.str("/")], "chdir /");
  p.call("close", [root], "close");
}

export function afterPivot(p: PlanBuilder, spec: Spec, reg: Reg): void {
  const linux = spec.linux ?? {};
  // sysctls first: /proc/sys becomes read-only below.
  for (const [key, value] of Object.entries(linux.sysctl ?? {})) {
    if (!/^[a-z0-9_]+(\.[a-zA-Z0-9_-]+)+$/.test(key)) throw invalidArgument(`linux.sysctl: invalid key ${key}`);
    writeProc(p, `/proc/sys/${key.replaceAll(".", "/")}`, value, reg);
  }
  for (const path of linux.maskedPaths ?? []) {
    const s = p.str(path);
    p.call("mount", [p.str("/dev/null"), s, 0, MS.BIND, 0], `mask ${path}`, { ok: [E.ENOENT, E.ENOTDIR] });
    p.call("mount", [p.str("tmpfs"), s, p.str("tmpfs"), MS.RDONLY, p.str("size=0k")], `mask directory ${path}`, { ok: [E.ENOENT, E.ENOTDIR] });
  }
  for (const path of linux.readonlyPaths ?? []) {
    const s = p.str(path);
    p.call("mount", [s, s, 0, MS.BIND | MS.REC, 0], `bind ${path} read-only`, { ok: [E.ENOENT] });
    p.call("mount", [s, s, 0, MS.BIND | MS.REC | MS.REMOUNT | MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC, 0], `make ${path} read-only`, { ok: [E.ENOENT] });
  }
  if (spec.root?.readonly) p.call("mount", [0, p.str("/"), 0, MS.BIND | MS.REMOUNT | MS.RDONLY, 0], "make the root read-only");
}

export function writeProc(p: PlanBuilder, path: string, value: string, reg: Reg): void {
  p.call("openat", [AT_FDCWD, p.str(path), O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0], `open ${path}`, { store: reg });
  p.fsType(reg, PROC_SUPER_MAGIC, `${path} is on procfs`);
  const bytes = new TextEncoder().encode(value);
  p.call("write", [reg, p.bytes(bytes), bytes.length], `write ${value} to ${path}`);
  p.call("close", [reg], "close");
}
