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

/** `# syntax=` values naming the standard Dockerfile frontend (which Bunker's builder is): docker/dockerfile, any tag or digest. */
const STANDARD_SYNTAX = /^(?:docker\.io\/)?docker\/dockerfile(?:-upstream)?(?::[\w][\w.-]*)?(?:@sha256:[0-9a-f]{64})?$/;

/** Refuse a `# syntax=` line naming another frontend image (Bunker runs no frontend images). */
export function checkSyntax(dockerfileText: string): void {
  for (const line of dockerfileText.split("\n")) {
    const m = /^#\s*([a-zA-Z]+)\s*=\s*(.+?)\s*$/.exec(line);
    if (!m) return;
    if (m[1]!.toLowerCase() === "syntax" && !STANDARD_SYNTAX.test(m[2]!)) {
      throw new GrpcError(Code.UNIMPLEMENTED, `# syntax=${m[2]} names a frontend image other than docker/dockerfile; Bunker's builder is the Dockerfile frontend and does not run frontend images`);
    }
  }
}

/** The platform a build targets and the one it runs on, as BuildKit's automatic ARGs. */
export function platformArgs(target: string, host: string): Record<string, string> {
  const split = (p: string, prefix: string) => {
    const [os = "linux", arch = "amd64", variant = ""] = p.split("/");
    return { [`${prefix}PLATFORM`]: p, [`${prefix}OS`]: os, [`${prefix}ARCH`]: arch, [`${prefix}VARIANT`]: variant };
  };
  return { ...split(target, "TARGET"), ...split(host, "BUILD") };
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
