/**
 * Swarm routes, served as a Docker engine that is not part of a swarm serves them: every
 * `/swarm`, `/nodes`, `/services`, `/tasks`, `/secrets` and `/configs` request answers 503 with
 * moby's wording, which clients read as "no swarm here" (docker-py's `leave_swarm(force=True)`
 * ignores it; `docker node ls` prints it). Bunker has no swarm mode, so `init` and `join` say so
 * with the same status.
 */
import { EngineError } from "../../errors.ts";
import type { Route } from "../router.ts";

/** moby's errNoSwarm. */
export const NO_SWARM = "This node is not part of a swarm";
/** moby's answer on a node that is not a manager (every swarm object route). */
export const NOT_MANAGER = 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';

const refuse =
  (message: string): Route["handler"] =>
  () => {
    throw new EngineError("unavailable", message);
  };

const METHODS = ["GET", "POST", "PUT", "DELETE"] as const;

/** The swarm routes of an engine outside any swarm. */
export function swarmRoutes(): Route[] {
  const routes: Route[] = [
    { method: "POST", path: "/swarm/leave", handler: refuse(NO_SWARM) },
    { method: "POST", path: "/swarm/unlock", handler: refuse(NO_SWARM) },
    { method: "POST", path: "/swarm/init", handler: refuse("swarm mode is not supported by Bunker: this engine cannot become a swarm manager") },
    { method: "POST", path: "/swarm/join", handler: refuse("swarm mode is not supported by Bunker: this engine cannot join a swarm") },
  ];
  for (const prefix of ["/swarm", "/nodes", "/services", "/tasks", "/secrets", "/configs"]) {
    for (const method of METHODS) {
      routes.push({ method, path: prefix, handler: refuse(NOT_MANAGER) });
      routes.push({ method, path: `${prefix}/{rest:.*}`, handler: refuse(NOT_MANAGER) });
    }
  }
  return routes;
}
