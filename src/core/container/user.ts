/**
 * A container's `User` ("name", "uid", "uid:gid", "name:group") and `--group-add`, resolved in
 * the container's own /etc/passwd and /etc/group, read inside its root (openat2
 * RESOLVE_IN_ROOT): a symlinked /etc/passwd in an image cannot point at the host's.
 */
import { readFileSync } from "node:fs";
import { invalidArgument } from "../errors.ts";
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_RDONLY, RESOLVE_IN_ROOT, type Sys } from "../sys/sys.ts";

/** `User` ("name", "uid", "uid:gid", "name:group") resolved in the container's /etc/passwd and /etc/group. */
export function resolveUser(sys: Sys, rootfs: string, user: string, groupAdd: string[] = []): { uid: number; gid: number; additionalGids: number[]; home: string } {
  // Read inside the container's root: a symlinked /etc/passwd cannot point at the host's.
  const root = sys.openat2(AT_FDCWD, rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0);
  const read = (path: string): string[][] => {
    try {
      const fd = sys.openat2(root, path, O_RDONLY | O_CLOEXEC, 0, RESOLVE_IN_ROOT);
      try {
        return readFileSync(fd, "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => l.split(":"));
      } finally {
        sys.close(fd);
      }
    } catch {
      return [];
    }
  };
  let passwd: string[][];
  let groups: string[][];
  try {
    passwd = read("etc/passwd");
    groups = read("etc/group");
  } finally {
    sys.close(root);
  }
  const [u = "", g] = user.split(":");
  let uid = 0;
  let gid = 0;
  if (u) {
    if (/^\d+$/.test(u)) {
      uid = Number(u);
      gid = Number(passwd.find((p) => p[2] === u)?.[3] ?? 0);
    } else {
      const p = passwd.find((x) => x[0] === u);
      if (!p) throw invalidArgument(`unable to find user ${u}: no matching entries in passwd file`);
      uid = Number(p[2]);
      gid = Number(p[3]);
    }
  }
  if (g !== undefined && g !== "") {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const gr = groups.find((x) => x[0] === g);
      if (!gr) throw invalidArgument(`unable to find group ${g}: no matching entries in group file`);
      gid = Number(gr[2]);
    }
  }
  const name = passwd.find((p) => Number(p[2]) === uid)?.[0];
  // The primary group is a supplementary group too (moby since 20.10.18, the CVE-2022-36109 fix):
  // `id` as root shows groups=0(root), and dropping the primary group cannot gain access.
  const additional = new Set<number>([gid]);
  if (name) for (const gr of groups) if ((gr[3] ?? "").split(",").includes(name)) additional.add(Number(gr[2]));
  for (const ga of groupAdd) {
    if (/^\d+$/.test(ga)) additional.add(Number(ga));
    else {
      const gr = groups.find((x) => x[0] === ga);
      if (!gr) throw invalidArgument(`Unable to find group ${ga}: no matching entries in group file`);
      additional.add(Number(gr[2]));
    }
  }
  // The home directory, for HOME when the environment has none (runc's rule: / without an entry).
  const home = passwd.find((p) => Number(p[2]) === uid)?.[5] || "/";
  return { uid, gid, additionalGids: [...additional], home };
}
