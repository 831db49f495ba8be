/**
 * The `Sys` seam: every raw system call the engine makes goes through this interface, so code
 * above it can be unit-tested without root against `createFakeSys()` (see `fake-sys.ts`), and the
 * real implementation stays a thin, errno-checking wrapper around libc. Constants keep their C
 * names. Failures throw SyscallError{syscall, errno, path}.
 */
import { ptr } from "bun:ffi";
import { SyscallError } from "../errors.ts";
import { errno, getLibc, getLibcCore } from "./libc.ts";

/** flock(2) operations. */
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
/** errno values the engine branches on. */
export const ENOENT = 2;
export const EINTR = 4;
export const EWOULDBLOCK = 11;
export const EEXIST = 17;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const ENOTEMPTY = 39;
export const ELOOP = 40;
export const EXDEV = 18;
/** open(2) flags (same values on x86-64 and arm64 except where noted). */
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_DIRECTORY = process.arch === "arm64" ? 0o40000 : 0o200000;
export const O_NOFOLLOW = process.arch === "arm64" ? 0o100000 : 0o400000;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;
/** openat2 resolve flags. */
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const RESOLVE_IN_ROOT = 0x10;
/** *at flags. */
export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_EMPTY_PATH = 0x1000;
/** File type bits. */
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
/** mount(2) flags. */
export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MS_REMOUNT = 32;
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MS_PRIVATE = 1 << 18;
/** umount2 flags. */
export const MNT_DETACH = 2;
const SYS_openat2 = 437; // same number on x86-64 and arm64
const SYS_pipe2 = process.arch === "arm64" ? 59 : 293;
const SYS_wait4 = process.arch === "arm64" ? 260 : 61;
const SYS_socketpair = process.arch === "arm64" ? 199 : 53;
const SYS_pidfd_open = 434; // same on x86-64 and arm64
const SYS_pidfd_getfd = 438;
const SYS_bpf = process.arch === "arm64" ? 280 : 321;
const SYS_recvmsg = process.arch === "arm64" ? 212 : 47;
const A64 = process.arch === "arm64";
const SYS_socket = A64 ? 198 : 41;
const SYS_bind = A64 ? 200 : 49;
const SYS_getsockname = A64 ? 204 : 51;
const SYS_sendto = A64 ? 206 : 44;
const SYS_recvfrom = A64 ? 207 : 45;
const SYS_setsockopt = A64 ? 208 : 54;
const SYS_setns = A64 ? 268 : 308;
const SYS_openat = A64 ? 56 : 257; // openat(2)
/** setns(2) type for network namespaces. */
export const CLONE_NEWNET = 0x40000000;
/** Socket families and types. */
export const AF_INET = 2;
export const AF_NETLINK = 16;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = O_CLOEXEC;
/** wait4 option: return at once if no child has changed state. */
export const WNOHANG = 1;

/** The system calls Bunker makes directly. */
export interface Sys {
  flock(fd: number, operation: number, path?: string): void;
  /** openat2(2); returns the new fd. */
  openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number;
  close(fd: number): void;
  mkdirat(dirfd: number, path: string, mode: number): void;
  mknodat(dirfd: number, path: string, mode: number, major: number, minor: number): void;
  symlinkat(target: string, dirfd: number, path: string): void;
  linkat(olddirfd: number, oldpath: string, newdirfd: number, newpath: string, flags: number): void;
  unlinkat(dirfd: number, path: string, flags: number): void;
  fchownat(dirfd: number, path: string, uid: number, gid: number, flags: number): void;
  fchmodat(dirfd: number, path: string, mode: number, flags: number): void;
  /** Set atime and mtime (seconds, fractional allowed). */
  utimensat(dirfd: number, path: string, atime: number, mtime: number, flags: number): void;
  fsetxattr(fd: number, name: string, value: Uint8Array, flags: number): void;
  fchown(fd: number, uid: number, gid: number, path?: string): void;
  fchmod(fd: number, mode: number, path?: string): void;
  futimens(fd: number, atime: number, mtime: number, path?: string): void;
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  umount2(target: string, flags: number): void;
  syncfs(fd: number, path?: string): void;
  /** ioctl(2) with a pointer argument; `path` names the object in errors. */
  ioctl(fd: number, request: number, arg: Uint8Array, path?: string): number;
  /** Extended attributes of `path` itself (not following a final symlink). */
  lgetxattrs(path: string): Record<string, Uint8Array>;
  /** pipe2(2) with O_CLOEXEC: [read end, write end]. */
  pipe(): [number, number];
  /** wait4(2) for `pid`; `pid` 0 in the result means it has not changed state (WNOHANG). */
  wait4(pid: number, options: number): { pid: number; status: number };
  /** socketpair(2) AF_UNIX SOCK_STREAM with SOCK_CLOEXEC. */
  socketpair(): [number, number];
  /** pidfd_open(2). */
  pidfdOpen(pid: number): number;
  /** pidfd_getfd(2): a copy (close-on-exec) of fd `targetFd` of the process behind `pidfd`. */
  pidfdGetfd(pidfd: number, targetFd: number): number;
  /** Receive one fd passed with SCM_RIGHTS on `sock` (blocking); undefined at end of file. */
  recvFd(sock: number): number | undefined;
  /** bpf(2) with `attr` (a union bpf_attr); returns what the command returns (a new fd for loads). */
  bpf(cmd: number, attr: Uint8Array, what: string): number;
  /** socket(2); returns the fd. */
  socket(domain: number, type: number, protocol: number): number;
  /**
   * socket(2) created inside the network namespace behind `netnsFd`: the calling thread enters
   * it with setns(2), creates the socket and returns to its own namespace within this one
   * synchronous call (a network namespace switch is per thread and allowed in a threaded
   * process; the socket stays in the namespace it was made in).
   */
  socketInNetns(netnsFd: number, domain: number, type: number, protocol: number): number;
  /** bind(2) to a raw sockaddr. */
  bind(fd: number, addr: Uint8Array, what?: string): void;
  /** getsockname(2): the raw sockaddr. */
  getsockname(fd: number): Uint8Array;
  /** setsockopt(2). */
  setsockopt(fd: number, level: number, name: number, value: Uint8Array): void;
  /** send(2) a whole datagram; returns the bytes sent. */
  send(fd: number, data: Uint8Array, what?: string): number;
  /** recv(2) into `buf`; returns the bytes received. */
  recv(fd: number, buf: Uint8Array, flags: number, what?: string): number;
}

const cstr = (s: string) => Buffer.from(s + "\0");
/** Glibc's makedev encoding. */
export function makedev(major: number, minor: number): bigint {
  const M = BigInt(major);
  const m = BigInt(minor);
  return ((M & 0xfffff000n) << 32n) | ((M & 0xfffn) << 8n) | ((m & 0xffffff00n) << 12n) | (m & 0xffn);
}

/** struct timespec[2] for (atime, mtime) in seconds. */
function timespecs(atime: number, mtime: number): BigInt64Array {
  const ts = (t: number) => [BigInt(Math.floor(t)), BigInt(Math.round((t - Math.floor(t)) * 1e9))];
  return new BigInt64Array([...ts(atime), ...ts(mtime)]);
}

/** Run a libc call, retrying EINTR, throwing SyscallError on -1. */
function check(name: string, path: string | undefined, call: () => number | bigint): number {
  for (;;) {
    const r = Number(call());
    if (r !== -1) return r;
    const e = errno();
    if (e === EINTR) continue;
    throw new SyscallError(name, e, path);
  }
}

/** Files and mounts: the *at calls inside a root, ownership, modes, times, xattrs, mount and umount. */
function fileOps(
  c: () => ReturnType<typeof getLibc>,
): Pick<Sys, "flock" | "openat2" | "close" | "mkdirat" | "mknodat" | "symlinkat" | "linkat" | "unlinkat" | "fchownat" | "fchmodat" | "utimensat" | "fchown" | "fchmod" | "futimens" | "fsetxattr" | "mount" | "umount2"> {
  return {
    flock(fd, operation, path) {
      check("flock", path, () => getLibcCore().flock(fd, operation));
    },
    openat2(dirfd, path, flags, mode, resolve) {
      const how = new BigUint64Array([BigInt(flags), BigInt(mode), BigInt(resolve)]);
      const p = cstr(path);
      return check("openat2", path, () => c().syscall(SYS_openat2, dirfd, ptr(p), ptr(how), 24, 0, 0));
    },
    close(fd) {
      c().close(fd); // never retried: the fd is gone even on EINTR
    },
    mkdirat(dirfd, path, mode) {
      check("mkdirat", path, () => c().mkdirat(dirfd, cstr(path), mode));
    },
    mknodat(dirfd, path, mode, major, minor) {
      check("mknodat", path, () => c().mknodat(dirfd, cstr(path), mode, makedev(major, minor)));
    },
    symlinkat(target, dirfd, path) {
      check("symlinkat", path, () => c().symlinkat(cstr(target), dirfd, cstr(path)));
    },
    linkat(olddirfd, oldpath, newdirfd, newpath, flags) {
      check("linkat", newpath, () => c().linkat(olddirfd, cstr(oldpath), newdirfd, cstr(newpath), flags));
    },
    unlinkat(dirfd, path, flags) {
      check("unlinkat", path, () => c().unlinkat(dirfd, cstr(path), flags));
    },
    fchownat(dirfd, path, uid, gid, flags) {
      check("fchownat", path, () => c().fchownat(dirfd, cstr(path), uid, gid, flags));
    },
    fchmodat(dirfd, path, mode, flags) {
      check("fchmodat", path, () => c().fchmodat(dirfd, cstr(path), mode, flags));
    },
    utimensat(dirfd, path, atime, mtime, flags) {
      const times = timespecs(atime, mtime);
      check("utimensat", path, () => c().utimensat(dirfd, cstr(path), ptr(times), flags));
    },
    fchown(fd, uid, gid, path) {
      check("fchown", path, () => c().fchown(fd, uid, gid));
    },
    fchmod(fd, mode, path) {
      check("fchmod", path, () => c().fchmod(fd, mode));
    },
    futimens(fd, atime, mtime, path) {
      const times = timespecs(atime, mtime);
      check("futimens", path, () => c().futimens(fd, ptr(times)));
    },
    fsetxattr(fd, name, value, flags) {
      const v = value.length ? value : new Uint8Array(1);
      check("fsetxattr", name, () => c().fsetxattr(fd, cstr(name), ptr(v), value.length, flags));
    },
    mount(source, target, fstype, flags, data) {
      check("mount", target, () => c().mount(cstr(source), cstr(target), cstr(fstype), flags, cstr(data)));
    },
    umount2(target, flags) {
      check("umount2", target, () => c().umount2(cstr(target), flags));
    },
  };
}

/** Descriptors: ioctl, pipes and socket pairs, pidfds, fd passing, bpf. */
function fdOps(c: () => ReturnType<typeof getLibc>): Pick<Sys, "ioctl" | "pipe" | "socketpair" | "pidfdOpen" | "pidfdGetfd" | "recvFd" | "bpf"> {
  return {
    ioctl(fd, request, arg, path) {
      return check("ioctl", path, () => c().ioctl(fd, BigInt(request), ptr(arg)));
    },
    pipe() {
      const fds = new Int32Array(2);
      check("pipe2", undefined, () => c().syscall(SYS_pipe2, ptr(fds), O_CLOEXEC, 0, 0, 0, 0));
      return [fds[0]!, fds[1]!];
    },
    socketpair() {
      const fds = new Int32Array(2);
      check("socketpair", undefined, () => c().syscall(SYS_socketpair, 1 /* AF_UNIX */, 1 /* SOCK_STREAM */ | O_CLOEXEC, 0, ptr(fds), 0, 0));
      return [fds[0]!, fds[1]!];
    },
    pidfdOpen(pid) {
      return check("pidfd_open", String(pid), () => c().syscall(SYS_pidfd_open, pid, 0, 0, 0, 0, 0));
    },
    pidfdGetfd(pidfd, targetFd) {
      return check("pidfd_getfd", String(targetFd), () => c().syscall(SYS_pidfd_getfd, pidfd, targetFd, 0, 0, 0, 0));
    },
    recvFd(sock) {
      const data = new Uint8Array(64);
      const iov = new BigUint64Array([BigInt(ptr(data)), 64n]);
      const control = new Uint8Array(24);
      const msg = new BigUint64Array(7); // struct msghdr
      msg[2] = BigInt(ptr(iov));
      msg[3] = 1n;
      msg[4] = BigInt(ptr(control));
      msg[5] = 24n;
      const n = check("recvmsg", undefined, () => c().syscall(SYS_recvmsg, sock, ptr(msg), O_CLOEXEC /* MSG_CMSG_CLOEXEC */, 0, 0, 0));
      const v = new DataView(control.buffer);
      if (n === 0 && msg[5] === 0n) return undefined;
      if (v.getInt32(8, true) !== 1 || v.getInt32(12, true) !== 1) return undefined; // not SOL_SOCKET/SCM_RIGHTS
      return v.getInt32(16, true);
    },
    bpf(cmd, attr, what) {
      return check("bpf", what, () => c().syscall(SYS_bpf, cmd, ptr(attr), attr.length, 0, 0, 0));
    },
  };
}

/** Sockets (netlink among them, in a namespace too), extended attributes, syncfs. */
function socketOps(c: () => ReturnType<typeof getLibc>): Pick<Sys, "socket" | "socketInNetns" | "bind" | "getsockname" | "setsockopt" | "send" | "recv" | "wait4" | "lgetxattrs" | "syncfs"> {
  return {
    socket(domain, type, protocol) {
      return check("socket", undefined, () => c().syscall(SYS_socket, domain, type, protocol, 0, 0, 0));
    },
    socketInNetns(netnsFd, domain, type, protocol) {
      const self = check("open", "/proc/thread-self/ns/net", () => c().syscall(SYS_openat, AT_FDCWD, ptr(cstr("/proc/thread-self/ns/net")), O_RDONLY | O_CLOEXEC, 0, 0, 0));
      try {
        check("setns", "network namespace", () => c().syscall(SYS_setns, netnsFd, CLONE_NEWNET, 0, 0, 0, 0));
        try {
          return check("socket", "network namespace", () => c().syscall(SYS_socket, domain, type, protocol, 0, 0, 0));
        } finally {
          // Back to the thread's own namespace; failing here would leave the thread elsewhere.
          if (Number(c().syscall(SYS_setns, self, CLONE_NEWNET, 0, 0, 0, 0)) !== 0) throw new SyscallError("setns", errno(), "/proc/thread-self/ns/net", "cannot return to the daemon's network namespace");
        }
      } finally {
        c().close(self);
      }
    },
    bind(fd, addr, what) {
      check("bind", what, () => c().syscall(SYS_bind, fd, ptr(addr), addr.length, 0, 0, 0));
    },
    getsockname(fd) {
      const buf = new Uint8Array(128);
      const len = new Uint32Array([128]);
      check("getsockname", undefined, () => c().syscall(SYS_getsockname, fd, ptr(buf), ptr(len), 0, 0, 0));
      return buf.slice(0, len[0]);
    },
    setsockopt(fd, level, name, value) {
      check("setsockopt", String(name), () => c().syscall(SYS_setsockopt, fd, level, name, ptr(value), value.length, 0));
    },
    send(fd, data, what) {
      return check("sendto", what, () => c().syscall(SYS_sendto, fd, ptr(data), data.length, 0, 0, 0));
    },
    recv(fd, buf, flags, what) {
      return check("recvfrom", what, () => c().syscall(SYS_recvfrom, fd, ptr(buf), buf.length, flags, 0, 0));
    },
    wait4(pid, options) {
      const status = new Int32Array(1);
      const r = check("wait4", String(pid), () => c().syscall(SYS_wait4, pid, ptr(status), options, 0, 0, 0));
      return { pid: r, status: status[0]! };
    },
    lgetxattrs(path) {
      const p = cstr(path);
      const out: Record<string, Uint8Array> = {};
      let names = new Uint8Array(1024);
      let n = Number(c().llistxattr(ptr(p), ptr(names), names.length));
      if (n === -1 && errno() === 34 /* ERANGE */) {
        names = new Uint8Array(Number(c().llistxattr(ptr(p), null, 0)) + 1);
        n = Number(c().llistxattr(ptr(p), ptr(names), names.length));
      }
      if (n === -1) {
        const e = errno();
        if (e === 95 /* EOPNOTSUPP */) return out;
        throw new SyscallError("llistxattr", e, path);
      }
      for (const name of Buffer.from(names.subarray(0, n)).toString("utf8").split("\0").filter(Boolean)) {
        const nb = cstr(name);
        const size = Number(c().lgetxattr(ptr(p), ptr(nb), null, 0));
        if (size < 0) continue; // removed meanwhile
        const val = new Uint8Array(Math.max(size, 1));
        const got = Number(c().lgetxattr(ptr(p), ptr(nb), ptr(val), val.length));
        if (got >= 0) out[name] = val.slice(0, got);
      }
      return out;
    },
    syncfs(fd, path) {
      check("syncfs", path, () => c().syncfs(fd));
    },
  };
}

/** The real implementation on Linux, through `bun:ffi`. */
export function createLinuxSys(): Sys {
  const c = () => getLibc();
  return { ...fileOps(c), ...fdOps(c), ...socketOps(c) };
}

let shared: Sys | undefined;
/** The process-wide real Sys; composition roots pass it down, tests pass a fake. */
export function linuxSys(): Sys {
  return (shared ??= createLinuxSys());
}
