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
 * initialisers); system calls go through libc's `syscall()` whose address is in the plan;
 * numbers and constants come from the plan, so one source serves x86-64 and arm64.
 */
export const STUB_SOURCE = String.raw`
typedef long (*syscall_fn)(long, ...);
typedef int *(*errno_fn)(void);

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
  syscall_fn sc;
  errno_fn err;
  long nr_clone;
  long nr_write;
  long nr_exit_group;
  long nr_close;
  long clone_flags;
  long err_fd;
  long nops;
  long ops_off;
  long plan_len;
  long regs[16];
};

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
 * only its stack, this code, libc's text, its thread block and a private copy of the plan).
 * a: [nr_openat, nr_read, nr_munmap, nr_mmap, nr_close]. Returns the plan's new address.
 */
static struct plan *trim(struct plan *p, long *a) {
  long keep[8];
  long ranges[4096];
  char buf[8192];
  char path[16];
  long nranges = 0, fd, got, len, k, i, j;
  int carry = 0, n;
  struct plan *np;
  char *src, *dst;
  np = (struct plan *)p->sc(a[3], 0L, p->plan_len, 3L /* RW */, 0x22L /* PRIVATE|ANON */, -1L, 0L);
  if ((long)np == -1) return p;
  src = (char *)p;
  dst = (char *)np;
  for (i = 0; i < p->plan_len; i++) dst[i] = src[i];
  keep[0] = (long)&nranges;          /* the stack */
  keep[1] = (long)&trim;             /* this code */
  keep[2] = (long)np->sc;            /* libc's syscall() */
  keep[3] = (long)np->err;           /* libc's __errno_location() */
  keep[4] = (long)np->err();         /* the thread block holding errno */
  keep[5] = (long)np;                /* the plan */
  path[0] = '/'; path[1] = 'p'; path[2] = 'r'; path[3] = 'o'; path[4] = 'c'; path[5] = '/'; path[6] = 's'; path[7] = 'e';
  path[8] = 'l'; path[9] = 'f'; path[10] = '/'; path[11] = 'm'; path[12] = 'a'; path[13] = 'p'; path[14] = 's'; path[15] = 0;
  fd = np->sc(a[0], -100L, (long)path, 0L, 0L);
  if (fd < 0) return np;
  for (;;) {
    got = np->sc(a[1], fd, (long)(buf + carry), (long)(sizeof(buf) - 1 - carry));
    if (got <= 0) break;
    len = carry + got;
    buf[len] = 0;
    i = 0;
    for (;;) {
      for (j = i; j < len && buf[j] != '\n'; j++) {}
      if (j >= len) break;
      if (nranges < 4094) {
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
  np->sc(a[4], fd);
  for (i = 0; i < nranges; i += 2) {
    int needed = 0;
    for (k = 0; k < 6; k++) if ((unsigned long)keep[k] >= (unsigned long)ranges[i] && (unsigned long)keep[k] < (unsigned long)ranges[i + 1]) needed = 1;
    /* Keep the kernel's vsyscall page (it cannot be unmapped) */
    if ((unsigned long)ranges[i] >= 0xffffffffff600000UL) needed = 1;
    if (!needed) np->sc(a[2], ranges[i], ranges[i + 1] - ranges[i]);
  }
  return np;
}

static void fail(struct plan *p, long i, long e) {
  int msg[2];
  msg[0] = (int)i;
  msg[1] = (int)e;
  p->sc(p->nr_write, p->err_fd, (long)msg, 8);
  for (;;) p->sc(p->nr_exit_group, 127);
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
      if (o->regmask & (1u << k)) v = p->regs[v & 15];
      if (o->relmask & (1u << k)) v = (long)(base + v);
      a[k] = v;
    }
    if (o->kind == OP_SYSCALL) {
      r = p->sc(o->nr, a[0], a[1], a[2], a[3], a[4], a[5]);
      if (r == -1) {
        int e = *p->err();
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
      r = p->sc(o->nr, a[0], (long)buf);
      if (r == -1) fail(p, i, *p->err());
      if ((buf[0] & 0xffffffffL) != (a[1] & 0xffffffffL)) fail(p, i, ERR_FSTYPE);
    } else if (o->kind == OP_CWDCHECK) {
      /* nr: getcwd; the working directory must be reachable from the root */
      char buf[4096];
      r = p->sc(o->nr, (long)buf, 4096L);
      if (r == -1) fail(p, i, *p->err());
      if (buf[0] != '/') fail(p, i, ERR_CWD);
    } else if (o->kind == OP_FORK) {
      /* Fork once more (to enter a joined PID namespace); the parent reports {-2, pid} and exits. */
      int msg[2];
      r = p->sc(p->nr_clone, 17L, 0L, 0L, 0L, 0L);
      if (r == -1) fail(p, i, *p->err());
      if (r > 0) {
        /* Report the pid; then either exit, or wait for it and exit as it did (the caller waits for us). */
        int status = 0;
        long w;
        msg[0] = -2;
        msg[1] = (int)r;
        p->sc(p->nr_write, p->err_fd, (long)msg, 8L);
        p->sc(p->nr_close, p->err_fd);
        /* a0 == 0: exit at once, so the child is reparented to the caller's subreaper (a shim). */
        if (a[0] == 0) for (;;) p->sc(p->nr_exit_group, 0L);
        for (;;) {
          w = p->sc(o->nr, r, (long)&status, 0L, 0L);
          if (w == r) break;
          if (w == -1 && *p->err() != 4) break;
        }
        if ((status & 0x7f) == 0) for (;;) p->sc(p->nr_exit_group, (long)((status >> 8) & 0xff));
        for (;;) p->sc(p->nr_exit_group, 128L + (status & 0x7f));
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
      r = p->sc(p->nr_clone, a[0], 0L, 0L, 0L, 0L);
      if (r == -1) fail(p, i, *p->err());
      if (r == 0) { i = a[1]; continue; }
    } else if (o->kind == OP_TRIM) {
      struct plan *np = trim(p, a);
      if (np != p) {
        p = np;
        base = (char *)np;
        ops = (struct op *)(base + np->ops_off);
        o = &ops[i];
      }
    } else if (o->kind == OP_STORE32) {
      /* a0: a value; a1: an address in the plan. */
      *(int *)a[1] = (int)a[0];
    } else if (o->kind == OP_WAIT) {
      /* nr: wait4; a0: a pid. Reap every child (orphans too, as a subreaper) until a0 exits; r = its status. */
      int status;
      long w;
      for (;;) {
        status = 0;
        w = p->sc(o->nr, -1L, (long)&status, 0L, 0L);
        if (w == -1) {
          int e = *p->err();
          if (e == 4) continue;
          fail(p, i, e);
        }
        if (w == a[0]) break;
      }
      r = status;
    }
    if (o->store >= 0) p->regs[o->store & 15] = r;
    i++;
  }
  fail(p, i, ERR_END);
}

/* Clone with the plan's flags; the child runs the plan and never returns. Returns the pid or -errno. */
long bunker_spawn(struct plan *p) {
  long pid;
  if (p->magic != 0x424e4b5250304c31L) return -22;
  pid = p->sc(p->nr_clone, p->clone_flags, 0L, 0L, 0L, 0L);
  if (pid == -1) return -(long)*p->err();
  if (pid == 0) run(p);
  return pid;
}
`;
