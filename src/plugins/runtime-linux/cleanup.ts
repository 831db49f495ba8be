/**
 * What a create or delete leaves to clean up: the descriptors one create opened, and a container's
 * cgroup once its last task is gone.
 */
import { closeSync } from "node:fs";

/** fds opened for one create: closed together afterwards, except those handed to the caller. */
export class IoFds {
  private readonly fds = new Set<number>();
  add(fd: number): number {
    this.fds.add(fd);
    return fd;
  }
  keep(fd: number): void {
    this.fds.delete(fd);
  }
  close(): void {
    for (const fd of this.fds) closeSync(fd);
    this.fds.clear();
  }
}

/**
 * Remove a container's cgroup once it is empty: a cgroup stays busy until the kernel has released
 * its last exiting task, so wait for its processes to go (up to 10 s) and retry EBUSY for a moment.
 */
export async function removeCgroup(cg: { pids(): number[]; destroy(): void }): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (cg.pids().length > 0 && Date.now() < deadline) await Bun.sleep(5);
  for (let i = 0; ; i++) {
    try {
      cg.destroy();
      return;
    } catch (err) {
      if (i >= 50) throw err;
      await Bun.sleep(20);
    }
  }
}
