/**
 * Example third-party Bunker plugin: an audit log. It subscribes to every engine event
 * (`events.v1`) and appends each as one JSON line to a file, `<plugin root>/audit.log` unless
 * the `file` option says otherwise.
 *
 * Install: put this directory under the daemon's `plugins-dir` (daemon.json "plugins-dir" or
 * `--plugins-dir`). Configure: daemon.json `"plugins": {"events.v1.audit-log": {"file": "/x.log"}}`.
 *
 * The module imports nothing from Bunker at run time: the default export receives the engine's
 * plugin API (valibot as `v`, NotSupportedError, configFrom) and returns registrations.
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import type { EventMessage, PluginHostApi, Registration } from "./bunker-plugin-api.ts";

export default function auditLogPlugin({ v, configFrom }: PluginHostApi): Registration[] {
  const schema = v.strictObject({
    file: v.optional(v.pipe(v.string(), v.startsWith("/", "must be an absolute path"))),
  });
  return [
    {
      type: "events.v1",
      id: "audit-log",
      config: configFrom(schema, {}),
      async init(ctx) {
        const file = (ctx.config as { file?: string }).file ?? join(ctx.root, "audit.log");
        ctx.log.info("audit log writing to " + file);
        return {
          onEvent(e: EventMessage) {
            appendFileSync(file, JSON.stringify({ ...e, timeNano: String(e.timeNano) }) + "\n");
          },
        };
      },
    },
  ];
}
