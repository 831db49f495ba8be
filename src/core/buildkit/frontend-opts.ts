/**
 * The Dockerfile frontend's options (`dockerfile.v0`'s FrontendOpt, as buildx and buildctl send
 * them) turned into a Bunker build request.
 */
import type { BuildRequest } from "../build/build-service.ts";
import { Code, GrpcError } from "../grpc/status.ts";

/** A build request and where its files come from in the session. */
export interface FrontendRequest {
  build: BuildRequest;
  /** The Dockerfile's name in its local directory. */
  filename: string;
  /** The session's local directory names for the context and the Dockerfile. */
  contextName: string;
  dockerfileName: string;
  /** `--platform`, when one was asked for. */
  platforms: string[];
  /** Named contexts (`--build-context name=…`): name → `local:dir`, `docker-image://ref`, … */
  namedContexts: Record<string, string>;
}

const prefixed = (opts: Record<string, string>, prefix: string) => Object.fromEntries(Object.entries(opts).flatMap(([k, v]) => (k.startsWith(prefix) ? [[k.slice(prefix.length), v]] : [])));

/** Parse `dockerfile.v0`'s options; unknown ones are left alone, as BuildKit does. */
export function parseFrontendOpts(opts: Record<string, string>): FrontendRequest {
  const filename = opts.filename || "Dockerfile";
  const network = opts["force-network-mode"] ?? "";
  if (network && !["none", "host", "default", "sandbox"].includes(network)) throw new GrpcError(Code.INVALID_ARGUMENT, `invalid network mode ${JSON.stringify(network)}`);
  const extraHosts = (opts["add-hosts"] ?? "")
    .split(",")
    .map((h) => h.trim())
    .filter(Boolean)
    .map((h) => {
      const eq = h.indexOf("=");
      if (eq <= 0) throw new GrpcError(Code.INVALID_ARGUMENT, `invalid host ${h}`);
      return `${h.slice(0, eq)}:${h.slice(eq + 1)}`;
    });
  const platforms = (opts.platform ?? "")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  return {
    filename: filename.split("/").pop()!,
    contextName: opts.contextkey || "context",
    dockerfileName: opts.dockerfilekey || "dockerfile",
    platforms,
    namedContexts: prefixed(opts, "context:"),
    build: {
      dockerfile: filename.split("/").pop()!,
      tags: [],
      buildArgs: prefixed(opts, "build-arg:"),
      labels: prefixed(opts, "label:"),
      cacheFrom: [],
      extraHosts,
      ...(opts.target ? { target: opts.target } : {}),
      // `no-cache` with no value is every step; a list of stage names is treated the same.
      noCache: "no-cache" in opts,
      pull: opts["image-resolve-mode"] === "pull",
      ...(network && network !== "default" && network !== "sandbox" ? { network } : {}),
      quiet: false,
    },
  };
}

/** `.dockerignore` lines as fsutil exclude patterns (comments and blanks dropped, paths cleaned). */
export function excludePatterns(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const not = line.startsWith("!");
    if (not) line = line.slice(1).trim();
    line = line.replace(/^\/+/, "");
    const clean = line
      ? line
          .split("/")
          .filter((p, i, a) => p !== "." && !(p === "" && i < a.length))
          .join("/") || "."
      : "";
    if (!clean) continue;
    out.push(not ? `!${clean}` : clean);
  }
  return out;
}
