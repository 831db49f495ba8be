/**
 * The Engine API's request pipeline: version prefix handling (moby's version middleware), the
 * headers every response carries, routing, and error rendering.
 */
import { EngineError, invalidArgument } from "../errors.ts";
import type { Logger } from "../log.ts";
import { API_VERSION, compareApiVersions, MIN_API_VERSION, VERSION } from "../version.ts";
import type { Handler } from "./http/connection.ts";
import type { Router } from "./router.ts";

const VERSIONED = /^\/v([0-9]+(?:\.[0-9]+)*)(\/.*)$/;

/** Build the connection-level handler for `router`. */
export function createApiHandler(router: Router, log?: Logger): Handler {
  return async (req, res) => {
    res.setHeader("Api-Version", API_VERSION);
    res.setHeader("Docker-Experimental", "false");
    res.setHeader("Ostype", "linux");
    res.setHeader("Server", `Bunker/${VERSION} (linux)`);
    log?.debug("API request", { method: req.method, path: req.path });

    let path = req.path;
    let apiVersion = API_VERSION;
    const m = VERSIONED.exec(path);
    if (m) {
      apiVersion = m[1]!;
      path = m[2]!;
      checkVersion(apiVersion);
    }
    const found = router.match(req.method, path);
    if (!found) throw new EngineError("not-found", "page not found");
    await found.route.handler({ req, res, params: found.params, apiVersion });
  };
}

/** moby's wording for versions outside [MIN_API_VERSION, API_VERSION]. */
export function checkVersion(v: string): void {
  if (compareApiVersions(v, MIN_API_VERSION) < 0) {
    throw invalidArgument(`client version ${v} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`);
  }
  if (compareApiVersions(v, API_VERSION) > 0) {
    throw invalidArgument(`client version ${v} is too new. Maximum supported API version is ${API_VERSION}`);
  }
}
