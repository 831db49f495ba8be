/**
 * The built-in plugins, listed explicitly (no registration by import side effect). Only
 * `main.ts` and this file name concrete plugins.
 */
import type { AnyRegistration } from "../core/plugin/types.ts";
import { bridgeNetworkPlugin } from "./network-bridge/index.ts";
import { macvlanNetworkPlugin } from "./network-macvlan/index.ts";
import { linuxRuntimePlugin } from "./runtime-linux/index.ts";
import { btrfsPlugin } from "./storage-btrfs/index.ts";
import { devicemapperPlugin } from "./storage-devicemapper/index.ts";
import { overlayPlugin } from "./storage-overlay/index.ts";
import { vfsPlugin } from "./storage-vfs/index.ts";

/** Built-in registrations, in registration order (init order also respects `requires`). */
export const builtinPlugins: readonly AnyRegistration[] = [overlayPlugin, btrfsPlugin, devicemapperPlugin, vfsPlugin, linuxRuntimePlugin, bridgeNetworkPlugin, macvlanNetworkPlugin];
