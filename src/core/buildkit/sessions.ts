/**
 * BuildKit sessions: each `POST /session` (after `101`) is a client connection on which the
 * build client serves the methods it lists in `X-Docker-Expose-Session-Grpc-Method`; builds
 * find theirs by ID. The daemon polls the session's health check, as BuildKit's manager does,
 * and drops a session that stops answering or disconnects.
 */
import { GrpcClient } from "../grpc/client.ts";
import type { RawStream } from "../grpc/raw-duplex.ts";
import { Code, GrpcError } from "../grpc/status.ts";
import { Health } from "./gen/buildkit/health_pb.ts";
import { Waiters } from "./waiters.ts";

/** One attached session. */
export interface Session {
  readonly id: string;
  readonly name: string;
  readonly sharedKey: string;
  readonly client: GrpcClient;
  /** Whether the client serves `/pkg.Service/Method`. */
  supports(method: string): boolean;
}

/** The session headers of a `/session` request (lower-case names, repeated values joined by commas). */
export interface SessionHeaders {
  get(name: string): string | undefined;
}

const HEALTH_EVERY_MS = 5_000;
const HEALTH_TIMEOUT_MS = 30_000;

/** The attached sessions, by ID. */
export class SessionManager {
  private sessions = new Map<string, Session>();
  private waiters = new Waiters<string>();

  /** Attach a hijacked `/session` connection; resolves when the session ends. */
  async attach(raw: RawStream, headers: SessionHeaders): Promise<void> {
    const id = headers.get("x-docker-expose-session-uuid") ?? "";
    if (!id) throw new GrpcError(Code.INVALID_ARGUMENT, "no session ID (X-Docker-Expose-Session-Uuid) in the request");
    if (this.sessions.has(id)) throw new GrpcError(Code.ALREADY_EXISTS, `session ${id} already exists`);
    const methods = new Set(
      (headers.get("x-docker-expose-session-grpc-method") ?? "")
        .split(",")
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean),
    );
    const client = await GrpcClient.connect(raw);
    const session: Session = { id, name: headers.get("x-docker-expose-session-name") ?? "", sharedKey: headers.get("x-docker-expose-session-sharedkey") ?? "", client, supports: (m) => methods.has(m.toLowerCase()) };
    this.sessions.set(id, session);
    this.waiters.wake(id);
    const timer = setInterval(() => void this.checkHealth(session), HEALTH_EVERY_MS);
    await new Promise<void>((resolve) => client.onClose(resolve));
    clearInterval(timer);
    if (this.sessions.get(id) === session) this.sessions.delete(id);
  }

  private async checkHealth(s: Session): Promise<void> {
    if (!s.supports("/grpc.health.v1.Health/Check")) return;
    const timeout = setTimeout(() => s.client.close(), HEALTH_TIMEOUT_MS);
    try {
      await s.client.unary(Health.method.check, {});
    } catch {
      s.client.close();
    } finally {
      clearTimeout(timeout);
    }
  }

  /** The session `id`, waiting up to `waitMs` for it to attach (the client dials it beside the build). */
  async get(id: string, waitMs = 5_000): Promise<Session> {
    const now = this.sessions.get(id);
    if (now && !now.client.closed) return now;
    await this.waiters.wait(id, waitMs);
    const s = this.sessions.get(id);
    if (!s || s.client.closed) throw new GrpcError(Code.NOT_FOUND, `no active session for ${id}: context deadline exceeded`);
    return s;
  }
}
