import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import * as v from "valibot";
import { NotSupportedError } from "../../src/core/errors.ts";
import { createLogger } from "../../src/core/log.ts";
import { createFakeSys } from "../../src/core/sys/fake-sys.ts";
import { orderPlugins } from "../../src/core/plugin/graph.ts";
import { findPluginModules, loadPluginModules } from "../../src/core/plugin/loader.ts";
import { PluginSet } from "../../src/core/plugin/plugin-set.ts";
import type { AnyRegistration } from "../../src/core/plugin/types.ts";
import { configFrom } from "../../src/core/validate.ts";
import { cleanup, REPO, tempDir } from "../helpers/daemon.ts";

const log = createLogger({ sink: () => {} });
const sink = (closed: string[], id: string) => ({ onEvent() {}, close: () => void closed.push(id) });

function set(regs: AnyRegistration[], extra: Partial<ConstructorParameters<typeof PluginSet>[0]> = {}) {
  const dir = tempDir();
  return { dir, plugins: new PluginSet({ registrations: regs.map((reg) => ({ reg, source: "builtin" })), dataRoot: dir, execRoot: join(dir, "run"), log, sys: createFakeSys(), ...extra }) };
}

describe("init order", () => {
  test("dependencies first, ties in registration order", () => {
    // Types other than events.v1 arrive with later subsystems; the graph is generic over them.
    const t = (s: string) => s as never;
    const nodes = [
      { type: t("runtime.v1"), id: "linux", requires: [t("storage.v1"), t("network.v1")] },
      { type: t("storage.v1"), id: "overlay" },
      { type: t("network.v1"), id: "bridge", requires: [t("storage.v1")] },
      { type: t("storage.v1"), id: "vfs" },
    ];
    expect(orderPlugins(nodes).map((n) => n.id)).toEqual(["overlay", "vfs", "bridge", "linux"]);
  });

  test("a cycle names every plugin on it", () => {
    const nodes = [
      { type: "events.v1" as const, id: "a", requires: ["events.v1" as const] },
      { type: "events.v1" as const, id: "b", requires: ["events.v1" as const] },
    ];
    expect(() => orderPlugins(nodes)).toThrow("plugin dependency cycle: events.v1.a -> events.v1.b -> events.v1.a");
  });
});

describe("plugin set", () => {
  test("skip vs fail, typed lookup, reverse close, own 0700 root", async () => {
    const closed: string[] = [];
    const { dir, plugins } = set([
      { type: "events.v1", id: "one", init: async (ctx) => ({ ...sink(closed, "one"), root: ctx.root }) },
      { type: "events.v1", id: "dm", init: async () => { throw new NotSupportedError("no device-mapper"); } },
      { type: "events.v1", id: "bad", init: async () => { throw new Error("boom"); } },
      { type: "events.v1", id: "two", init: async () => sink(closed, "two") },
    ]);
    await plugins.initAll();
    expect(plugins.statuses().map((s) => [s.id, s.status, s.reason])).toEqual([
      ["one", "ok", undefined],
      ["dm", "skipped", "no device-mapper"],
      ["bad", "failed", "boom"],
      ["two", "ok", undefined],
    ]);
    expect([...plugins.instances("events.v1").keys()]).toEqual(["one", "two"]);
    const { statSync } = await import("node:fs");
    expect(statSync(join(dir, "events.v1.one")).mode & 0o777).toBe(0o700);
    await plugins.closeAll();
    expect(closed).toEqual(["two", "one"]);
    cleanup(dir);
  });

  test("a required plugin that is skipped or fails stops start-up", async () => {
    const { plugins } = set([{ type: "events.v1", id: "dm", init: async () => { throw new NotSupportedError("no dm"); } }], { required: ["events.v1.dm"] });
    await expect(plugins.initAll()).rejects.toThrow("required plugin events.v1.dm did not load: no dm");
    const { plugins: p2 } = set([{ type: "events.v1", id: "core", required: true, init: async () => { throw new Error("disk"); } }]);
    await expect(p2.initAll()).rejects.toThrow("required plugin events.v1.core did not load: disk");
  });

  test("config sections: defaults, validation naming the key, unknown plugin, no-config plugin", () => {
    const reg: AnyRegistration = {
      type: "events.v1",
      id: "cfg",
      config: configFrom(v.strictObject({ file: v.optional(v.string()) }), {}),
      init: async () => ({ onEvent() {} }),
    };
    expect(() => set([reg], { configs: { "events.v1.cfg": { file: 3 } } })).toThrow("plugins.events.v1.cfg: file: Invalid type: Expected string");
    expect(() => set([reg], { configs: { "events.v1.cfg": { nope: 1 } } })).toThrow("plugins.events.v1.cfg: nope:");
    expect(() => set([reg], { configs: { "events.v1.other": {} } })).toThrow("plugins.events.v1.other: no such plugin");
    expect(() => set([reg, reg])).toThrow("registered twice");
    expect(() => set([reg], { required: ["storage.v1.x"] })).toThrow("required-plugins: no such plugin");
  });

  test("a plugin whose required type is missing is skipped; a failed dependency fails it and the daemon", async () => {
    const { plugins } = set([
      { type: "events.v1", id: "dep", init: async () => { throw new Error("dep broke"); } },
      { type: "events.v1", id: "user", requires: ["events.v1"], init: async () => ({ onEvent() {} }) },
    ]);
    await expect(plugins.initAll()).rejects.toThrow("required plugin events.v1.dep did not load: dep broke");
  });
});

describe("module loader", () => {
  test("finds files and directory entry points, and loads the shipped example", async () => {
    const files = findPluginModules(join(REPO, "examples"));
    expect(files).toEqual([join(REPO, "examples/plugin-audit-log/index.ts")]);
    const regs = await loadPluginModules(join(REPO, "examples"));
    expect(regs.map((r) => `${r.reg.type}.${r.reg.id}`)).toEqual(["events.v1.audit-log"]);
  });

  test("a missing plugins dir loads nothing", async () => {
    expect(await loadPluginModules("/nonexistent/plugins")).toEqual([]);
  });
});
