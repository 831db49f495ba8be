/**
 * A recording fake of the `Sys` seam for unit tests: it keeps every call, hands out fake file
 * descriptors, and lets a test script the errno a call fails with.
 */
import { SyscallError } from "../errors.ts";
import type { Sys } from "./sys.ts";

/** One recorded call: the method name and its arguments. */
export interface SysCall {
  name: keyof Sys;
  args: unknown[];
}

/** A fake Sys plus its call log and a failure script. */
export interface FakeSys extends Sys {
  calls: SysCall[];
  /** Make the next call of `name` fail with `errno` (consumed once). */
  failNext(name: keyof Sys, errno: number): void;
}

/** Create a fake whose calls succeed unless scripted to fail. */
export function createFakeSys(): FakeSys {
  const calls: SysCall[] = [];
  const failures = new Map<keyof Sys, number[]>();
  let nextFd = 100;
  /** Record a call, fail it if scripted, otherwise return `result`. */
  const call = <T>(name: keyof Sys, args: unknown[], path: string | undefined, result: T): T => {
    calls.push({ name, args });
    const e = failures.get(name)?.shift();
    if (e !== undefined) throw new SyscallError(name, e, path);
    return result;
  };
  return {
    calls,
    failNext(name, errno) {
      failures.set(name, [...(failures.get(name) ?? []), errno]);
    },
    flock: (fd, op, path) => call("flock", [fd, op, path], path, undefined),
    openat2: (dirfd, path, flags, mode, resolve) => call("openat2", [dirfd, path, flags, mode, resolve], path, nextFd++),
    close: (fd) => call("close", [fd], undefined, undefined),
    mkdirat: (dirfd, path, mode) => call("mkdirat", [dirfd, path, mode], path, undefined),
    mknodat: (dirfd, path, mode, major, minor) => call("mknodat", [dirfd, path, mode, major, minor], path, undefined),
    symlinkat: (target, dirfd, path) => call("symlinkat", [target, dirfd, path], path, undefined),
    linkat: (od, op, nd, np, flags) => call("linkat", [od, op, nd, np, flags], np, undefined),
    unlinkat: (dirfd, path, flags) => call("unlinkat", [dirfd, path, flags], path, undefined),
    fchownat: (dirfd, path, uid, gid, flags) => call("fchownat", [dirfd, path, uid, gid, flags], path, undefined),
    fchmodat: (dirfd, path, mode, flags) => call("fchmodat", [dirfd, path, mode, flags], path, undefined),
    utimensat: (dirfd, path, a, m, flags) => call("utimensat", [dirfd, path, a, m, flags], path, undefined),
    fsetxattr: (fd, name, value, flags) => call("fsetxattr", [fd, name, value, flags], name, undefined),
    fchown: (fd, uid, gid, path) => call("fchown", [fd, uid, gid, path], path, undefined),
    fchmod: (fd, mode, path) => call("fchmod", [fd, mode, path], path, undefined),
    futimens: (fd, a, m, path) => call("futimens", [fd, a, m, path], path, undefined),
    mount: (src, target, fstype, flags, data) => call("mount", [src, target, fstype, flags, data], target, undefined),
    umount2: (target, flags) => call("umount2", [target, flags], target, undefined),
    ioctl: (fd, request, arg, path) => call("ioctl", [fd, request, arg, path], path, 0),
    lgetxattrs: (path) => call("lgetxattrs", [path], path, {}),
    syncfs: (fd, path) => call("syncfs", [fd, path], path, undefined),
    wait4: (pid, options) => call("wait4", [pid, options], String(pid), { pid, status: 0 }),
    pipe: () => call("pipe", [], undefined, [nextFd++, nextFd++] as [number, number]),
    socketpair: () => call("socketpair", [], undefined, [nextFd++, nextFd++] as [number, number]),
    recvFd: (sock) => call("recvFd", [sock], undefined, undefined),
    bpf: (cmd, attr, what) => call("bpf", [cmd, attr], what, nextFd++),
    pidfdOpen: (pid) => call("pidfdOpen", [pid], String(pid), nextFd++),
    socket: (domain, type, protocol) => call("socket", [domain, type, protocol], undefined, nextFd++),
    socketInNetns: (nsfd, domain, type, protocol) => call("socketInNetns", [nsfd, domain, type, protocol], undefined, nextFd++),
    bind: (fd, addr, what) => call("bind", [fd, addr], what, undefined),
    getsockname: (fd) => call("getsockname", [fd], undefined, new Uint8Array(16)),
    setsockopt: (fd, level, name, value) => call("setsockopt", [fd, level, name, value], undefined, undefined),
    send: (fd, data, what) => call("send", [fd, data], what, data.length),
    recv: (fd, buf, flags, what) => call("recv", [fd, buf, flags], what, 0),
    pidfdGetfd: (pidfd, targetFd) => call("pidfdGetfd", [pidfd, targetFd], String(targetFd), nextFd++),
  };
}
