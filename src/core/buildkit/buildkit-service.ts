/**
 * BuildKit's face of the daemon: `/grpc` (Bunker serves Control and LLBBridge) and `/session`
 * (Bunker calls the build client's FileSync, Secrets, Auth, …), over HTTP/2 on the hijacked
 * API connections. The builds themselves are Bunker's builder's.
 */
import type { BuildService } from "../build/build-service.ts";
import { GrpcServer } from "../grpc/server.ts";
import type { RawStream } from "../grpc/raw-duplex.ts";
import { Control } from "./gen/buildkit/control_pb.ts";
import { LLBBridge } from "./gen/buildkit/gateway_pb.ts";
import { controlService } from "./control.ts";
import { gatewayService } from "./gateway.ts";
import { Jobs } from "./jobs.ts";
import { SessionManager, type SessionHeaders } from "./sessions.ts";

/** What the BuildKit service uses. */
export interface BuildkitDeps {
  builds: () => Promise<BuildService>;
  /** The platforms builds can target. */
  platforms: () => string[];
  imageConfig: (name: string) => Promise<{ id: string; config: unknown } | undefined>;
}

/** The `/grpc` and `/session` endpoints' service. */
export class BuildkitService {
  private readonly sessions = new SessionManager();
  private readonly jobs = new Jobs();
  private readonly server: GrpcServer;

  constructor(deps: BuildkitDeps) {
    const all = { ...deps, sessions: this.sessions, jobs: this.jobs };
    this.server = new GrpcServer().add(Control, controlService(all)).add(LLBBridge, gatewayService(all));
  }

  /** Serve BuildKit's gRPC API on a hijacked `/grpc` connection. */
  serveGrpc(raw: RawStream): Promise<void> {
    return this.server.serve(raw);
  }

  /** Attach a hijacked `/session` connection; resolves when the session ends. */
  attachSession(raw: RawStream, headers: SessionHeaders): Promise<void> {
    return this.sessions.attach(raw, headers);
  }
}
