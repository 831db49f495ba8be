/**
 * Loop devices through ioctls (no `losetup`): take a free one from /dev/loop-control and bind a
 * backing file to it with LOOP_CONFIGURE, auto-clearing so it detaches once its last user (the
 * thin pool) lets go.
 */
import { SyscallError } from "../../core/errors.ts";
import { AT_FDCWD, O_CLOEXEC, O_RDWR, type Sys } from "../../core/sys/sys.ts";

const LOOP_CTL_GET_FREE = 0x4c82;
const LOOP_CONFIGURE = 0x4c0a;
const LO_FLAGS_AUTOCLEAR = 4;
/** sizeof(struct loop_config): fd, block_size, loop_info64 (232), reserved[8]. */
export const LOOP_CONFIG_SIZE = 304;
const EBUSY = 16;

/** struct loop_config binding `backingFd`, auto-clearing, named `file` for display. */
export function loopConfig(backingFd: number, file: string): Uint8Array {
  const b = new Uint8Array(LOOP_CONFIG_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, backingFd, true);
  v.setUint32(8 + 52, LO_FLAGS_AUTOCLEAR, true); // info.lo_flags
  b.set(new TextEncoder().encode(file).subarray(0, 63), 8 + 56); // info.lo_file_name
  return b;
}

/** An attached loop device; `close()` drops our reference (it stays while something holds it). */
export interface LoopDevice {
  path: string;
  close(): void;
}

/** Attach `file` to a free loop device. */
export function attachLoop(sys: Sys, file: string): LoopDevice {
  const ctl = sys.openat2(AT_FDCWD, "/dev/loop-control", O_RDWR | O_CLOEXEC, 0, 0);
  const backing = sys.openat2(AT_FDCWD, file, O_RDWR | O_CLOEXEC, 0, 0);
  try {
    for (let attempt = 0; ; attempt++) {
      const n = sys.ioctl(ctl, LOOP_CTL_GET_FREE, new Uint8Array(8), "/dev/loop-control");
      const path = `/dev/loop${n}`;
      const fd = sys.openat2(AT_FDCWD, path, O_RDWR | O_CLOEXEC, 0, 0);
      try {
        sys.ioctl(fd, LOOP_CONFIGURE, loopConfig(backing, file), path);
      } catch (err) {
        sys.close(fd);
        // Another process took it between GET_FREE and CONFIGURE: ask again.
        if (err instanceof SyscallError && err.errno === EBUSY && attempt < 10) continue;
        throw err;
      }
      return { path, close: () => sys.close(fd) };
    }
  } finally {
    sys.close(backing);
    sys.close(ctl);
  }
}
