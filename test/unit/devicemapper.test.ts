/**
 * The devicemapper driver without a device-mapper kernel: the dm ioctl structures are checked
 * byte for byte, and the driver runs against a fake kernel (behind the Sys seam) that decodes
 * every request as the kernel would and keeps devices, tables and the thin pool's devices, so the
 * sequence of create/load/resume/message/remove calls is verified by its effects. The same driver
 * runs on a real pool in test/conformance/storage.test.ts where /dev/mapper/control exists.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { SyscallError } from "../../src/core/errors.ts";
import { createFakeSys } from "../../src/core/sys/fake-sys.ts";
import {
  decodeDmHeader,
  decodeDmMessage,
  decodeDmTargets,
  DM_IOCTL_SIZE,
  DM_READONLY_FLAG,
  DM_SUSPEND_FLAG,
  DmCmd,
  dmRequest,
  encodeDmRequest,
} from "../../src/plugins/storage-devicemapper/dm-ioctl.ts";
import { createDevicemapperDriver, DevicemapperOptions, devicemapperUnsupportedReason } from "../../src/plugins/storage-devicemapper/index.ts";
import { attachLoop, LOOP_CONFIG_SIZE } from "../../src/plugins/storage-devicemapper/loop.ts";
import * as v from "valibot";
import { cleanup, tempDir } from "../helpers/daemon.ts";

const ENXIO = 6;
const EEXIST = 17;
const EBUSY = 16;
const ENODATA = 61;

interface FakeDevice {
  dev: number;
  live?: { targets: ReturnType<typeof decodeDmTargets>; readonly: boolean };
  inactive?: { targets: ReturnType<typeof decodeDmTargets>; readonly: boolean };
  suspended: boolean;
}

/** A device-mapper kernel in miniature: devices with live/inactive tables and one thin pool's devices. */
class FakeDmKernel {
  devices = new Map<string, FakeDevice>();
  thins = new Map<number, number | null>(); // id → origin
  messages: string[] = [];
  log: string[] = [];
  targets = ["thin-pool", "thin", "linear"];
  failNext = new Map<number, number>();
  private minor = 0;

  ioctl(request: number, buf: Uint8Array): number {
    const cmd = request & 0xff;
    expect(request).toBe(dmRequest(cmd));
    const h = decodeDmHeader(buf);
    expect(h.version[0]).toBe(4);
    expect(h.dataSize).toBe(buf.length);
    expect(h.dataStart).toBe(DM_IOCTL_SIZE);
    const name = Object.keys(DmCmd).find((k) => DmCmd[k as keyof typeof DmCmd] === cmd)!;
    this.log.push(`${name} ${h.name}`);
    const fail = this.failNext.get(cmd);
    if (fail !== undefined) {
      this.failNext.delete(cmd);
      throw new SyscallError("ioctl", fail, h.name);
    }
    const v = new DataView(buf.buffer);
    const dev = this.devices.get(h.name);
    const need = () => {
      if (!dev) throw new SyscallError("ioctl", ENXIO, h.name);
      return dev;
    };
    switch (cmd) {
      case DmCmd.LIST_VERSIONS: {
        let off = DM_IOCTL_SIZE;
        this.targets.forEach((t, i) => {
          const len = (16 + t.length + 1 + 7) & ~7;
          v.setUint32(off, i === this.targets.length - 1 ? 0 : len, true);
          v.setUint32(off + 4, 1, true);
          buf.set(new TextEncoder().encode(t), off + 16);
          off += len;
        });
        return 0;
      }
      case DmCmd.DEV_CREATE: {
        if (dev) throw new SyscallError("ioctl", EBUSY, h.name);
        const minor = this.minor++;
        this.devices.set(h.name, { dev: (253 << 8) | minor, suspended: true });
        v.setBigUint64(40, BigInt((253 << 8) | minor), true);
        return 0;
      }
      case DmCmd.TABLE_LOAD: {
        const d = need();
        const targets = decodeDmTargets(buf, "request");
        for (const t of targets) {
          if (t.type === "thin") {
            const [pool, id] = t.params.split(" ");
            if (!this.devices.get(pool!.split("/").pop()!)?.live) throw new SyscallError("ioctl", ENXIO, pool);
            if (!this.thins.has(Number(id))) throw new SyscallError("ioctl", ENODATA, h.name);
          }
        }
        d.inactive = { targets, readonly: (h.flags & DM_READONLY_FLAG) !== 0 };
        return 0;
      }
      case DmCmd.DEV_SUSPEND: {
        const d = need();
        if (h.flags & DM_SUSPEND_FLAG) d.suspended = true;
        else {
          if (d.inactive) [d.live, d.inactive] = [d.inactive, undefined];
          d.suspended = false;
        }
        return 0;
      }
      case DmCmd.DEV_STATUS:
        v.setBigUint64(40, BigInt(need().dev), true);
        return 0;
      case DmCmd.DEV_REMOVE:
        need();
        this.devices.delete(h.name);
        return 0;
      case DmCmd.TABLE_STATUS: {
        const d = need();
        const t = d.live!.targets[0]!;
        const params = t.type === "thin-pool" ? `1 10/524288 ${this.thins.size * 3}/1638400 - rw discard_passdown` : `2048 4095`;
        const out = encodeDmRequest({ targets: [{ ...t, params }] });
        buf.set(out.subarray(DM_IOCTL_SIZE, DM_IOCTL_SIZE + 40 + params.length + 1), DM_IOCTL_SIZE);
        v.setUint32(DM_IOCTL_SIZE + 20, 0, true);
        v.setUint32(20, 1, true);
        return 0;
      }
      case DmCmd.TARGET_MSG: {
        const d = need();
        expect(d.live?.targets[0]?.type).toBe("thin-pool");
        const { text } = decodeDmMessage(buf);
        this.messages.push(text);
        const [op, a, b] = text.split(" ");
        const id = Number(a);
        if (op === "create_thin" || op === "create_snap") {
          if (this.thins.has(id)) throw new SyscallError("ioctl", EEXIST, h.name);
          if (op === "create_snap") {
            if (!this.thins.has(Number(b))) throw new SyscallError("ioctl", ENODATA, h.name);
            const originDev = [...this.devices.entries()].find(([, x]) => x.live?.targets[0]?.params.endsWith(` ${b}`));
            if (originDev && !originDev[1].suspended) throw new SyscallError("ioctl", EBUSY, "origin active and not suspended");
          }
          this.thins.set(id, op === "create_snap" ? Number(b) : null);
        } else if (op === "delete") {
          if (!this.thins.delete(id)) throw new SyscallError("ioctl", ENODATA, h.name);
        }
        return 0;
      }
    }
    throw new Error(`fake kernel: unexpected command ${cmd}`);
  }
}

/** A fake Sys whose ioctls on /dev/mapper/control go to `kernel`. */
function sysFor(kernel: FakeDmKernel) {
  const sys = createFakeSys();
  sys.ioctl = (fd, request, arg, path) => {
    sys.calls.push({ name: "ioctl", args: [fd, request, arg, path] });
    return ((request >>> 8) & 0xff) === 0xfd ? kernel.ioctl(request, arg) : 0;
  };
  return sys;
}

describe("device-mapper ioctl structures", () => {
  test("request numbers are _IOWR(0xfd, nr, struct dm_ioctl) as libdevmapper issues them", () => {
    expect(dmRequest(DmCmd.VERSION)).toBe(0xc138fd00);
    expect(dmRequest(DmCmd.DEV_CREATE)).toBe(0xc138fd03);
    expect(dmRequest(DmCmd.TABLE_LOAD)).toBe(0xc138fd09);
    expect(dmRequest(DmCmd.TARGET_MSG)).toBe(0xc138fd0e);
  });

  test("header fields, target specs and messages sit at the kernel's offsets", () => {
    const b = encodeDmRequest({ name: "pool", flags: DM_READONLY_FLAG, targets: [
      { start: 0n, length: 2048n, type: "thin", params: "/dev/mapper/pool 7" },
      { start: 2048n, length: 8n, type: "linear", params: "/dev/loop0 0" },
    ] }, 1024);
    const dv = new DataView(b.buffer);
    expect([dv.getUint32(0, true), dv.getUint32(12, true), dv.getUint32(16, true), dv.getUint32(20, true), dv.getUint32(28, true)]).toEqual([4, 1024, 312, 2, 1]);
    expect(new TextDecoder().decode(b.subarray(48, 52))).toBe("pool");
    expect(dv.getBigUint64(312 + 8, true)).toBe(2048n);
    expect(new TextDecoder().decode(b.subarray(312 + 24, 312 + 28))).toBe("thin");
    expect(dv.getUint32(312 + 20, true) % 8).toBe(0); // next spec is 8-byte aligned
    expect(decodeDmTargets(b, "request").map((t) => `${t.start} ${t.length} ${t.type} ${t.params}`)).toEqual(["0 2048 thin /dev/mapper/pool 7", "2048 8 linear /dev/loop0 0"]);
    const m = encodeDmRequest({ name: "pool", message: { sector: 0n, text: "create_snap 2 1" } });
    expect(decodeDmMessage(m)).toEqual({ sector: 0n, text: "create_snap 2 1" });
    expect(() => encodeDmRequest({ name: "x".repeat(128) })).toThrow("longer than 127 bytes");
  });

  test("a loop device is configured through LOOP_CONFIGURE with the backing fd and autoclear", () => {
    const sys = createFakeSys();
    const loop = attachLoop(sys, "/var/lib/bunker/data");
    expect(loop.path).toBe("/dev/loop0");
    const configure = sys.calls.find((c) => c.name === "ioctl" && c.args[1] === 0x4c0a)!;
    const cfg = configure.args[2] as Uint8Array;
    expect(cfg.length).toBe(LOOP_CONFIG_SIZE);
    const backing = sys.calls.find((c) => c.name === "openat2" && c.args[1] === "/var/lib/bunker/data")!;
    const dv = new DataView(cfg.buffer);
    expect(dv.getUint32(0, true)).toBe(101); // the backing file's fd (fake fds count from 100)
    expect(dv.getUint32(60, true)).toBe(4); // LO_FLAGS_AUTOCLEAR
    expect(backing).toBeDefined();
  });
});

describe("devicemapper driver on a fake kernel", () => {
  const root = tempDir("bunker-dm-");
  const devDir = join(root, "mapper");
  require("node:fs").mkdirSync(devDir);
  afterAll(() => cleanup(root));
  const kernel = new FakeDmKernel();
  const sys = sysFor(kernel);
  const mkfsCalls: string[] = [];
  const loops: string[] = [];
  const opts = v.parse(DevicemapperOptions, {});
  const make = () =>
    createDevicemapperDriver(root, opts, {
      sys,
      devDir,
      mkfs: (dev, fs) => mkfsCalls.push(`${fs} ${dev}`),
      attachLoop: (_s, file) => {
        loops.push(file);
        return { path: `/dev/loop${loops.length + 6}`, close() {} };
      },
    });
  const driver = make();
  const thinDevices = () => [...kernel.devices.keys()].filter((n) => !n.endsWith("-pool")).map((n) => n.split("-").pop()).sort();

  test("nothing is created until first use", () => {
    expect(kernel.devices.size).toBe(0);
    expect(driver.status().find(([k]) => k === "Pool Status")?.[1]).toBe("created on first use");
  });

  test("first prepare makes the loop pool and a formatted base, then snapshots it", async () => {
    const mounts = await driver.prepare("l1");
    expect(loops).toEqual([join(root, "devicemapper", "data"), join(root, "devicemapper", "metadata")]);
    const pool = [...kernel.devices.entries()].find(([n]) => n.endsWith("-pool"))!;
    expect(pool[1].live!.targets[0]!.type).toBe("thin-pool");
    expect(pool[1].live!.targets[0]!.params).toMatch(/^\/dev\/loop8 \/dev\/loop7 128 \d+ 1 skip_block_zeroing$/);
    expect(mkfsCalls.length).toBe(1);
    expect(mkfsCalls[0]).toMatch(/^ext4 .*-0$/);
    expect(kernel.messages).toContain("create_thin 0");
    expect(kernel.messages).toContain("create_snap 1 0");
    expect(thinDevices()).toEqual(["1"]); // the base was deactivated after mkfs
    expect(mounts).toEqual([{ type: "ext4", source: join(devDir, [...kernel.devices.keys()].find((n) => n.endsWith("-1"))!), options: ["rw"] }]);
    expect(sys.calls.some((c) => c.name === "mknodat" && String(c.args[1]).endsWith("-1"))).toBe(true);
  });

  test("commit deactivates; a view is a read-only snapshot of it; removal order is enforced", async () => {
    await driver.commit("c1", "l1");
    expect(thinDevices()).toEqual([]);
    const mounts = await driver.view("v", "c1");
    expect(kernel.messages.at(-1)).toBe("create_snap 2 1");
    const dev = [...kernel.devices.entries()].find(([n]) => n.endsWith("-2"))![1];
    expect(dev.live!.readonly).toBe(true);
    expect(mounts[0]!.options).toEqual(["ro", "noload"]);
    await expect(driver.remove("c1")).rejects.toThrow("depends on it");
    await driver.remove("v");
    expect(kernel.messages.at(-1)).toBe("delete 2");
    expect(thinDevices()).toEqual([]);
    expect(kernel.thins.has(2)).toBe(false);
  });

  test("an origin left active (say, by a crash) is suspended around create_snap and resumed", async () => {
    const prefix = [...kernel.devices.keys()].find((n) => n.endsWith("-pool"))!.replace(/-pool$/, "");
    const pool = join(devDir, `${prefix}-pool`);
    kernel.devices.set(`${prefix}-1`, { dev: 999, suspended: false, live: { targets: [{ start: 0n, length: 8n, type: "thin", params: `${pool} 1` }], readonly: true } });
    const from = kernel.log.length;
    await driver.prepare("l2", "c1");
    expect(kernel.log.slice(from).filter((l) => l.endsWith(`${prefix}-1`))).toEqual([
      `DEV_STATUS ${prefix}-1`,
      `DEV_SUSPEND ${prefix}-1`,
      `DEV_SUSPEND ${prefix}-1`,
    ]);
    expect(kernel.devices.get(`${prefix}-1`)!.suspended).toBe(false);
    kernel.devices.delete(`${prefix}-1`);
    expect(thinDevices()).toEqual(["3"]);
  });

  test("usage activates a committed device for its status and deactivates it again", async () => {
    expect((await driver.usage("c1")).size).toBe(2048 * 512);
    expect(thinDevices()).toEqual(["3"]);
  });

  test("a failed table load leaves no device, no thin id and no metadata", async () => {
    kernel.failNext.set(DmCmd.TABLE_LOAD, 22);
    await expect(driver.prepare("broken", "c1")).rejects.toThrow("EINVAL");
    expect(thinDevices()).toEqual(["3"]);
    expect([...kernel.thins.keys()].sort()).toEqual([0, 1, 3]);
    expect(() => driver.stat("broken")).toThrow("not found");
  });

  test("status reports the pool's data space; a restarted driver reuses pool and base", async () => {
    const status = new Map(driver.status());
    expect(status.get("Backing Filesystem")).toBe("extfs");
    expect(status.get("Data Space Used")).toMatch(/kB|MB/);
    const again = make();
    expect(again.stat("c1").kind).toBe("committed");
    await again.prepare("l3", "c1");
    expect(loops.length).toBe(2);
    expect(mkfsCalls.length).toBe(1);
  });

  test("no thin-pool target or no control device: NotSupported with the reason", () => {
    const k = new FakeDmKernel();
    k.targets = ["linear"];
    expect(() => createDevicemapperDriver(tempDir(), opts, { sys: sysFor(k) })).toThrow("no thin-pool target");
    expect(devicemapperUnsupportedReason("/nonexistent/control")).toBe(
      "/nonexistent/control does not exist: the kernel has no device-mapper (CONFIG_BLK_DEV_DM) or dm_mod is not loaded",
    );
  });
});
