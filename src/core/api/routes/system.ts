/**
 * System routes: `/_ping`, `/version`, `/info`, `/events`.
 */
import { invalidArgument } from "../../errors.ts";
import { encodeEvent, EVENT_FILTER_KEYS, type EventBus, type EventMessage, parseEventTime, wallClockNanos } from "../../events/bus.ts";
import { type SystemService, versionDocument } from "../../system/system-service.ts";
import { Filters } from "../../filters.ts";
import type { Route } from "../router.ts";

/** Services the system routes use. */
export interface SystemRouteDeps {
  system: SystemService;
  events: EventBus;
}

/** The system routes. */
export function systemRoutes({ system, events }: SystemRouteDeps): Route[] {
  const ping: Route["handler"] = ({ req, res }) => {
    res.setHeader("Cache-Control", "no-cache, no-store, must-revalidate");
    res.setHeader("Pragma", "no-cache");
    res.setHeader("Builder-Version", "2");
    res.setHeader("Swarm", "inactive");
    res.send(200, req.method === "HEAD" ? "" : "OK", "text/plain; charset=utf-8");
  };
  return [
    { method: "GET", path: "/_ping", handler: ping },
    { method: "HEAD", path: "/_ping", handler: ping },
    { method: "GET", path: "/version", handler: ({ res }) => res.json(200, versionDocument()) },
    { method: "GET", path: "/info", handler: ({ res }) => res.json(200, system.info()) },
    {
      method: "GET",
      path: "/events",
      handler: ({ req, res }) => {
        const filters = Filters.parse(req.query.get("filters"), EVENT_FILTER_KEYS);
        const sinceRaw = req.query.get("since");
        const untilRaw = req.query.get("until");
        const since = sinceRaw ? parseEventTime(sinceRaw, "since") : undefined;
        const until = untilRaw ? parseEventTime(untilRaw, "until") : undefined;
        if (since !== undefined && until !== undefined && until < since) {
          throw invalidArgument(`\`since\` time (${sinceRaw}) cannot be after \`until\` time (${untilRaw})`);
        }
        const out = res.stream(200, "application/json");
        const send = (e: EventMessage) => void out.write(encodeEvent(e) + "\n");
        if (since !== undefined) for (const e of events.history(filters, since, until)) send(e);
        const now = wallClockNanos();
        if (until !== undefined && until <= now) {
          out.end();
          return;
        }
        const sub = events.subscribe(filters, send);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const stop = () => {
          sub.close();
          if (timer) clearTimeout(timer);
          out.end();
        };
        if (until !== undefined) timer = setTimeout(stop, Number((until - now) / 1_000_000n) + 1);
        req.onClose(stop);
      },
    },
  ];
}
