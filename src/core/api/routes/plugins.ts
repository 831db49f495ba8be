/**
 * Managed plugins (`docker plugin …`): Bunker has none. The list is empty and a named plugin is
 * not found, as on a Docker engine with no plugin installed, so clients and test suites that
 * list plugins before and after their work (moby's own integration tests do) see a clean state.
 * Installing one is refused with the reason: Bunker's third-party drivers are Docker-protocol
 * plugin sockets (`docker-plugin-dirs`) and its own plugin modules, not managed plugin images.
 */
import { EngineError, notFound } from "../../errors.ts";
import type { Route } from "../router.ts";

const UNSUPPORTED = "managed plugins (docker plugin install) are not supported by Bunker: run the plugin as a Docker-protocol plugin socket in docker-plugin-dirs instead";

/** The plugin routes of an engine with no managed plugins. */
export function pluginRoutes(): Route[] {
  const refuse: Route["handler"] = () => {
    throw new EngineError("not-implemented", UNSUPPORTED);
  };
  const missing: Route["handler"] = ({ params }) => {
    throw notFound(`plugin "${params.name}" not found`);
  };
  return [
    { method: "GET", path: "/plugins", handler: ({ res }) => res.json(200, []) },
    { method: "GET", path: "/plugins/privileges", handler: refuse },
    { method: "POST", path: "/plugins/pull", handler: refuse },
    { method: "POST", path: "/plugins/create", handler: refuse },
    { method: "GET", path: "/plugins/{name:.*}/json", handler: missing },
    { method: "DELETE", path: "/plugins/{name:.*}", handler: missing },
    { method: "POST", path: "/plugins/{name:.*}/enable", handler: missing },
    { method: "POST", path: "/plugins/{name:.*}/disable", handler: missing },
    { method: "POST", path: "/plugins/{name:.*}/upgrade", handler: missing },
    { method: "POST", path: "/plugins/{name:.*}/push", handler: missing },
    { method: "POST", path: "/plugins/{name:.*}/set", handler: missing },
  ];
}
