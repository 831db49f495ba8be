/**
 * The `devicemapper` storage driver: every snapshot is a thin device in a dm-thin pool, made with
 * the pool's `create_snap` message from its parent (or from an empty, formatted base device), so
 * a layer costs only the blocks it changes. Everything goes through the device-mapper ioctl
 * interface (dm-ioctl.ts) and loop ioctls (loop.ts); the one program it runs is `mkfs` for the
 * base device, once per pool.
 *
 * The pool is either an existing one (`thinpooldev`, as dockerd's dm.thinpooldev) or, by default,
 * built from two sparse files under the driver root on loop devices (`loopdatasize`,
 * `loopmetadatasize`), as dockerd's loop-lvm mode did. Active snapshots and views are activated
 * thin devices, mounted by the caller (views read-only); committed ones are deactivated and kept
 * in the pool. Kernels without device-mapper (no /dev/mapper/control) or without the thin-pool
 * target make the plugin NotSupported with that reason.
 */
import { ignored } from "../../core/log.ts";
import { existsSync, mkdirSync, openSync, closeSync, ftruncateSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { writeFileAtomic } from "../../core/atomic-file.ts";
import { EngineError, messageOf, NotSupportedError } from "../../core/errors.ts";
import { definePlugin } from "../../core/plugin/types.ts";
import type { Mount, StorageDriver, Usage } from "../../core/storage/driver.ts";
import { SnapshotMetadata, type SnapshotRecord } from "../../core/storage/snapshot-metadata.ts";
import { AT_FDCWD, S_IFBLK, type Sys } from "../../core/sys/sys.ts";
import { configFrom } from "../../core/validate.ts";
import { DeviceMapper, type DmTarget } from "./dm-ioctl.ts";
import { attachLoop, type LoopDevice } from "./loop.ts";

/** Driver options (daemon.json `"plugins": {"storage.v1.devicemapper": {...}}`). */
export const DevicemapperOptions = v.strictObject({
  /** An existing thin pool under /dev/mapper to use instead of loop files. */
  thinpooldev: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9._+-]+$/, "must be a device-mapper name"))),
  /** Size of each thin device (and so of every container's filesystem), bytes. */
  basesize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(64 * 1024 * 1024)), 10 * 1024 ** 3),
  loopdatasize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(256 * 1024 * 1024)), 100 * 1024 ** 3),
  loopmetadatasize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(16 * 1024 * 1024)), 2 * 1024 ** 3),
  /** Pool data block size in 512-byte sectors (64 KiB by default, as dockerd). */
  blocksize: v.optional(v.pipe(v.number(), v.integer(), v.minValue(128), v.maxValue(2097152)), 128),
  fs: v.optional(v.picklist(["ext4", "xfs"]), "ext4"),
});
export type DevicemapperOptions = v.InferOutput<typeof DevicemapperOptions>;

/** What the driver needs from the system; tests replace parts of it. */
export interface DevicemapperDeps {
  sys: Sys;
  dm?: DmApi;
  attachLoop?: (sys: Sys, file: string) => LoopDevice;
  /** Make a filesystem on `device` (default: run mkfs.<fs>). */
  mkfs?: (device: string, fs: string) => void;
  /** Where device nodes live (default /dev/mapper). */
  devDir?: string;
}

/** Why devicemapper cannot run here, or undefined when the kernel interface exists. */
export function devicemapperUnsupportedReason(control = "/dev/mapper/control"): string | undefined {
  if (!existsSync(control)) return `${control} does not exist: the kernel has no device-mapper (CONFIG_BLK_DEV_DM) or dm_mod is not loaded`;
  return undefined;
}

const BASE_ID = 0;
const SECTOR = 512;

function runMkfs(device: string, fs: string): void {
  const args = fs === "xfs" ? ["mkfs.xfs", "-q", "-f", device] : ["mkfs.ext4", "-q", "-F", "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0", device];
  const r = Bun.spawnSync(args, { stderr: "pipe" });
  if (r.exitCode !== 0) throw new EngineError("internal", `${args[0]} ${device}: ${new TextDecoder().decode(r.stderr).trim() || `exit ${r.exitCode}`}`);
}

function sparseFile(path: string, size: number): void {
  if (existsSync(path)) return;
  const fd = openSync(path, "w", 0o600);
  try {
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

const human = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}GB` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}MB` : `${(n / 1e3).toFixed(2)}kB`);

/** The device-mapper calls the driver makes (a fake in the unit tests). */
type DmApi = Pick<DeviceMapper, "create" | "load" | "resume" | "suspend" | "remove" | "info" | "status" | "message" | "targetVersions" | "close">;

/** Create, load and resume a device (its /dev/mapper node made: no udev on many small systems); removed again if any step fails. */
function activateDm(dm: DmApi, sys: DevicemapperDeps["sys"], devDir: string, name: string, targets: DmTarget[], readonly: boolean): void {
  const dev = dm.create(name);
  try {
    dm.load(name, targets, readonly);
    dm.resume(name);
    const path = join(devDir, name);
    if (!existsSync(path)) sys.mknodat(AT_FDCWD, path, S_IFBLK | 0o600, dev.major, dev.minor);
  } catch (err) {
    try {
      dm.remove(name);
    } catch (err) {
      ignored("report the first failure", err);
    }
    throw err;
  }
}

/** The loop-file thin pool made on first start (and re-attached after a reboot). */
function createLoopPool(
  p: { sys: DevicemapperDeps["sys"]; opts: DevicemapperOptions; deps: DevicemapperDeps; poolName: string; dataFile: string; metaFile: string },
  activateDevice: (name: string, targets: DmTarget[], readonly: boolean) => void,
): void {
  const { sys, opts, deps, poolName, dataFile, metaFile } = p;
  sparseFile(dataFile, opts.loopdatasize);
  sparseFile(metaFile, opts.loopmetadatasize);
  const attach = deps.attachLoop ?? attachLoop;
  const data = attach(sys, dataFile);
  const metadata = attach(sys, metaFile);
  try {
    const length = BigInt(Math.floor(opts.loopdatasize / SECTOR));
    const lowWater = Math.max(1, Math.floor(opts.loopdatasize / (opts.blocksize * SECTOR) / 100));
    activateDevice(poolName, [{ start: 0n, length, type: "thin-pool", params: `${metadata.path} ${data.path} ${opts.blocksize} ${lowWater} 1 skip_block_zeroing` }], false);
  } finally {
    data.close();
    metadata.close();
  }
}

/** `docker info`'s Storage Driver lines: the pool, its block size, the base, the space used. */
function poolStatus(p: { dm: DmApi; opts: DevicemapperOptions; poolName: string; dataFile: string; metaFile: string }, base: { fs: string; basesize: number } | undefined): [string, string][] {
  const { dm, opts, poolName, dataFile, metaFile } = p;
  const lines: [string, string][] = [
    ["Pool Name", poolName],
    ["Pool Blocksize", human(opts.blocksize * SECTOR)],
    ["Base Device Size", human(base?.basesize ?? opts.basesize)],
    ["Backing Filesystem", (base?.fs ?? opts.fs) === "ext4" ? "extfs" : (base?.fs ?? opts.fs)],
  ];
  if (!base) return [...lines, ["Pool Status", "created on first use"]];
  if (!opts.thinpooldev) lines.push(["Data file", dataFile], ["Metadata file", metaFile]);
  try {
    // thin-pool status: <transaction> <used meta>/<total meta> <used data>/<total data> …
    const f = dm.status(poolName)[0]?.params.split(" ") ?? [];
    const [mu, mt] = (f[1] ?? "0/0").split("/").map(Number);
    const [du, dt] = (f[2] ?? "0/0").split("/").map(Number);
    const blk = opts.blocksize * SECTOR;
    lines.push(["Data Space Used", human(du! * blk)], ["Data Space Total", human(dt! * blk)]);
    lines.push(["Metadata Space Used", human(mu! * 4096)], ["Metadata Space Total", human(mt! * 4096)]);
  } catch (err) {
    lines.push(["Pool Status", messageOf(err)]);
  }
  return lines;
}

/** create_snap needs its origin quiet: suspend it around the message when it is active. */
function snapshotThin(dm: DmApi, poolName: string, nameOf: (id: number) => string, id: number, origin: number): void {
  // An id not in the metadata can only be an orphan of an interrupted create: clear it first.
  try {
    dm.message(poolName, `delete ${id}`);
  } catch (err) {
    ignored("the usual case: there is none", err);
  }
  const active = origin !== BASE_ID && !!dm.info(nameOf(origin));
  if (active) dm.suspend(nameOf(origin));
  try {
    dm.message(poolName, `create_snap ${id} ${origin}`);
  } finally {
    if (active) dm.resume(nameOf(origin));
  }
}

/** NotSupported unless the kernel's device-mapper has the thin-pool and thin targets. */
function requireThinTargets(dm: DmApi): void {
  const versions = dm.targetVersions();
  for (const t of ["thin-pool", "thin"]) {
    if (!versions.has(t)) throw new NotSupportedError(`the kernel's device-mapper has no ${t} target (modprobe dm_thin_pool)`);
  }
}

/** Create the driver rooted at `root`; the pool and base device are made on first use. */
export function createDevicemapperDriver(root: string, opts: DevicemapperOptions, deps: DevicemapperDeps): StorageDriver {
  const { sys } = deps;
  const dm = deps.dm ?? new DeviceMapper(sys);
  const devDir = deps.devDir ?? "/dev/mapper";
  const mkfs = deps.mkfs ?? runMkfs;
  mkdirSync(join(root, "devicemapper"), { recursive: true, mode: 0o700 });
  requireThinTargets(dm);
  const st = statSync(root);
  const prefix = `bunker-${st.dev}-${st.ino}`;
  const poolName = opts.thinpooldev ?? `${prefix}-pool`;
  const poolPath = join(devDir, poolName);
  const dataFile = join(root, "devicemapper", "data");
  const metaFile = join(root, "devicemapper", "metadata");
  const meta = new SnapshotMetadata(root);
  const nameOf = (id: number) => `${prefix}-${id}`;
  const pathOf = (id: number) => join(devDir, nameOf(id));

  const activateDevice = (name: string, targets: DmTarget[], readonly: boolean) => activateDm(dm, sys, devDir, name, targets, readonly);
  const thinTable = (id: number): DmTarget[] => [{ start: 0n, length: BigInt(Math.floor((base?.basesize ?? opts.basesize) / SECTOR)), type: "thin", params: `${poolPath} ${id}` }];
  const activate = (id: number, readonly: boolean) => {
    if (!dm.info(nameOf(id))) activateDevice(nameOf(id), thinTable(id), readonly);
  };
  const deactivate = (id: number) => {
    if (dm.info(nameOf(id))) dm.remove(nameOf(id));
  };

  let base: { fs: string; basesize: number } | undefined;
  /**
   * Pool and base device, made on first use rather than at daemon start, so that a daemon using
   * another driver never creates loop files or pools.
   */
  const ready = (): { fs: string; basesize: number } => {
    if (base) return base;
    // The pool: an existing one, or loop files made on first start (and re-attached after a reboot).
    if (!dm.info(poolName)) {
      if (opts.thinpooldev) throw new EngineError("failed-precondition", `thin pool ${opts.thinpooldev} does not exist`);
      createLoopPool({ sys, opts, deps, poolName, dataFile, metaFile }, activateDevice);
    }
    // The base: an empty formatted thin device every base layer is a snapshot of.
    const baseMarker = join(root, "devicemapper", "base.json");
    if (!existsSync(baseMarker)) {
      try {
        dm.message(poolName, `delete ${BASE_ID}`); // a half-made base from an interrupted start
      } catch (err) {
        ignored("none", err);
      }
      dm.message(poolName, `create_thin ${BASE_ID}`);
      activate(BASE_ID, false);
      try {
        mkfs(pathOf(BASE_ID), opts.fs);
      } finally {
        deactivate(BASE_ID);
      }
      writeFileAtomic(baseMarker, JSON.stringify({ fs: opts.fs, basesize: opts.basesize }), 0o600);
    }
    base = JSON.parse(readFileSync(baseMarker, "utf8")) as { fs: string; basesize: number };
    return base;
  };

  const mountsOf = (s: SnapshotRecord): Mount[] => {
    const { fs } = ready();
    return [{ type: fs, source: pathOf(s.id), options: s.kind === "view" ? ["ro", fs === "ext4" ? "noload" : "norecovery"] : ["rw"] }];
  };
  const snapshot = (id: number, origin: number) => snapshotThin(dm, poolName, nameOf, id, origin);
  const create = async (key: string, kind: "active" | "view", parent?: string) => {
    ready();
    const rec = meta.create(key, kind, parent);
    snapshot(rec.id, parent ? meta.get(parent).id : BASE_ID);
    try {
      activate(rec.id, kind === "view");
      meta.add(rec);
    } catch (err) {
      dm.message(poolName, `delete ${rec.id}`);
      throw err;
    }
    return mountsOf(rec);
  };

  return {
    name: "devicemapper",
    status: () => poolStatus({ dm, opts, poolName, dataFile, metaFile }, base),
    prepare: (key, parent) => create(key, "active", parent),
    view: (key, parent) => create(key, "view", parent),
    async mounts(key) {
      const rec = meta.mountable(key);
      activate(rec.id, rec.kind === "view");
      return mountsOf(rec);
    },
    async commit(name, key) {
      ready();
      const rec = meta.active(key);
      deactivate(rec.id);
      meta.commit(name, key);
    },
    async remove(key) {
      ready();
      const rec = meta.remove(key);
      deactivate(rec.id);
      dm.message(poolName, `delete ${rec.id}`);
    },
    stat: (key) => meta.info(key),
    list: () => meta.infos(),
    async usage(key): Promise<Usage> {
      ready();
      const rec = meta.get(key);
      const wasActive = !!dm.info(nameOf(rec.id));
      if (!wasActive) activate(rec.id, true);
      try {
        // thin status: <mapped sectors> <highest mapped sector> (shared blocks count too).
        const mapped = Number(dm.status(nameOf(rec.id))[0]?.params.split(" ")[0] ?? 0);
        return { size: mapped * SECTOR, inodes: 0 };
      } finally {
        if (!wasActive) deactivate(rec.id);
      }
    },
    close: () => dm.close(),
  };
}

/** Plugin registration: NotSupported where the kernel has no device-mapper. */
export const devicemapperPlugin = definePlugin({
  type: "storage.v1",
  id: "devicemapper",
  config: configFrom(DevicemapperOptions, v.parse(DevicemapperOptions, {})),
  async init(ctx) {
    const reason = devicemapperUnsupportedReason();
    if (reason) throw new NotSupportedError(reason);
    return createDevicemapperDriver(ctx.root, ctx.config, { sys: ctx.sys });
  },
});
