/**
 * scripts/check-layers.ts on a small tree with one breach of each rule: every breach is found
 * with its file and line, and the measures count them.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { check, MAX_FILE_LINES, MAX_FUNCTION_LINES } from "../../scripts/check-layers.ts";
import { tempDir } from "../helpers/daemon.ts";

const root = tempDir("bunker-layers-");
afterAll(() => rmSync(root, { recursive: true, force: true }));
const put = (path: string, text: string) => {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
};

test("each rule's breach is reported at its file and line, and the measures count them", () => {
  put("core/errors.ts", "export const e = 1;\n");
  put("core/events/bus.ts", 'import { x } from "../container/list.ts";\nexport const b = x;\n'); // base → services
  put("core/container/list.ts", 'import type { D } from "../../plugins/storage-vfs/index.ts";\nexport const x = 1;\nexport type T = D;\n'); // core → plugin
  put("core/api/routes/c.ts", 'import { linuxSys } from "../../sys/sys.ts";\nimport { s } from "../../container/container-store.ts";\nexport const r = [linuxSys, s];\n'); // API → Sys, API → store
  put("core/sys/sys.ts", 'import { dlopen } from "bun:ffi";\nexport const linuxSys = dlopen;\n');
  put("core/container/container-store.ts", 'import { dlopen } from "bun:ffi";\nexport const s = dlopen;\n'); // bun:ffi outside core/sys
  put("plugins/storage-vfs/index.ts", 'import { n } from "../network-bridge/index.ts";\nexport type D = typeof n;\n'); // plugin → plugin
  put("plugins/network-bridge/index.ts", "export const n = 1;\n");
  put("cli/run.ts", 'const m = await import("../plugins/network-bridge/index.ts");\nexport const c = m;\n'); // names a plugin
  put("core/container/long.ts", `export function long(): number {\n${"  void 0;\n".repeat(MAX_FUNCTION_LINES)}  return 1;\n}\n${"// filler\n".repeat(MAX_FILE_LINES)}`);
  const { breaches, measures } = check(root);
  const at = (file: string) => breaches.filter((b) => b.file === file).map((b) => `${b.line}: ${b.rule}`);
  expect(at("core/events/bus.ts")).toEqual(['1: imports core/container/list.ts from the higher layer "services" (this file is in "base")']);
  expect(at("core/container/list.ts")).toEqual(["1: core imports a plugin (plugins/storage-vfs/index.ts)"]);
  expect(at("core/api/routes/c.ts")).toEqual(["1: the API imports Sys (core/sys/sys.ts)", "2: the API imports core/container/container-store.ts (it may import services, their types and the edge parsers only)"]);
  expect(at("core/container/container-store.ts")).toEqual(["1: imports bun:ffi (only core/sys/ may)"]);
  expect(at("core/sys/sys.ts")).toEqual([]);
  expect(at("plugins/storage-vfs/index.ts")).toEqual(["1: plugin storage-vfs imports plugin network-bridge (plugins/network-bridge/index.ts)"]);
  expect(at("cli/run.ts")).toEqual(["1: names a plugin (plugins/network-bridge/index.ts); only main.ts and plugins/index.ts may"]);
  expect(at("core/container/long.ts")).toEqual([`1: ${MAX_FUNCTION_LINES + MAX_FILE_LINES + 3} lines (limit ${MAX_FILE_LINES})`, `1: function long is ${MAX_FUNCTION_LINES + 3} lines (limit ${MAX_FUNCTION_LINES})`]);
  expect(measures).toMatchObject({ upwardImports: 1, filesOverLimit: 1, functionsOverLimit: 1 });
});

test("the project itself keeps every rule", () => {
  const { breaches, measures } = check();
  expect(breaches).toEqual([]);
  expect(measures.upwardImports).toBe(0);
});
