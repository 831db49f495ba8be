/**
 * The btrfs subvolume ioctls the driver uses (linux/btrfs.h), issued through the Sys seam:
 * create, snapshot (optionally read-only), make read-only, destroy. The request numbers are
 * _IOW(0x94, nr, size) and identical on x86-64 and arm64.
 */
import { invalidArgument } from "../../core/errors.ts";
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_RDONLY, type Sys } from "../../core/sys/sys.ts";

const BTRFS_IOC_SNAP_CREATE_V2 = 0x50009417;
const BTRFS_IOC_SUBVOL_CREATE = 0x5000940e;
const BTRFS_IOC_SNAP_DESTROY = 0x5000940f;
const BTRFS_IOC_SUBVOL_SETFLAGS = 0x4008941a;
const BTRFS_SUBVOL_RDONLY = 1n << 1n;
const VOL_NAME_MAX = 4039;

function volArgs(fd: number, name: string): Uint8Array {
  const b = new Uint8Array(4096);
  new DataView(b.buffer).setBigInt64(0, BigInt(fd), true);
  putName(b, 8, name);
  return b;
}

function putName(b: Uint8Array, off: number, name: string): void {
  const bytes = new TextEncoder().encode(name);
  if (bytes.length === 0 || bytes.length > VOL_NAME_MAX || name.includes("/")) throw invalidArgument(`invalid subvolume name ${JSON.stringify(name)}`);
  b.set(bytes, off);
}

function withDir<T>(sys: Sys, dir: string, fn: (fd: number) => T): T {
  const fd = sys.openat2(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0);
  try {
    return fn(fd);
  } finally {
    sys.close(fd);
  }
}

/** Create subvolume `name` in directory `parentDir`. */
export function subvolumeCreate(sys: Sys, parentDir: string, name: string): void {
  withDir(sys, parentDir, (fd) => sys.ioctl(fd, BTRFS_IOC_SUBVOL_CREATE, volArgs(0, name), `${parentDir}/${name}`));
}

/** Snapshot subvolume `source` as `parentDir/name`. */
export function subvolumeSnapshot(sys: Sys, source: string, parentDir: string, name: string, readonly: boolean): void {
  withDir(sys, source, (srcFd) =>
    withDir(sys, parentDir, (dstFd) => {
      const b = new Uint8Array(4096);
      const dv = new DataView(b.buffer);
      dv.setBigInt64(0, BigInt(srcFd), true);
      dv.setBigUint64(16, readonly ? BTRFS_SUBVOL_RDONLY : 0n, true);
      putName(b, 56, name);
      sys.ioctl(dstFd, BTRFS_IOC_SNAP_CREATE_V2, b, `${parentDir}/${name}`);
    }),
  );
}

/** Make subvolume `dir` read-only. */
export function subvolumeSetReadonly(sys: Sys, dir: string): void {
  withDir(sys, dir, (fd) => {
    const flags = new Uint8Array(8);
    new DataView(flags.buffer).setBigUint64(0, BTRFS_SUBVOL_RDONLY, true);
    sys.ioctl(fd, BTRFS_IOC_SUBVOL_SETFLAGS, flags, dir);
  });
}

/** Delete subvolume `parentDir/name`. */
export function subvolumeDestroy(sys: Sys, parentDir: string, name: string): void {
  withDir(sys, parentDir, (fd) => sys.ioctl(fd, BTRFS_IOC_SNAP_DESTROY, volArgs(0, name), `${parentDir}/${name}`));
}
