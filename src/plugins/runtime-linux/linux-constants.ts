/**
 * Linux constants the runtime turns spec strings into: capabilities, rlimits, clone flags per
 * namespace, mount flags and propagation. Values are the kernel's (identical on x86-64 and arm64).
 */
import { readFileSync } from "node:fs";
import { invalidArgument } from "../../core/errors.ts";
import type { NamespaceType } from "../../core/runtime/oci.ts";
import { CAPABILITIES } from "../../core/runtime/capabilities.ts";

export { CAPABILITIES } from "../../core/runtime/capabilities.ts";

/** The highest capability the running kernel knows (from /proc/sys/kernel/cap_last_cap). */
export function lastCap(): number {
  try {
    return Number(readFileSync("/proc/sys/kernel/cap_last_cap", "utf8").trim());
  } catch {
    return CAPABILITIES.length - 1;
  }
}

/** Capability number of `name`; unknown names are an error naming the field. */
export function capNumber(name: string, field: string): number {
  const i = (CAPABILITIES as readonly string[]).indexOf(name);
  if (i < 0) throw invalidArgument(`${field}: unknown capability ${name}`);
  return i;
}

/** A 64-bit capability set from names. */
export function capMask(names: readonly string[] | undefined, field: string): bigint {
  let m = 0n;
  for (const n of names ?? []) m |= 1n << BigInt(capNumber(n, field));
  return m;
}

/** Resource numbers for setrlimit/prlimit64 (asm-generic/resource.h). */
export const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
};

/** clone(2) flag of each namespace type, and its /proc/<pid>/ns file name. */
export const NAMESPACES: Record<NamespaceType, { flag: number; file: string }> = {
  mount: { flag: 0x00020000, file: "mnt" },
  uts: { flag: 0x04000000, file: "uts" },
  ipc: { flag: 0x08000000, file: "ipc" },
  user: { flag: 0x10000000, file: "user" },
  pid: { flag: 0x20000000, file: "pid" },
  network: { flag: 0x40000000, file: "net" },
  cgroup: { flag: 0x02000000, file: "cgroup" },
  time: { flag: 0x00000080, file: "time" },
};
export const SIGCHLD = 17;

export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  SYNCHRONOUS: 16,
  REMOUNT: 32,
  MANDLOCK: 64,
  DIRSYNC: 128,
  NOSYMFOLLOW: 256,
  NOATIME: 1024,
  NODIRATIME: 2048,
  BIND: 4096,
  MOVE: 8192,
  REC: 16384,
  SILENT: 32768,
  UNBINDABLE: 1 << 17,
  PRIVATE: 1 << 18,
  SLAVE: 1 << 19,
  SHARED: 1 << 20,
  RELATIME: 1 << 21,
  STRICTATIME: 1 << 24,
  LAZYTIME: 1 << 25,
} as const;

/** What a list of mount options means: flags to set, flags to clear, propagation changes, fs data. */
export interface ParsedMountOptions {
  flags: number;
  propagation: number[];
  data: string[];
  /** `rbind` or `bind` present. */
  bind: boolean;
  recursive: boolean;
}

const SET: Record<string, number> = {
  ro: MS.RDONLY,
  nosuid: MS.NOSUID,
  nodev: MS.NODEV,
  noexec: MS.NOEXEC,
  sync: MS.SYNCHRONOUS,
  remount: MS.REMOUNT,
  mand: MS.MANDLOCK,
  dirsync: MS.DIRSYNC,
  noatime: MS.NOATIME,
  nodiratime: MS.NODIRATIME,
  relatime: MS.RELATIME,
  strictatime: MS.STRICTATIME,
  nosymfollow: MS.NOSYMFOLLOW,
  lazytime: MS.LAZYTIME,
  silent: MS.SILENT,
};
const CLEAR = new Set(["rw", "suid", "dev", "exec", "async", "nomand", "atime", "diratime", "norelatime", "nostrictatime", "symfollow", "nolazytime", "loud", "defaults"]);
const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE,
  rprivate: MS.PRIVATE | MS.REC,
  shared: MS.SHARED,
  rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE,
  rslave: MS.SLAVE | MS.REC,
  unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE | MS.REC,
};
/** Options the kernel never sees (runc's extensions or ones for other runtimes). */
const IGNORED = new Set(["tmpcopyup", "rro", "rrw", "rnoexec", "rexec", "rnosuid", "rsuid", "rnodev", "rdev", "ratime", "rnoatime"]);

/** Parse mount options as runc does; `idmap` and friends are refused. */
export function parseMountOptions(options: readonly string[] | undefined, field: string): ParsedMountOptions {
  const out: ParsedMountOptions = { flags: 0, propagation: [], data: [], bind: false, recursive: false };
  for (const o of options ?? []) {
    if (o === "bind" || o === "rbind") {
      out.bind = true;
      out.recursive ||= o === "rbind";
    } else if (o in SET) out.flags |= SET[o]!;
    else if (CLEAR.has(o)) continue;
    else if (o in PROPAGATION) out.propagation.push(PROPAGATION[o]!);
    else if (IGNORED.has(o)) continue;
    else if (o === "idmap" || o === "ridmap") throw invalidArgument(`${field}: option ${o} is not supported by this runtime`);
    else out.data.push(o);
  }
  return out;
}
