/**
 * Docker's volume copy-up: a volume that is still empty when its container first starts gets
 * what the image has at the mount's destination. The source is resolved inside the container's
 * root (openat2 RESOLVE_IN_ROOT, then read through /proc/self/fd), so a symlink in the image
 * cannot make the daemon copy host files into the volume; the copy goes through the layer code
 * (tar entries applied with its path checks), keeping owners, modes and times.
 */
import { chmodSync, chownSync, statSync } from "node:fs";
import { AT_FDCWD, O_CLOEXEC, O_DIRECTORY, O_PATH, O_RDONLY, RESOLVE_IN_ROOT, type Sys } from "../sys/sys.ts";

/** Copy `dest` of the container's root (if it is a directory) into `volumeDir`. */
export async function copyUp(sys: Sys, rootfs: string, dest: string, volumeDir: string): Promise<void> {
  const root = sys.openat2(AT_FDCWD, rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0);
  let src: number;
  try {
    src = sys.openat2(root, dest.replace(/^\/+/, ""), O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_IN_ROOT);
  } catch {
    return; // nothing there (or not a directory): nothing to copy
  } finally {
    sys.close(root);
  }
  try {
    const [{ applyLayer }, { archiveDirectory }, { writeTar }] = await Promise.all([import("../layer/apply.ts"), import("../layer/archive-dir.ts"), import("../layer/tar-stream.ts")]);
    await applyLayer(sys, volumeDir, writeTar(archiveDirectory(sys, `/proc/self/fd/${src}`)), { whiteouts: "remove", sync: false });
    // The volume's own directory takes the image directory's owner and mode too (Docker copies
    // them: PostgreSQL's data directory is postgres:postgres 0700 and its entrypoint relies on it).
    const st = statSync(`/proc/self/fd/${src}`);
    chownSync(volumeDir, st.uid, st.gid);
    chmodSync(volumeDir, st.mode & 0o7777);
  } finally {
    sys.close(src);
  }
}
