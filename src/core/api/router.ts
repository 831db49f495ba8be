/**
 * Route table for the Engine API. Patterns use `{name}` for one path segment and `{name:.*}` for
 * a greedy match (image names contain slashes), as moby's router does. Paths are matched after the
 * `/vX.Y` prefix has been stripped.
 */
import { invalidArgument } from "../errors.ts";
import type { HttpRequest, ResponseWriter } from "./http/connection.ts";

/** What a route handler receives. */
export interface RouteContext {
  req: HttpRequest;
  res: ResponseWriter;
  params: Record<string, string>;
  /** The API version the client asked for (from the path), or the server's own. */
  apiVersion: string;
}

export type RouteHandler = (ctx: RouteContext) => void | Promise<void>;

/** One API route. */
export interface Route {
  method: "GET" | "HEAD" | "POST" | "PUT" | "DELETE";
  path: string;
  handler: RouteHandler;
}

interface CompiledRoute extends Route {
  regex: RegExp;
  names: string[];
}

/** Matches requests to routes; GET routes also answer HEAD unless a HEAD route exists. */
export class Router {
  private routes: CompiledRoute[] = [];

  add(...routes: Route[]): this {
    for (const r of routes) this.routes.push(compile(r));
    return this;
  }

  /** Find the route for a method and (unversioned) path. */
  match(method: string, path: string): { route: Route; params: Record<string, string> } | undefined {
    let fallback: { route: Route; params: Record<string, string> } | undefined;
    for (const r of this.routes) {
      const m = r.regex.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      r.names.forEach((n, i) => (params[n] = decodePathParam(m[i + 1] ?? "")));
      if (r.method === method) return { route: r, params };
      if (method === "HEAD" && r.method === "GET") fallback ??= { route: r, params };
    }
    return fallback;
  }
}

function decodePathParam(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw invalidArgument(`malformed percent-encoding in path: ${s}`);
  }
}

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const source = route.path
    .split(/(\{[a-zA-Z]+(?::\.\*)?\})/)
    .map((part) => {
      const m = /^\{([a-zA-Z]+)(:\.\*)?\}$/.exec(part);
      if (!m) return part.replace(/[.*+?^$()|[\]\\]/g, "\\$&");
      names.push(m[1]!);
      return m[2] ? "(.+)" : "([^/]+)";
    })
    .join("");
  return { ...route, regex: new RegExp(`^${source}/?$`), names };
}
