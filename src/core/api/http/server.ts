/**
 * Listeners for the HTTP/1.1 server: Unix sockets (mode and group applied after bind) and TCP,
 * optionally with mutual TLS. Each accepted socket gets a `Connection`.
 */
import { ignored } from "../../log.ts";
import { chmodSync, chownSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { Socket, SocketHandler, TLSOptions } from "bun";
import { EngineError, messageOf } from "../../errors.ts";
import { Connection, type ErrorRenderer, type Handler } from "./connection.ts";

/** Where to listen. */
export type ListenSpec = { kind: "unix"; path: string; mode?: number; gid?: number } | { kind: "tcp"; host: string; port: number; tls?: { ca?: string; cert: string; key: string; verifyClient: boolean } };

/** A bound listener. */
export interface Listener {
  /** `unix:///path` or `tcp://host:port` with the real port. */
  readonly address: string;
  readonly spec: ListenSpec;
  /** Stop accepting, close open connections, remove the socket file. */
  close(): void;
}

function handlers(handler: Handler, renderError: ErrorRenderer): SocketHandler<Connection> {
  return {
    open(socket: Socket<Connection>) {
      socket.data = new Connection(socket, handler, renderError);
    },
    data(socket, chunk) {
      socket.data.onData(chunk);
    },
    drain(socket) {
      socket.data.onDrain();
    },
    end(socket) {
      socket.data?.onEnd();
    },
    close(socket) {
      socket.data?.onClose();
    },
    error(socket) {
      socket.data?.onClose();
    },
    handshake(socket, success, authError) {
      // With requestCert+rejectUnauthorized Bun already refuses; this closes the rest.
      if (!success || authError) socket.end();
    },
  };
}

/** Bind one listener. Throws EngineError (unavailable) when the address is in use. */
export async function listen(spec: ListenSpec, handler: Handler, renderError: ErrorRenderer): Promise<Listener> {
  if (spec.kind === "unix") {
    mkdirSync(dirname(spec.path), { recursive: true });
    await removeStaleSocket(spec.path);
    const server = Bun.listen<Connection>({
      unix: spec.path,
      allowHalfOpen: true,
      socket: handlers(handler, renderError),
    });
    try {
      chmodSync(spec.path, spec.mode ?? 0o660);
      if (spec.gid !== undefined) chownSync(spec.path, 0, spec.gid);
    } catch (err) {
      server.stop(true);
      throw new EngineError("internal", `cannot set permissions on ${spec.path}: ${messageOf(err)}`, { cause: err });
    }
    return {
      address: `unix://${spec.path}`,
      spec,
      close() {
        server.stop(true);
        try {
          unlinkSync(spec.path);
        } catch (err) {
          ignored("already gone", err);
        }
      },
    };
  }
  const tls: TLSOptions | undefined = spec.tls
    ? {
        cert: spec.tls.cert,
        key: spec.tls.key,
        ...(spec.tls.ca ? { ca: spec.tls.ca } : {}),
        requestCert: spec.tls.verifyClient,
        rejectUnauthorized: spec.tls.verifyClient,
      }
    : undefined;
  let server;
  try {
    server = Bun.listen<Connection>({
      hostname: spec.host,
      port: spec.port,
      allowHalfOpen: true,
      ...(tls ? { tls } : {}),
      socket: handlers(handler, renderError),
    });
  } catch (err) {
    throw new EngineError("unavailable", `cannot listen on tcp://${spec.host}:${spec.port}: ${messageOf(err)}`, { cause: err });
  }
  const host = spec.host.includes(":") ? `[${spec.host}]` : spec.host;
  return {
    address: `tcp://${host}:${server.port}`,
    spec,
    close() {
      server.stop(true);
    },
  };
}

/**
 * A socket file left by a crashed daemon is removed; one that still accepts connections belongs
 * to a live daemon (perhaps with another data root) and is an error.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new EngineError("already-exists", `${path} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    Bun.connect({
      unix: path,
      socket: {
        open(s) {
          s.end();
          resolve(true);
        },
        connectError() {
          resolve(false);
        },
        data() {},
      },
    }).catch(() => resolve(false));
  });
  if (alive) throw new EngineError("unavailable", `${path} is in use by another daemon`);
  unlinkSync(path);
}
