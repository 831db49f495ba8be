/**
 * Bunker's default seccomp profile, with the behaviour of Docker's: everything not listed fails
 * with EPERM; ordinary programs find every system call they need; calls that manage the kernel,
 * other namespaces or other processes are allowed only when the container holds the capability
 * that would let it make them anyway (so the profile never takes away what a granted capability
 * gives); `clone` may not create namespaces without CAP_SYS_ADMIN, and `clone3` (whose flags a
 * filter cannot see) reports ENOSYS so that libcs fall back to `clone`.
 *
 * The lists are this project's own, grouped by purpose; the profile is generated per container
 * from its capability set when the engine writes the spec (engine policy, as moby keeps its
 * profile in the engine, not in runc).
 */
type Action = "SCMP_ACT_ALLOW" | "SCMP_ACT_ERRNO" | "SCMP_ACT_KILL" | "SCMP_ACT_KILL_PROCESS" | "SCMP_ACT_KILL_THREAD" | "SCMP_ACT_LOG" | "SCMP_ACT_NOTIFY" | "SCMP_ACT_TRACE" | "SCMP_ACT_TRAP";
type Op = "SCMP_CMP_NE" | "SCMP_CMP_LT" | "SCMP_CMP_LE" | "SCMP_CMP_EQ" | "SCMP_CMP_GE" | "SCMP_CMP_GT" | "SCMP_CMP_MASKED_EQ";

/** The runtime-spec's `linux.seccomp` object (the parts this profile uses). */
export type SeccompSpec = {
  defaultAction: Action;
  defaultErrnoRet?: number;
  architectures?: string[];
  syscalls?: { names: string[]; action: Action; errnoRet?: number; args?: { index: number; value: number; valueTwo?: number; op: Op }[] }[];
};

/** Calls every container may make. */
const ALWAYS = {
  files: [
    "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range", "creat", "dup", "dup2", "dup3",
    "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32",
    "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fremovexattr", "fsetxattr", "fstat", "fstat64",
    "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "getcwd", "getdents", "getdents64", "getxattr", "getxattrat",
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listxattr",
    "listxattrat", "llistxattr", "lremovexattr", "lseek", "_llseek", "lsetxattr", "lstat", "lstat64", "mkdir", "mkdirat", "mknod", "mknodat",
    "newfstatat", "open", "openat", "openat2", "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
    "readlink", "readlinkat", "readv", "removexattr", "removexattrat", "rename", "renameat", "renameat2", "rmdir", "sendfile", "sendfile64",
    "setxattr", "setxattrat", "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
    "syncfs", "tee", "truncate", "truncate64", "umask", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vmsplice",
    "write", "writev", "fanotify_mark", "memfd_create", "memfd_secret", "name_to_handle_at", "futimesat", "cachestat", "file_getattr", "file_setattr",
  ],
  memory: [
    "brk", "madvise", "membarrier", "mincore", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mremap", "msync", "munlock",
    "munlockall", "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages", "mseal", "map_shadow_stack",
  ],
  processes: [
    "arch_prctl", "capget", "capset", "clone", "execve", "execveat", "exit", "exit_group", "fork", "vfork", "getegid", "getegid32", "geteuid",
    "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid", "gettid",
    "getuid", "getuid32", "ioprio_get", "ioprio_set", "kill", "prctl", "prlimit64", "restart_syscall", "rseq", "sched_getaffinity",
    "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "setfsgid",
    "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid",
    "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
    "set_thread_area", "set_tid_address", "setuid", "setuid32", "tgkill", "tkill", "times", "ugetrlimit", "uname", "wait4", "waitid",
    "waitpid", "pidfd_open", "pidfd_send_signal", "get_thread_area", "futex", "futex_time64", "futex_waitv",
    "futex_wait", "futex_wake", "futex_requeue", "riscv_flush_icache", "cacheflush", "set_mempolicy_home_node", "lsm_get_self_attr", "lsm_list_modules",
  ],
  signals: [
    "alarm", "pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sigaction", "sigaltstack", "signal", "signalfd", "signalfd4",
    "sigpending", "sigprocmask", "sigreturn", "sigsuspend",
  ],
  time: [
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "gettimeofday",
    "nanosleep", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
    "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64",
  ],
  io: [
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd",
    "eventfd2", "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit", "ioctl", "pipe",
    "pipe2", "poll", "ppoll", "ppoll_time64", "pselect6", "pselect6_time64", "select", "_newselect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget", "ipc", "io_uring_enter",
    "io_uring_register", "io_uring_setup", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
  ],
  network: [
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen", "recv", "recvfrom", "recvmmsg",
    "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown", "socket", "socketcall", "socketpair",
  ],
  other: ["getcpu", "sysinfo", "modify_ldt", "breakpoint", "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "set_tls", "uretprobe"],
};

/** Calls allowed when the container holds a capability. */
const BY_CAPABILITY: Record<string, string[]> = {
  CAP_SYS_ADMIN: [
    "bpf", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie", "mount", "mount_setattr", "move_mount",
    "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2",
    "unshare", "pivot_root", "open_by_handle_at", "listmount", "statmount", "open_tree_attr",
  ],
  CAP_SYS_BOOT: ["reboot", "kexec_load", "kexec_file_load"],
  CAP_SYS_CHROOT: ["chroot"],
  CAP_SYS_MODULE: ["delete_module", "init_module", "finit_module"],
  CAP_SYS_PACCT: ["acct"],
  CAP_SYS_PTRACE: ["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"],
  CAP_SYS_RAWIO: ["iopl", "ioperm"],
  CAP_SYS_TIME: ["settimeofday", "stime", "clock_settime", "clock_settime64", "adjtimex", "clock_adjtime", "clock_adjtime64"],
  CAP_SYS_TTY_CONFIG: ["vhangup"],
  CAP_SYS_NICE: ["get_mempolicy", "mbind", "set_mempolicy", "move_pages", "migrate_pages"],
  CAP_SYSLOG: ["syslog"],
  CAP_BPF: ["bpf"],
  CAP_PERFMON: ["perf_event_open"],
  CAP_DAC_READ_SEARCH: ["open_by_handle_at"],
};

/** Namespace flags clone may not pass without CAP_SYS_ADMIN. */
const CLONE_NS_FLAGS = 0x7e020000; // NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
const ENOSYS = 38;

/** The default profile for a container holding `capabilities` (its effective/bounding set). */
export function defaultSeccompProfile(capabilities: readonly string[] = []): SeccompSpec {
  const caps = new Set(capabilities);
  const allowed = new Set(Object.values(ALWAYS).flat());
  for (const [cap, calls] of Object.entries(BY_CAPABILITY)) if (caps.has(cap)) for (const c of calls) allowed.add(c);
  const admin = caps.has("CAP_SYS_ADMIN");
  if (!admin) allowed.delete("clone");
  const syscalls: NonNullable<SeccompSpec["syscalls"]> = [{ names: [...allowed].sort(), action: "SCMP_ACT_ALLOW" }];
  if (!admin) {
    // clone's flags are its first argument on x86-64 and arm64 (its second on s390).
    syscalls.push({ names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: CLONE_NS_FLAGS, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }] });
    syscalls.push({ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS });
  }
  // personality: only the harmless personas (Linux, with or without UNAME26 / ADDR_NO_RANDOMIZE-free variants, and the query).
  syscalls.push({ names: ["personality"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 0x0, op: "SCMP_CMP_EQ" }] });
  for (const v of [0x8, 0x20000, 0x20008, 0xffffffff]) syscalls.push({ names: ["personality"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: v, op: "SCMP_CMP_EQ" }] });
  return {
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: 1,
    architectures: process.arch === "arm64" ? ["SCMP_ARCH_AARCH64"] : ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    syscalls,
  };
}
