/**
 * `--device` and `--device-cgroup-rule`: host devices made inside the container (linux.devices,
 * with the host node's type, numbers, mode and owner) and allowed by the device cgroup, and
 * extra cgroup rules in Docker's `type major:minor access` syntax. A directory given to
 * `--device` brings every device below it, as dockerd does.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { invalidArgument } from "../errors.ts";

/** A runtime-spec device entry. */
export interface SpecDevice {
  path: string;
  type: "c" | "b";
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/** A runtime-spec device cgroup rule. */
export interface DeviceRule {
  allow: boolean;
  type?: "a" | "c" | "b";
  major?: number;
  minor?: number;
  access: string;
}

const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/** Linux's dev_t split (glibc's gnu_dev_major/minor). */
function numbers(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  return { major: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)), minor: Number((d & 0xffn) | ((d >> 12n) & ~0xffn)) };
}

/** `HostConfig.Devices` → spec devices and their cgroup rules. */
export function hostDevices(devices: { PathOnHost: string; PathInContainer?: string | null; CgroupPermissions?: string | null }[]): { devices: SpecDevice[]; rules: DeviceRule[] } {
  const out: SpecDevice[] = [];
  const rules: DeviceRule[] = [];
  for (const d of devices) {
    const access = d.CgroupPermissions || "rwm";
    if (!/^[rwm]{1,3}$/.test(access)) throw invalidArgument(`invalid device mode: ${access}`);
    const inside = d.PathInContainer || d.PathOnHost;
    let st;
    try {
      st = statSync(d.PathOnHost);
    } catch {
      throw invalidArgument(`error gathering device information while adding custom device "${d.PathOnHost}": no such file or directory`);
    }
    const add = (host: string, dest: string, mode: number, rdev: number, uid: number, gid: number) => {
      const type = (mode & S_IFMT) === S_IFBLK ? "b" : "c";
      const n = numbers(rdev);
      out.push({ path: dest, type, ...n, fileMode: mode & 0o7777, uid, gid });
      rules.push({ allow: true, type, ...n, access });
      return host;
    };
    if (st.isDirectory()) {
      const walk = (dir: string) => {
        for (const name of readdirSync(dir)) {
          const p = join(dir, name);
          const s = statSync(p, { throwIfNoEntry: false });
          if (!s) continue;
          if (s.isDirectory()) walk(p);
          else if ((s.mode & S_IFMT) === S_IFCHR || (s.mode & S_IFMT) === S_IFBLK) add(p, join(inside, p.slice(d.PathOnHost.replace(/\/+$/, "").length)), s.mode, s.rdev, s.uid, s.gid);
        }
      };
      walk(d.PathOnHost);
    } else if ((st.mode & S_IFMT) === S_IFCHR || (st.mode & S_IFMT) === S_IFBLK) add(d.PathOnHost, inside, st.mode, st.rdev, st.uid, st.gid);
    else throw invalidArgument(`error gathering device information while adding custom device "${d.PathOnHost}": not a device node`);
  }
  return { devices: out, rules };
}

/** `--device-cgroup-rule 'c 1:3 mr'` (`a`, `*` wildcards) → a cgroup rule. */
export function parseDeviceCgroupRule(rule: string): DeviceRule {
  const m = /^([acb])(?: (\d+|\*):(\d+|\*) ([rwm]{1,3}))?$/.exec(rule.trim());
  if (!m) throw invalidArgument(`invalid device cgroup format '${rule}'`);
  const type = m[1] as "a" | "c" | "b";
  if (type === "a" && !m[2]) return { allow: true, type: "a", access: "rwm" };
  if (!m[2]) throw invalidArgument(`invalid device cgroup format '${rule}'`);
  return { allow: true, type, ...(m[2] !== "*" ? { major: Number(m[2]) } : {}), ...(m[3] !== "*" ? { minor: Number(m[3]) } : {}), access: m[4]! };
}
