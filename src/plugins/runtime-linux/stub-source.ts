/**
 * The C half of the runtime: everything that runs between `clone` and `execve` in the child,
 * where no JavaScript may run (README.md, "Process model").
 * A system call that fails with an errno the op lists as acceptable yields -errno and goes on;
 * any other failure writes {op index, errno} to the plan's error fd and exits 127. It is a small interpreter of a plan
 * that TypeScript prepares (plan.ts): a list of system calls with their arguments, plus a few
 * checks, so that all policy (which mounts, which capabilities, which seccomp program) is decided
 * and tested in TypeScript and the C stays fixed and small.
 *
 * Rules for this file: compiled by TinyCC with -nostdlib, so no libc headers or functions and
 * nothing the compiler could turn into a memset/memcpy call (no struct copies, no large
 * initialisers); system calls are made with the raw instruction (bunker_raw_syscall), never
 * through libc, whose data a trimmed monitor no longer has; numbers and constants come from the
 * plan, so one source serves x86-64 and arm64.
 */
export const STUB_SOURCE = String.raw`

#define OP_SYSCALL 1
#define OP_FDPATH 2
#define OP_FSTYPE 3
#define OP_CWDCHECK 4
#define OP_FORK 5
#define OP_JUMP_IF_ZERO 6
#define OP_SET 7
#define OP_FAIL 8
#define OP_CLONE 9
#define OP_WAIT 10
#define OP_STORE32 11
#define OP_TRIM 12
#define OP_LOAD32 13
#define OP_RELAY 14
#define OP_INIT 15

#define ERR_FSTYPE (-2)
#define ERR_CWD (-3)
#define ERR_END (-1)

struct op {
  unsigned int kind;
  unsigned int relmask;
  unsigned int regmask;
  int store;
  long nr;
  long a[6];
  int ok1;
  int ok2;
};

struct plan {
  long magic;
  long scratch; /* after a trim: SCRATCH bytes the monitor may use */
  long fixups;  /* offset of {count, offsets of absolute pointers…} */
  long nr_clone;
  long nr_write;
  long nr_exit_group;
  long nr_close;
  long clone_flags;
  long err_fd;
  long nops;
  long ops_off;
  long plan_len;
  long regs[32];
};

/*
 * System calls without libc: the raw instruction, so that nothing here touches libc's data, its
 * GOT or the thread block (a trimmed monitor has unmapped them). arm64 instructions are given as
 * words (TinyCC's arm64 assembler has no mnemonics): mov x8,x0; mov x0,x1 … mov x5,x6; svc #0; ret.
 */
long bunker_raw_syscall(long nr, long a, long b, long c, long d, long e, long f);
#if defined(__x86_64__)
__asm__(".text\n.globl bunker_raw_syscall\nbunker_raw_syscall:\n"
        "  mov %rdi, %rax\n  mov %rsi, %rdi\n  mov %rdx, %rsi\n  mov %rcx, %rdx\n"
        "  mov %r8, %r10\n  mov %r9, %r8\n  mov 8(%rsp), %r9\n  syscall\n  ret\n");
#elif defined(__aarch64__)
__asm__(".text\n.globl bunker_raw_syscall\nbunker_raw_syscall:\n"
        ".int 0xaa0003e8\n.int 0xaa0103e0\n.int 0xaa0203e1\n.int 0xaa0303e2\n"
        ".int 0xaa0403e3\n.int 0xaa0503e4\n.int 0xaa0603e5\n.int 0xd4000001\n.int 0xd65f03c0\n");
#else
#error "the runtime stub supports x86-64 and arm64"
#endif

/* The thread pointer (%fs base; tpidr_el0 = mrs x0, tpidr_el0; ret). */
long bunker_thread_pointer(void);
#if defined(__x86_64__)
__asm__(".text\n.globl bunker_thread_pointer\nbunker_thread_pointer:\n  mov %fs:0, %rax\n  ret\n");
#else
__asm__(".text\n.globl bunker_thread_pointer\nbunker_thread_pointer:\n.int 0xd53bd040\n.int 0xd65f03c0\n");
#endif

/* The errno of the last failed call (this process is single-threaded). */
static long lasterr;

/* A system call; -1 with lasterr set on failure, as libc's syscall() would with errno. */
static long sc(long nr, long a, long b, long c, long d, long e, long f) {
  long r = bunker_raw_syscall(nr, a, b, c, d, e, f);
  if (r < 0 && r > -4096) { lasterr = -r; return -1; }
  return r;
}

static unsigned long hexval(const char *s, int *n) {
  unsigned long v = 0;
  int i = 0;
  for (;; i++) {
    char c = s[i];
    if (c >= '0' && c <= '9') v = v * 16 + (unsigned long)(c - '0');
    else if (c >= 'a' && c <= 'f') v = v * 16 + (unsigned long)(c - 'a' + 10);
    else break;
  }
  *n = i;
  return v;
}

/*
 * Drop every mapping of the forked address space this process no longer needs (a monitor keeps
 * only its stack, this code and data, its thread block and a private copy of the plan).
 * a: [nr_openat, nr_read, nr_munmap, nr_mmap, nr_close]. Returns the plan's new address.
 */
#define SCRATCH 65536
#define BUFSZ 8192

static struct plan *trim(struct plan *p, long *a) {
  long keep[6];
  long *ranges;
  char *buf;
  char path[16];
  long nranges = 0, fd, got, len, k, i, j, at;
  int carry = 0, n;
  struct plan *np;
  char *src, *dst;
  /*
   * The copy of the plan is followed by scratch space for the big buffers (the maps' ranges
   * here, the relay's reads later): the stack stays small, inside the pages it already has.
   */
  at = (p->plan_len + 15) & ~15L;
  np = (struct plan *)sc(a[3], 0L, at + SCRATCH, 3L /* RW */, 0x22L /* PRIVATE|ANON */, -1L, 0L);
  if ((long)np == -1) return p;
  src = (char *)p;
  dst = (char *)np;
  for (i = 0; i < p->plan_len; i++) dst[i] = src[i];
  if (np->fixups) {
    long *t = (long *)(dst + np->fixups);
    for (i = 0; i < t[0]; i++) *(long *)(dst + t[1 + i]) += (long)dst - (long)src;
  }
  np->scratch = (long)dst + at;
  ranges = (long *)np->scratch;
  buf = (char *)np->scratch + (SCRATCH - BUFSZ);
  keep[0] = (long)&nranges;          /* the stack */
  keep[1] = (long)&trim;             /* this code */
  keep[2] = (long)&lasterr;          /* its data (TinyCC may place it apart from the code) */
  keep[3] = (long)np;                /* the plan */
  /*
   * The thread block: the kernel writes the rseq area libc registered there on every return to
   * user space, and kills the process (SIGSEGV) if it is gone.
   */
  keep[4] = bunker_thread_pointer() - 2048;
  keep[5] = keep[4] + 4096;
  path[0] = '/'; path[1] = 'p'; path[2] = 'r'; path[3] = 'o'; path[4] = 'c'; path[5] = '/'; path[6] = 's'; path[7] = 'e';
  path[8] = 'l'; path[9] = 'f'; path[10] = '/'; path[11] = 'm'; path[12] = 'a'; path[13] = 'p'; path[14] = 's'; path[15] = 0;
  fd = sc(a[0], -100L, (long)path, 0L, 0L, 0L, 0L);
  if (fd < 0) return np;
  for (;;) {
    got = sc(a[1], fd, (long)(buf + carry), (long)(BUFSZ - 1 - carry), 0L, 0L, 0L);
    if (got <= 0) break;
    len = carry + got;
    buf[len] = 0;
    i = 0;
    for (;;) {
      for (j = i; j < len && buf[j] != '\n'; j++) {}
      if (j >= len) break;
      if (nranges < (SCRATCH - BUFSZ) / 8 - 2) {
        unsigned long lo = hexval(buf + i, &n);
        unsigned long hi = hexval(buf + i + n + 1, &n);
        ranges[nranges++] = (long)lo;
        ranges[nranges++] = (long)hi;
      }
      i = j + 1;
    }
    carry = (int)(len - i);
    for (k = 0; k < carry; k++) buf[k] = buf[i + k];
  }
  sc(a[4], fd, 0L, 0L, 0L, 0L, 0L);
  for (i = 0; i < nranges; i += 2) {
    int needed = 0;
    for (k = 0; k < 6; k++) if ((unsigned long)keep[k] >= (unsigned long)ranges[i] && (unsigned long)keep[k] < (unsigned long)ranges[i + 1]) needed = 1;
    /* Keep the kernel's vsyscall page (it cannot be unmapped) */
    if ((unsigned long)ranges[i] >= 0xffffffffff600000UL) needed = 1;
    if (!needed) sc(a[2], ranges[i], ranges[i + 1] - ranges[i], 0L, 0L, 0L, 0L);
  }
  return np;
}

/*
 * The monitor's output relay: until the container exits (its pidfd polls readable), copy what
 * arrives on up to two fds (the container's stdout and stderr pipes, or its pty master) to the
 * spool file as records {u8 stream, 3 x 0, u32 length, i64 seconds, i64 nanoseconds, bytes}.
 * Never fails: the container must not lose its output's reader (it would get SIGPIPE). After the
 * exit, what is still buffered is drained. r: {nr_ppoll, nr_read, nr_write, nr_clock_gettime,
 * nr_close, stream of a, stream of b}.
 */
static void relay(struct plan *p, long *r, long fa, long fb, long pidfd, long out) {
  char *buf = (char *)p->scratch; /* 24 + 16384 bytes of it */
  long fds[2];
  long streams[2];
  int pfdbuf[6]; /* 3 x struct pollfd {int fd; short events; short revents;} */
  short *pfd = (short *)pfdbuf;
  long zero_ts[2];
  long n, k, w, off, got, exited = 0;
  int m, idx[3];
  fds[0] = fa; fds[1] = fb;
  streams[0] = r[5]; streams[1] = r[6];
  zero_ts[0] = 0; zero_ts[1] = 0;
  for (;;) {
    m = 0;
    for (k = 0; k < 2; k++) {
      if (fds[k] < 0) continue;
      *(int *)&pfd[m * 4] = (int)fds[k];
      pfd[m * 4 + 2] = 1; /* POLLIN */
      pfd[m * 4 + 3] = 0;
      idx[m++] = (int)k;
    }
    if (!exited) {
      *(int *)&pfd[m * 4] = (int)pidfd;
      pfd[m * 4 + 2] = 1;
      pfd[m * 4 + 3] = 0;
      idx[m++] = 2;
    }
    if (m == 0) return;
    /* After the exit: poll without waiting, to drain what is left. */
    n = sc(r[0], (long)pfd, (long)m, exited ? (long)zero_ts : 0L, 0L, 8L, 0L);
    if (n == -1) { if (lasterr == 4) continue; return; }
    if (n == 0) return; /* exited and nothing left */
    for (k = 0; k < m; k++) {
      short rev = pfd[k * 4 + 3];
      if (rev == 0) continue;
      if (idx[k] == 2) { exited = 1; continue; }
      got = sc(r[1], fds[idx[k]], (long)(buf + 24), 16384L, 0L, 0L, 0L);
      if (got == -1 && (lasterr == 4 || lasterr == 11)) continue;
      if (got <= 0) { sc(r[4], fds[idx[k]], 0L, 0L, 0L, 0L, 0L); fds[idx[k]] = -1; continue; }
      for (w = 0; w < 24; w++) buf[w] = 0;
      buf[0] = (char)streams[idx[k]];
      *(int *)(buf + 4) = (int)got;
      sc(r[3], 0L /* CLOCK_REALTIME */, (long)(buf + 8), 0L, 0L, 0L, 0L);
      off = 0;
      while (off < 24 + got) {
        w = sc(r[2], out, (long)(buf + off), 24 + got - off, 0L, 0L, 0L);
        if (w == -1) { if (lasterr == 4) continue; break; } /* a full disk loses output, not the container */
        off += w;
      }
    }
  }
}

/*
 * A minimal init as the container's PID 1 (--init): with every signal blocked it forks; the child
 * unblocks them and goes on with the plan (to exec the program); this process closes every fd
 * above stdio (the status pipe must see end of file at the child's exec), then forwards each
 * signal it receives to the child and reaps every process that ends, until the child itself
 * ends: then it exits as the child did. n: {rt_sigprocmask, clone, rt_sigtimedwait, wait4,
 * kill, exit_group, close_range}. Returns in the child only.
 */
static void init_loop(struct plan *p, long *n) {
  unsigned long all = ~0UL, old = 0;
  long info[16];
  long pid, sig, w;
  int status;
  sc(n[0], 0L /* SIG_BLOCK */, (long)&all, (long)&old, 8L, 0L, 0L);
  pid = sc(n[1], 17L /* SIGCHLD */, 0L, 0L, 0L, 0L, 0L);
  if (pid == 0) {
    sc(n[0], 2L /* SIG_SETMASK */, (long)&old, 0L, 8L, 0L, 0L);
    return;
  }
  if (pid < 0) for (;;) sc(n[5], 127L, 0L, 0L, 0L, 0L, 0L);
  sc(n[6], 3L, 0xffffffffL, 0L, 0L, 0L, 0L);
  for (;;) {
    sig = sc(n[2], (long)&all, (long)info, 0L, 8L, 0L, 0L);
    if (sig < 0) continue;
    if (sig != 17) { sc(n[4], pid, sig, 0L, 0L, 0L, 0L); continue; }
    for (;;) {
      status = 0;
      w = sc(n[3], -1L, (long)&status, 1L /* WNOHANG */, 0L, 0L, 0L);
      if (w <= 0) break;
      if (w == pid) {
        if ((status & 0x7f) == 0) for (;;) sc(n[5], (long)((status >> 8) & 0xff), 0L, 0L, 0L, 0L, 0L);
        for (;;) sc(n[5], 128L + (status & 0x7f), 0L, 0L, 0L, 0L, 0L);
      }
    }
  }
}

static void fail(struct plan *p, long i, long e) {
  int msg[2];
  msg[0] = (int)i;
  msg[1] = (int)e;
  sc(p->nr_write, p->err_fd, (long)msg, 8, 0L, 0L, 0L);
  for (;;) sc(p->nr_exit_group, 127, 0L, 0L, 0L, 0L, 0L);
}

static void run(struct plan *p) {
  char *base = (char *)p;
  struct op *ops = (struct op *)(base + p->ops_off);
  long i = 0;
  while (i < p->nops) {
    struct op *o = &ops[i];
    long a[6];
    long r = 0;
    int k;
    for (k = 0; k < 6; k++) {
      long v = o->a[k];
      if (o->regmask & (1u << k)) v = p->regs[v & 31];
      if (o->relmask & (1u << k)) v = (long)(base + v);
      a[k] = v;
    }
    if (o->kind == OP_SYSCALL) {
      r = sc(o->nr, a[0], a[1], a[2], a[3], a[4], a[5]);
      if (r == -1) {
        int e = lasterr;
        if (e != 0 && (e == o->ok1 || e == o->ok2)) r = -(long)e;
        else fail(p, i, e);
      }
    } else if (o->kind == OP_FDPATH) {
      /* a0: a number (an fd); a1: a 32-byte buffer; writes "/proc/self/fd/<n>" */
      char *d = (char *)a[1];
      const char *pre = "/proc/self/fd/";
      char digits[24];
      long n = a[0];
      int len = 0;
      while (*pre) *d++ = *pre++;
      if (n == 0) digits[len++] = '0';
      while (n > 0) { digits[len++] = (char)('0' + n % 10); n /= 10; }
      while (len > 0) *d++ = digits[--len];
      *d = 0;
    } else if (o->kind == OP_FSTYPE) {
      /* nr: fstatfs; a0: fd; a1: expected f_type */
      long buf[32];
      r = sc(o->nr, a[0], (long)buf, 0L, 0L, 0L, 0L);
      if (r == -1) fail(p, i, lasterr);
      if ((buf[0] & 0xffffffffL) != (a[1] & 0xffffffffL)) fail(p, i, ERR_FSTYPE);
    } else if (o->kind == OP_CWDCHECK) {
      /* nr: getcwd; the working directory must be reachable from the root */
      char buf[4096];
      r = sc(o->nr, (long)buf, 4096L, 0L, 0L, 0L, 0L);
      if (r == -1) fail(p, i, lasterr);
      if (buf[0] != '/') fail(p, i, ERR_CWD);
    } else if (o->kind == OP_FORK) {
      /* Fork once more (to enter a joined PID namespace); the parent reports {-2, pid} and exits
         or waits. a0: wait flag; a1: close_range's number (the parent closes every fd). */
      int msg[2];
      r = sc(p->nr_clone, 17L, 0L, 0L, 0L, 0L, 0L);
      if (r == -1) fail(p, i, lasterr);
      if (r > 0) {
        /* Report the pid; then either exit, or wait for it and exit as it did (the caller waits for us). */
        int status = 0;
        long w;
        msg[0] = -2;
        msg[1] = (int)r;
        sc(p->nr_write, p->err_fd, (long)msg, 8L, 0L, 0L, 0L);
        sc(p->nr_close, p->err_fd, 0L, 0L, 0L, 0L, 0L);
        /* Hold nothing of the child's: its stdin must see end of file when its writer closes. */
        if (a[1] > 0) sc(a[1], 0L, 0xffffffffL, 0L, 0L, 0L, 0L);
        /* a0 == 0: exit at once, so the child is reparented to the caller's subreaper (a shim). */
        if (a[0] == 0) for (;;) sc(p->nr_exit_group, 0L, 0L, 0L, 0L, 0L, 0L);
        for (;;) {
          w = sc(o->nr, r, (long)&status, 0L, 0L, 0L, 0L);
          if (w == r) break;
          if (w == -1 && lasterr != 4) break;
        }
        if ((status & 0x7f) == 0) for (;;) sc(p->nr_exit_group, (long)((status >> 8) & 0xff), 0L, 0L, 0L, 0L, 0L);
        for (;;) sc(p->nr_exit_group, 128L + (status & 0x7f), 0L, 0L, 0L, 0L, 0L);
      }
    } else if (o->kind == OP_JUMP_IF_ZERO) {
      /* a0: a value; a1: the op to continue at when it is zero */
      if (a[0] == 0) { i = a[1]; continue; }
    } else if (o->kind == OP_SET) {
      r = a[0];
    } else if (o->kind == OP_FAIL) {
      fail(p, i, a[0]);
    } else if (o->kind == OP_CLONE) {
      /* a0: clone flags; a1: the op where the child goes on. The parent gets the child's pid. */
      r = sc(p->nr_clone, a[0], 0L, 0L, 0L, 0L, 0L);
      if (r == -1) fail(p, i, lasterr);
      if (r == 0) { i = a[1]; continue; }
    } else if (o->kind == OP_TRIM) {
      struct plan *np = trim(p, a);
      if (np != p) {
        p = np;
        base = (char *)np;
        ops = (struct op *)(base + np->ops_off);
        o = &ops[i];
      }
    } else if (o->kind == OP_INIT) {
      /* a0: the init's system call numbers (see init_loop); only the forked child gets past it. */
      init_loop(p, (long *)a[0]);
    } else if (o->kind == OP_LOAD32) {
      /* a0: an address in the plan; r = the int there. */
      r = *(int *)a[0];
    } else if (o->kind == OP_RELAY) {
      /* a0: the relay's numbers (see relay); a1, a2: fds to read (-1: none); a3: pidfd; a4: spool fd. After a trim only. */
      if (p->scratch == 0) fail(p, i, 22L);
      relay(p, (long *)a[0], a[1], a[2], a[3], a[4]);
    } else if (o->kind == OP_STORE32) {
      /* a0: a value; a1: an address in the plan. */
      *(int *)a[1] = (int)a[0];
    } else if (o->kind == OP_WAIT) {
      /* nr: wait4; a0: a pid. Reap every child (orphans too, as a subreaper) until a0 exits; r = its status. */
      int status;
      long w;
      for (;;) {
        status = 0;
        w = sc(o->nr, -1L, (long)&status, 0L, 0L, 0L, 0L);
        if (w == -1) {
          int e = lasterr;
          if (e == 4) continue;
          fail(p, i, e);
        }
        if (w == a[0]) break;
      }
      r = status;
    }
    if (o->store >= 0) p->regs[o->store & 31] = r;
    i++;
  }
  fail(p, i, ERR_END);
}

/* Clone with the plan's flags; the child runs the plan and never returns. Returns the pid or -errno. */
long bunker_spawn(struct plan *p) {
  long pid;
  if (p->magic != 0x424e4b5250304c31L) return -22;
  pid = sc(p->nr_clone, p->clone_flags, 0L, 0L, 0L, 0L, 0L);
  if (pid == -1) return -(long)lasterr;
  if (pid == 0) run(p);
  return pid;
}
`;
