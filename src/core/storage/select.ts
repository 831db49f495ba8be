/**
 * Storage driver selection, as moby's graphdriver.New does it: the configured driver if any
 * (it must have loaded); otherwise the one driver that already holds data (several holding data
 * is an error the operator must resolve); otherwise the first available in priority order.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { EngineError } from "../errors.ts";
import type { StorageDriver } from "./driver.ts";

/** Preference when nothing is configured and no driver holds data. */
export const DRIVER_PRIORITY = ["overlay", "btrfs", "devicemapper", "vfs"];

/** Docker's names for drivers Bunker has under another name (overlay2 is our overlay). */
const ALIASES: Record<string, string> = { overlay2: "overlay" };

/** The driver id a configured name means. */
export function canonicalDriverName(name: string): string {
  return ALIASES[name] ?? name;
}

/** True when a built-in driver's root holds snapshots. */
export function driverHasData(root: string): boolean {
  const file = join(root, "metadata.json");
  if (!existsSync(file)) return false;
  try {
    return Object.keys(JSON.parse(readFileSync(file, "utf8")).snapshots ?? {}).length > 0;
  } catch {
    return true; // unreadable metadata is still somebody's data
  }
}

/** Choose the driver; throws failed-precondition with the reason when none can be chosen. */
export function selectDriver(available: ReadonlyMap<string, StorageDriver>, opts: { configured?: string; hasData: (id: string) => boolean; priority?: string[]; unavailable?: Map<string, string> }): StorageDriver {
  if (opts.configured) {
    const d = available.get(opts.configured);
    if (d) return d;
    const why = opts.unavailable?.get(opts.configured);
    throw new EngineError("failed-precondition", `storage driver ${opts.configured} is not available${why ? `: ${why}` : ""}`);
  }
  const withData = [...available.keys()].filter((id) => opts.hasData(id));
  if (withData.length > 1) {
    throw new EngineError("failed-precondition", `several storage drivers hold data (${withData.join(", ")}): choose one with --storage-driver (or "storage-driver" in daemon.json)`);
  }
  if (withData.length === 1) return available.get(withData[0]!)!;
  const order = [...(opts.priority ?? DRIVER_PRIORITY), ...available.keys()];
  for (const id of order) {
    const d = available.get(id);
    if (d) return d;
  }
  throw new EngineError("failed-precondition", "no storage driver is available");
}
