/**
 * `bunker runtime features`: what this runtime supports, in the runtime-spec "features" format
 * (features-linux.json). Answering it compiles the C stub first, so a device where the runtime
 * cannot work (no TinyCC support, no libc to point the stub at) finds out here.
 */
import { CAPABILITIES } from "./linux-constants.ts";
import { loadStub } from "./spawn.ts";
import { NAMESPACE_TYPES } from "../../core/runtime/oci.ts";

/** The features document. */
export function runtimeFeatures(): Record<string, unknown> {
  const t0 = performance.now();
  loadStub();
  const compileMs = performance.now() - t0;
  return {
    ociVersionMin: "1.0.0",
    ociVersionMax: "1.2.0",
    hooks: ["prestart", "createRuntime", "poststart", "poststop"],
    mountOptions: [
      "async",
      "atime",
      "bind",
      "defaults",
      "dev",
      "diratime",
      "dirsync",
      "exec",
      "lazytime",
      "mand",
      "noatime",
      "nodev",
      "nodiratime",
      "noexec",
      "nolazytime",
      "nomand",
      "norelatime",
      "nostrictatime",
      "nosuid",
      "nosymfollow",
      "private",
      "rbind",
      "relatime",
      "remount",
      "ro",
      "rprivate",
      "rshared",
      "rslave",
      "runbindable",
      "rw",
      "shared",
      "slave",
      "strictatime",
      "suid",
      "symfollow",
      "sync",
      "unbindable",
    ],
    linux: {
      namespaces: NAMESPACE_TYPES.filter((n) => n !== "time"),
      capabilities: [...CAPABILITIES],
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false, rdma: false },
      seccomp: {
        enabled: true,
        actions: ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
        operators: ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
        archs: process.arch === "arm64" ? ["SCMP_ARCH_AARCH64"] : ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
        knownFlags: ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        supportedFlags: ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: false } },
    },
    annotations: {
      "org.bunker.runtime.version": "0.1.0",
      "org.bunker.runtime.stub": `compiled in ${compileMs.toFixed(1)} ms (${process.arch})`,
    },
  };
}
