/**
 * The storage driver interface, modelled on containerd's snapshotter: committed snapshots are
 * image layers (named by chain ID); a container's writable layer is `prepare(key, parent)`.
 * Drivers *return* mounts and never mount as a side effect (see `mount.ts`). Optional abilities
 * are small capability interfaces with guards, not a growing base interface.
 */
import type { WhiteoutMode } from "../layer/apply.ts";

/** A mount to perform, as `mount(2)` wants it. */
export interface Mount {
  /** `bind` or a filesystem type such as `overlay`. */
  type: string;
  source: string;
  /** Comma-separable options; flags (`ro`, `rbind`) and data (`lowerdir=…`) alike. */
  options: string[];
}

export type SnapshotKind = "active" | "view" | "committed";

/** What a driver knows of a snapshot. */
export interface SnapshotInfo {
  key: string;
  parent?: string;
  kind: SnapshotKind;
  created: string;
}

/** Disk usage of a snapshot's own data (not its parents'). */
export interface Usage {
  size: number;
  inodes: number;
}

/** A storage driver. Keys are caller-chosen; committed names are chain IDs for layers. */
export interface StorageDriver {
  readonly name: string;
  /** Status lines for `info` (`[["Backing Filesystem", "extfs"], …]`). */
  status(): [string, string][];
  /** A writable snapshot on top of committed `parent`. */
  prepare(key: string, parent?: string): Promise<Mount[]>;
  /** A read-only snapshot of committed `parent`. */
  view(key: string, parent?: string): Promise<Mount[]>;
  /** Mounts of an active or view snapshot. */
  mounts(key: string): Promise<Mount[]>;
  /** Turn active `key` into committed `name`. */
  commit(name: string, key: string): Promise<void>;
  /** Remove a snapshot; refused (failed-precondition) while it has children. */
  remove(key: string): Promise<void>;
  stat(key: string): SnapshotInfo;
  list(): SnapshotInfo[];
  usage(key: string): Promise<Usage>;
  close?(): void | Promise<void>;
}

/** A driver that can take a layer straight into an active snapshot's own directory. */
export interface DirectApply {
  /** Directory to apply a layer into, and the whiteout form it needs. */
  applyTarget(key: string): { path: string; whiteouts: WhiteoutMode };
}

/** Guard for DirectApply. */
export function hasDirectApply(d: StorageDriver): d is StorageDriver & DirectApply {
  return typeof (d as Partial<DirectApply>).applyTarget === "function";
}

/** A driver whose active snapshots keep their own changes in a directory of their own (overlay's upper dir). */
export interface NativeDiff {
  /** The directory holding only `key`'s changes, in overlayfs form (whiteouts as 0/0 devices). */
  upperDir(key: string): string;
}

/** Guard for NativeDiff. */
export function hasNativeDiff(d: StorageDriver): d is StorageDriver & NativeDiff {
  return typeof (d as Partial<NativeDiff>).upperDir === "function";
}

/** A driver that takes layer tars itself (an out-of-process GraphDriver plugin's ApplyDiff). */
export interface TarApply {
  /** Apply an uncompressed layer tar into active snapshot `key`; returns the bytes it took. */
  applyTar(key: string, tar: AsyncIterable<Uint8Array>): Promise<number>;
}

/** Guard for TarApply. */
export function hasTarApply(d: StorageDriver): d is StorageDriver & TarApply {
  return typeof (d as Partial<TarApply>).applyTar === "function";
}

/** A driver that produces layer tars itself (a GraphDriver plugin's Diff). */
export interface TarDiff {
  /** The changes of `key` against its parent as an uncompressed layer tar. */
  diffTar(key: string): AsyncIterable<Uint8Array>;
}

/** Guard for TarDiff. */
export function hasTarDiff(d: StorageDriver): d is StorageDriver & TarDiff {
  return typeof (d as Partial<TarDiff>).diffTar === "function";
}
