/**
 * RUN `--mount=type=ssh`: a Unix socket in a private directory that forwards each connection to
 * the client's SSH agent over the session (`SSH.ForwardAgent`, the agent's ID in
 * `buildkit.ssh.id`), as BuildKit's sshforward does. The client's keys never leave its agent.
 */
import { chmodSync, chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, GrpcError } from "../grpc/status.ts";
import { SSH } from "./gen/buildkit/ssh_pb.ts";
import type { Session } from "./sessions.ts";

/** A forwarding socket for one RUN. */
export interface AgentSocket {
  path: string;
  close(): void;
}

/**
 * Check that the client forwards an agent named `id`; throws with BuildKit's words when not
 * (no SSH service: "no SSH key … forwarded", else the client's own error).
 */
export async function checkAgent(session: Session, id: string): Promise<void> {
  const missing = `no SSH key "${id}" forwarded from the client`;
  if (!session.supports("/moby.sshforward.v1.SSH/CheckAgent")) throw new Error(missing);
  try {
    await session.client.unary(SSH.method.checkAgent, { ID: id });
  } catch (err) {
    if (err instanceof GrpcError && err.code === Code.UNIMPLEMENTED) throw new Error(missing);
    throw err;
  }
}

/** Listen on a fresh socket (owned `uid:gid`, mode `mode`) forwarding to agent `id`. */
export function agentSocket(session: Session, id: string, owner: { uid: number; gid: number; mode: number }): AgentSocket {
  const dir = mkdtempSync(join(tmpdir(), ".bunker-ssh-"));
  const path = join(dir, "agent.sock");
  type Conn = { call?: ReturnType<Session["client"]["open"]> };
  const server = Bun.listen<Conn>({
    unix: path,
    socket: {
      open(sock) {
        const call = session.client.open(SSH.method.forwardAgent, { "buildkit.ssh.id": id });
        sock.data = { call };
        void (async () => {
          try {
            for await (const m of call.responses) sock.write((m as { data: Uint8Array }).data);
          } catch {
            // The agent or the session went away: the socket closes below.
          }
          sock.end();
        })();
      },
      data(sock, chunk) {
        void sock.data.call?.send({ data: new Uint8Array(chunk) } as never).catch(() => sock.end());
      },
      close(sock) {
        sock.data.call?.end();
      },
    },
  });
  chownSync(path, owner.uid, owner.gid);
  chmodSync(path, owner.mode);
  return {
    path,
    close() {
      server.stop(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
