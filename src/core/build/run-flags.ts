/**
 * RUN's flags as BuildKit's Dockerfile frontend reads them: `--mount` (bind, cache, tmpfs,
 * secret, ssh; comma-separated `key=value` fields), `--network` and `--security`. Every flag is
 * either honoured or refused with a message; none is parsed and then ignored.
 */
import { posix } from "node:path";
import { BuildError } from "./build-types.ts";

/** One `--mount`. */
export interface RunMount {
  type: "bind" | "cache" | "tmpfs" | "secret" | "ssh";
  target: string;
  /** bind/cache: the path in `from` (bind: default its root). */
  source?: string;
  /** bind/cache: a stage or an image the source comes from (bind default: the build context). */
  from?: string;
  readonly: boolean;
  /** cache: the cache's ID (default the target); secret/ssh: the secret's or agent's ID. */
  id?: string;
  sharing: "shared" | "private" | "locked";
  mode?: number;
  uid?: number;
  gid?: number;
  /** secret/ssh: fail the step when the client has no such secret or agent. */
  required: boolean;
  /** tmpfs: size in bytes. */
  size?: number;
  /** secret: expose it as this environment variable too. */
  env?: string;
}

/** The parsed flags of one RUN. */
export interface RunFlags {
  mounts: RunMount[];
  network?: "none" | "host" | "default";
  security?: "insecure" | "sandbox";
}

const TYPES = new Set(["bind", "cache", "tmpfs", "secret", "ssh"]);
const BOOL = (v: string, key: string) => {
  if (v === "" || v === "true") return true;
  if (v === "false") return false;
  throw new BuildError(`invalid value for ${key}: ${v}`);
};
const NUM = (v: string, key: string, base = 10) => {
  const n = Number.parseInt(v, base);
  if (!/^\d+$/.test(v) || Number.isNaN(n)) throw new BuildError(`invalid value for ${key}: ${v}`);
  return n;
};

/** `--mount=type=cache,target=/root/.cache,sharing=locked` → a RunMount. */
export function parseMount(spec: string): RunMount {
  const fields = new Map<string, string>();
  for (const part of spec.split(",")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    fields.set(
      key,
      eq < 0
        ? ""
        : part
            .slice(eq + 1)
            .trim()
            .replace(/^"(.*)"$/, "$1"),
    );
  }
  const type = (fields.get("type") ?? "bind") as RunMount["type"];
  if (!TYPES.has(type)) throw new BuildError(`unsupported mount type "${type}"`);
  const m: RunMount = { type, target: "", readonly: type === "bind", sharing: "shared", required: false };
  for (const [key, v] of fields) {
    switch (key) {
      case "type":
        break;
      case "target":
      case "dst":
      case "destination":
        m.target = v;
        break;
      case "source":
      case "src":
        m.source = v;
        break;
      case "from":
        m.from = v;
        break;
      case "readonly":
      case "ro":
        m.readonly = BOOL(v, key);
        break;
      case "rw":
      case "readwrite":
        m.readonly = !BOOL(v, key);
        break;
      case "id":
        m.id = v;
        break;
      case "sharing":
        if (v !== "shared" && v !== "private" && v !== "locked") throw new BuildError(`unsupported sharing value "${v}"`);
        m.sharing = v;
        break;
      case "mode":
        m.mode = NUM(v, key, 8);
        break;
      case "uid":
        m.uid = NUM(v, key);
        break;
      case "gid":
        m.gid = NUM(v, key);
        break;
      case "required":
        m.required = BOOL(v, key);
        break;
      case "size":
        m.size = NUM(v.replace(/[kKmMgG]$/, ""), key) * ({ k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[v.slice(-1).toLowerCase()] ?? 1);
        break;
      case "env":
        m.env = v;
        break;
      default:
        throw new BuildError(`unexpected key '${key}' in '${key}${fields.get(key) ? `=${fields.get(key)}` : ""}'`);
    }
  }
  if (type === "secret") {
    if (!m.id && !m.target) throw new BuildError("one of id or target must be provided for a secret mount");
    m.id ??= posix.basename(m.target);
    if (!m.target && !m.env) m.target = `/run/secrets/${m.id}`;
    m.mode ??= 0o400;
  } else if (type === "ssh") {
    m.id ??= "default";
    m.target ||= "/run/buildkit/ssh_agent.0";
    m.mode ??= 0o600;
  } else if (!m.target) throw new BuildError("mount destination (target) is required");
  if (type === "cache") m.id ||= m.target;
  if (m.target && !m.target.startsWith("/")) m.target = `/${m.target}`;
  if (m.target) m.target = posix.normalize(m.target);
  if (m.target === "/") throw new BuildError("a mount cannot target /");
  return m;
}

/** RUN's flags; an unknown flag is an error. */
export function parseRunFlags(flags: [string, string][]): RunFlags {
  const out: RunFlags = { mounts: [] };
  for (const [name, value] of flags) {
    if (name === "mount") out.mounts.push(parseMount(value));
    else if (name === "network") {
      if (value !== "none" && value !== "host" && value !== "default") throw new BuildError(`unsupported network mode "${value}"`);
      out.network = value;
    } else if (name === "security") {
      if (value !== "insecure" && value !== "sandbox") throw new BuildError(`unsupported security mode "${value}"`);
      out.security = value;
    } else throw new BuildError(`Unknown flag: ${name}`);
  }
  return out;
}
