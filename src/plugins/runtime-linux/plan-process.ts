/**
 * The process steps of a container's plan: its terminal (a pty from the container's devpts, the
 * master passed over a socket), the seccomp filter, its identity (groups, ids, capabilities)
 * and the program looked up on PATH inside the root.
 */
import { posix } from "node:path";

import { AT_FDCWD, O_CLOEXEC, O_RDWR } from "../../core/sys/sys.ts";
import { capMask, lastCap } from "./linux-constants.ts";
import { DataRef, Label, PlanBuilder, type Reg, StubError } from "./plan.ts";

import { compileSeccomp, seccompFlags } from "./seccomp.ts";
import type { ProcessSpec, SeccompSpec } from "../../core/runtime/oci.ts";

import { capData, E, LINUX_CAPABILITY_VERSION_3, PR } from "./container-plan.ts";

/**
 * Receive one fd (SCM_RIGHTS) on `sock`; returns the 4-byte slot that holds it afterwards (-1 when
 * none came: a container that fails before sending closes its end and recvmsg returns 0).
 */
export function recvFd(p: PlanBuilder, sock: number): DataRef {
  const iobuf = p.scratch(64);
  const iov = new Uint8Array(16);
  new DataView(iov.buffer).setBigUint64(8, 64n, true);
  const iovRef = p.struct(iov, [[0, iobuf]]);
  const cmsgBytes = new Uint8Array(24);
  cmsgBytes.fill(0xff, 16, 20);
  const cmsg = p.bytes(cmsgBytes);
  const msg = new Uint8Array(56);
  const mv = new DataView(msg.buffer);
  mv.setBigUint64(24, 1n, true); // msg_iovlen
  mv.setBigUint64(40, 24n, true); // msg_controllen
  const msgRef = p.struct(msg, [
    [16, iovRef],
    [32, cmsg],
  ]);
  p.call("recvmsg", [sock, msgRef, O_CLOEXEC /* MSG_CMSG_CLOEXEC */], "monitor: receive the pty master");
  p.call("close", [sock], "monitor: close the terminal socket");
  return new DataRef(cmsg.offset + 16);
}

/** Open a pty inside the container, send the master over `sock` (SCM_RIGHTS), make the slave the controlling terminal and stdio. */
export function terminal(p: PlanBuilder, proc: ProcessSpec, sock: Reg, master: Reg, slave: Reg, exec: boolean): void {
  const O_NOCTTY = 0o400;
  p.call("openat", [AT_FDCWD, p.str("/dev/ptmx"), O_RDWR | O_NOCTTY | O_CLOEXEC, 0], "open /dev/ptmx", { store: master });
  p.call("ioctl", [master, 0x40045431 /* TIOCSPTLCK */, p.bytes(new Uint8Array(4))], "unlock the pty");
  p.call("ioctl", [master, 0x5441 /* TIOCGPTPEER */, O_RDWR | O_NOCTTY], "open the pty's slave", { store: slave });
  if (proc.consoleSize) {
    const ws = new Uint8Array(8);
    const v = new DataView(ws.buffer);
    v.setUint16(0, proc.consoleSize.height, true);
    v.setUint16(2, proc.consoleSize.width, true);
    p.call("ioctl", [slave, 0x5414 /* TIOCSWINSZ */, p.bytes(ws)], "set the terminal size");
  }
  // struct msghdr with one iovec (a name for the receiver) and one SCM_RIGHTS control message.
  const name = new TextEncoder().encode("/dev/ptmx");
  const data = p.bytes(name);
  const iov = new Uint8Array(16);
  new DataView(iov.buffer).setBigUint64(8, BigInt(name.length), true);
  const iovRef = p.struct(iov, [[0, data]]);
  const cmsg = new Uint8Array(24);
  const cv = new DataView(cmsg.buffer);
  cv.setBigUint64(0, 20n, true); // CMSG_LEN(sizeof(int))
  cv.setInt32(8, 1, true); // SOL_SOCKET
  cv.setInt32(12, 1, true); // SCM_RIGHTS
  const cmsgRef = p.bytes(cmsg);
  const msg = new Uint8Array(56);
  const mv = new DataView(msg.buffer);
  mv.setBigUint64(24, 1n, true); // msg_iovlen
  mv.setBigUint64(40, 24n, true); // msg_controllen
  const msgRef = p.struct(msg, [
    [16, iovRef],
    [32, cmsgRef],
  ]);
  p.store32(master, new DataRef(cmsgRef.offset + 16), "put the pty master in the control message");
  p.call("sendmsg", [sock, msgRef, 0], "send the pty master to the console socket");
  p.call("close", [master], "close the pty master");
  p.call("close", [sock], "close the console socket");
  if (exec) p.call("setsid", [], "setsid", { ok: [E.EPERM] });
  p.call("ioctl", [slave, 0x540e /* TIOCSCTTY */, 0], "make the pty the controlling terminal");
  for (const fd of [0, 1, 2]) p.call("dup3", [slave, fd, 0], `pty as fd ${fd}`);
  p.call("close", [slave], "close");
}

/** Install the profile's filter (compiled to BPF here, in TypeScript). */
export function loadSeccomp(p: PlanBuilder, profile: SeccompSpec): void {
  const { program, instructions } = compileSeccomp(profile);
  const prog = p.bytes(program);
  const fprog = new Uint8Array(16);
  new DataView(fprog.buffer).setUint16(0, instructions, true);
  const ref = p.struct(fprog, [[8, prog]]);
  p.call("seccomp", [1 /* SECCOMP_SET_MODE_FILTER */, seccompFlags(profile), ref], `load the seccomp filter (${instructions} instructions)`);
}

export function identity(p: PlanBuilder, proc: ProcessSpec): void {
  const caps = proc.capabilities ?? {};
  const bounding = capMask(caps.bounding, "process.capabilities.bounding");
  const last = lastCap();
  p.call("prctl", [PR.SET_KEEPCAPS, 1, 0, 0, 0], "prctl PR_SET_KEEPCAPS 1");
  for (let c = 0; c <= last; c++) {
    if (!(bounding & (1n << BigInt(c)))) p.call("prctl", [PR.CAPBSET_DROP, c, 0, 0, 0], `drop capability ${c} from the bounding set`, { ok: [E.EINVAL] });
  }
  const groups = proc.user.additionalGids ?? [];
  const gl = new Uint8Array(Math.max(4, groups.length * 4));
  groups.forEach((g, i) => new DataView(gl.buffer).setUint32(i * 4, g, true));
  p.call("setgroups", [groups.length, p.bytes(gl)], `setgroups ${groups.join(",") || "(none)"}`, { ok: [E.EPERM] });
  p.call("setresgid", [proc.user.gid, proc.user.gid, proc.user.gid], `setgid ${proc.user.gid}`);
  p.call("setresuid", [proc.user.uid, proc.user.uid, proc.user.uid], `setuid ${proc.user.uid}`);
  p.call("prctl", [PR.SET_KEEPCAPS, 0, 0, 0, 0], "prctl PR_SET_KEEPCAPS 0");
  const header = new Uint8Array(8);
  new DataView(header.buffer).setUint32(0, LINUX_CAPABILITY_VERSION_3, true);
  const data = capData(capMask(caps.effective, "process.capabilities.effective"), capMask(caps.permitted, "process.capabilities.permitted"), capMask(caps.inheritable, "process.capabilities.inheritable"));
  p.call("capset", [p.bytes(header), p.bytes(data)], "set capabilities");
  p.call("prctl", [PR.CAP_AMBIENT, 4, 0, 0, 0], "clear the ambient capabilities", { ok: [E.EINVAL] });
  const ambient = capMask(caps.ambient, "process.capabilities.ambient");
  for (let c = 0; c <= last; c++) {
    // A capability missing from the inheritable (or permitted) set cannot be ambient: EPERM is
    // skipped as runc does (it warns), so runc's default spec (ambient, no inheritable) runs.
    if (ambient & (1n << BigInt(c))) p.call("prctl", [PR.CAP_AMBIENT, 2, c, 0, 0], `raise ambient capability ${c}`, { ok: [E.EPERM] });
  }
}

/** Find the program as execve would through the container's PATH (runc looks it up inside too). */
export function lookup(p: PlanBuilder, prog: string, env: string[], exe: Reg): void {
  if (prog.includes("/")) {
    const path = p.str(prog);
    p.call("faccessat", [AT_FDCWD, path, 1 /* X_OK */, 0], `exec: "${prog}"`);
    p.set(exe, path);
    return;
  }
  const pathVar = env.find((e) => e.startsWith("PATH="))?.slice(5) ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  const candidates = pathVar
    .split(":")
    .filter(Boolean)
    .map((dir) => ({ path: p.str(posix.join(dir, prog)), name: posix.join(dir, prog), label: new Label() }));
  for (const c of candidates) {
    // 0 when executable; -ENOENT/-EACCES go on to the next directory.
    p.call("faccessat", [AT_FDCWD, c.path, 1 /* X_OK */, 0], `look for ${c.name}`, { ok: [E.ENOENT, E.EACCES], store: exe });
    p.jumpIfZero(exe, c.label);
  }
  p.fail(StubError.NotFound, `exec: "${prog}"`);
  const done = new Label();
  for (const c of candidates) {
    p.here(c.label);
    p.set(exe, c.path);
    p.jump(done);
  }
  p.here(done);
}
