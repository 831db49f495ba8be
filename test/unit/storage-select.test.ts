import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { StorageDriver } from "../../src/core/storage/driver.ts";
import { backingFsName, filesystemType } from "../../src/core/storage/fs-info.ts";
import { driverHasData, selectDriver } from "../../src/core/storage/select.ts";
import { cleanup, tempDir } from "../helpers/daemon.ts";

const fake = (name: string) => ({ name }) as StorageDriver;
const avail = new Map([["vfs", fake("vfs")], ["overlay", fake("overlay")]]);

describe("storage driver selection", () => {
  test("configured, else the one with data, else priority", () => {
    expect(selectDriver(avail, { configured: "vfs", hasData: () => false }).name).toBe("vfs");
    expect(selectDriver(avail, { hasData: (id) => id === "vfs" }).name).toBe("vfs");
    expect(selectDriver(avail, { hasData: () => false }).name).toBe("overlay");
  });
  test("refusals name the reason", () => {
    expect(() => selectDriver(avail, { configured: "devicemapper", hasData: () => false, unavailable: new Map([["devicemapper", "no /dev/mapper/control"]]) })).toThrow(
      "storage driver devicemapper is not available: no /dev/mapper/control",
    );
    expect(() => selectDriver(avail, { hasData: () => true })).toThrow("several storage drivers hold data (vfs, overlay)");
    expect(() => selectDriver(new Map(), { hasData: () => false })).toThrow("no storage driver is available");
  });
  test("data detection and filesystem naming", () => {
    const d = tempDir();
    expect(driverHasData(d)).toBe(false);
    writeFileSync(join(d, "metadata.json"), JSON.stringify({ nextId: 2, snapshots: {} }));
    expect(driverHasData(d)).toBe(false);
    writeFileSync(join(d, "metadata.json"), JSON.stringify({ nextId: 2, snapshots: { a: {} } }));
    expect(driverHasData(d)).toBe(true);
    cleanup(d);
    const mi = "22 1 254:0 / / rw - ext4 /dev/vda rw\n30 22 0:26 / /tmp/x rw - tmpfs tmpfs rw\n";
    expect(filesystemType("/tmp/x/y", mi)).toBe("tmpfs");
    expect(filesystemType("/tmp/xy", mi)).toBe("ext4");
    expect(backingFsName("ext4")).toBe("extfs");
    mkdirSync(join(d), { recursive: true });
    cleanup(d);
  });
});
