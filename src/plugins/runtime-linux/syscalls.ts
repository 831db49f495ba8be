/**
 * System call numbers for the calls the runtime's C stub makes, per architecture: x86-64 (from
 * asm/unistd_64.h) and arm64 (the generic table, asm-generic/unistd.h). The stub is compiled
 * without libc headers, so numbers come from here; test/unit/runtime-plan.test.ts checks them
 * against the kernel headers where those are installed.
 */

/** `[x86-64, arm64]` for each call. */
const TABLE = {
  read: [0, 63],
  write: [1, 64],
  close: [3, 57],
  lseek: [8, 62],
  mmap: [9, 222],
  munmap: [11, 215],
  rt_sigaction: [13, 134],
  rt_sigprocmask: [14, 135],
  ioctl: [16, 29],
  getpid: [39, 172],
  getppid: [110, 173],
  clone: [56, 220],
  execve: [59, 221],
  exit: [60, 93],
  exit_group: [231, 94],
  wait4: [61, 260],
  kill: [62, 129],
  rt_sigtimedwait: [128, 137],
  fcntl: [72, 25],
  chdir: [80, 49],
  fchdir: [81, 50],
  umask: [95, 166],
  prctl: [157, 167],
  chroot: [161, 51],
  sethostname: [170, 161],
  setdomainname: [171, 162],
  mount: [165, 40],
  umount2: [166, 39],
  pivot_root: [155, 41],
  setresuid: [117, 147],
  setresgid: [119, 149],
  setgroups: [116, 159],
  capget: [125, 90],
  capset: [126, 91],
  setsid: [112, 157],
  setpgid: [109, 154],
  getcwd: [79, 17],
  fstatfs: [138, 44],
  statfs: [137, 43],
  mknodat: [259, 33],
  mkdirat: [258, 34],
  openat: [257, 56],
  symlinkat: [266, 36],
  fchownat: [260, 54],
  fchmodat: [268, 53],
  unlinkat: [263, 35],
  readlinkat: [267, 78],
  faccessat: [269, 48],
  dup3: [292, 24],
  setitimer: [38, 103],
  prlimit64: [302, 261],
  setns: [308, 268],
  seccomp: [317, 277],
  openat2: [437, 437],
  close_range: [436, 436],
  ppoll: [271, 73],
  socket: [41, 198],
  bind: [49, 200],
  listen: [50, 201],
  accept4: [288, 242],
  connect: [42, 203],
  sendmsg: [46, 211],
  recvmsg: [47, 212],
  socketpair: [53, 199],
  clock_gettime: [228, 113],
  renameat: [264, 38],
  fsync: [74, 82],
  unshare: [272, 97],
  mount_setattr: [442, 442],
  open_tree: [428, 428],
  move_mount: [429, 429],
  pidfd_open: [434, 434],
  pidfd_send_signal: [424, 424],
  pipe2: [293, 59],
  waitid: [247, 95],
} as const;

/** A system call the runtime uses. */
export type SyscallName = keyof typeof TABLE;

/** Architectures the runtime supports. */
export type Arch = "x64" | "arm64";

/** The numbers for `arch`. */
export function syscallNumbers(arch: Arch = process.arch as Arch): Record<SyscallName, number> {
  const i = arch === "arm64" ? 1 : 0;
  if (arch !== "x64" && arch !== "arm64") throw new Error(`unsupported architecture ${arch as string}`);
  return Object.fromEntries(Object.entries(TABLE).map(([k, v]) => [k, v[i]])) as Record<SyscallName, number>;
}
