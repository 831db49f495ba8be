/**
 * `POST /grpc` and `POST /session`: the connections buildx's `docker` driver opens. Each is
 * upgraded (`Upgrade: h2c`, answered `101`) and handed to the BuildKit service: HTTP/2 with
 * prior knowledge follows on the same socket.
 */
import type { BuildkitService } from "../../buildkit/buildkit-service.ts";
import { invalidArgument } from "../../errors.ts";
import { ignored } from "../../log.ts";
import type { HttpRequest } from "../http/connection.ts";
import type { Route } from "../router.ts";

function requireH2c(req: HttpRequest): void {
  const proto = req.headers.get("upgrade");
  if (!proto) throw invalidArgument("no upgrade proto in request");
  if (proto.toLowerCase() !== "h2c") throw invalidArgument(`protocol ${proto} not supported`);
}

/** The BuildKit routes. */
export function buildkitRoutes(service: () => Promise<BuildkitService>): Route[] {
  return [
    {
      method: "POST",
      path: "/grpc",
      handler: async ({ req, res }) => {
        requireH2c(req);
        const svc = await service();
        await svc.serveGrpc(res.hijack("application/grpc"));
      },
    },
    {
      method: "POST",
      path: "/session",
      handler: async ({ req, res }) => {
        requireH2c(req);
        if (!req.headers.get("x-docker-expose-session-uuid")) throw invalidArgument("no session ID (X-Docker-Expose-Session-Uuid) in the request");
        const svc = await service();
        const raw = res.hijack("application/grpc");
        svc.attachSession(raw, { get: (n) => req.headers.get(n) }).catch((err) => {
          ignored("session ended with an error", err);
          raw.close();
        });
      },
    },
  ];
}
