/**
 * Facts about the host that `GET /info` and `GET /version` report: CPUs, memory, kernel,
 * operating system, cgroup version. Read once per call from /proc, /sys and /etc; cheap.
 */
import { ignored } from "../log.ts";
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism, hostname, release, totalmem } from "node:os";

/** Host facts in Docker's field names. */
export interface HostFacts {
  NCPU: number;
  MemTotal: number;
  KernelVersion: string;
  OperatingSystem: string;
  OSVersion: string;
  OSType: "linux";
  Architecture: string;
  Name: string;
  CgroupVersion: "1" | "2";
  CgroupDriver: "cgroupfs";
}

/** `uname -m` naming of the CPU architecture. */
export function unameMachine(arch: string = process.arch): string {
  return arch === "x64" ? "x86_64" : arch === "arm64" ? "aarch64" : arch;
}

/** Parse /etc/os-release into a key/value map. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, "$1").replace(/^'(.*)'$/, "$1");
  }
  return out;
}

/** The cgroup version of the host: "2" when /sys/fs/cgroup is the unified hierarchy. */
export function cgroupVersion(root = "/sys/fs/cgroup"): "1" | "2" {
  return existsSync(`${root}/cgroup.controllers`) ? "2" : "1";
}

/** Read the host's facts now. */
export function readHostFacts(): HostFacts {
  let os: Record<string, string> = {};
  for (const p of ["/etc/os-release", "/usr/lib/os-release"]) {
    try {
      os = parseOsRelease(readFileSync(p, "utf8"));
      break;
    } catch (err) {
      ignored("try the next", err);
    }
  }
  return {
    NCPU: availableParallelism(),
    MemTotal: totalmem(),
    KernelVersion: release(),
    OperatingSystem: os.PRETTY_NAME ?? "Linux",
    OSVersion: os.VERSION_ID ?? "",
    OSType: "linux",
    Architecture: unameMachine(),
    Name: hostname(),
    CgroupVersion: cgroupVersion(),
    CgroupDriver: "cgroupfs",
  };
}
