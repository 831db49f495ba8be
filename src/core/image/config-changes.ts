/**
 * Image configs as `docker import --change` and `docker commit --change` edit them (Dockerfile
 * instructions on a config), the config's default fields as Docker shows them, and the platform
 * an import is for.
 */
import { ignored } from "../log.ts";
import { invalidArgument } from "../errors.ts";

/** Instructions `docker import --change` accepts. */
const CHANGE_INSTRUCTIONS = ["CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME", "WORKDIR", "STOPSIGNAL"];

/** Exec form (`["a","b"]`) or shell form (`a b` → `/bin/sh -c "a b"`). */
function commandForm(arg: string): string[] {
  if (arg.trim().startsWith("[")) {
    try {
      const v = JSON.parse(arg);
      if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v;
    } catch (err) {
      ignored("falls through to shell form, as Docker does", err);
    }
  }
  return ["/bin/sh", "-c", arg];
}

/** `KEY=VALUE KEY2="v 2"` or the legacy `KEY VALUE`. */
function keyValues(arg: string): [string, string][] {
  const t = arg.trim();
  if (!t.includes("=")) {
    const sp = t.indexOf(" ");
    return sp < 0 ? [[t, ""]] : [[t.slice(0, sp), t.slice(sp + 1).trim()]];
  }
  const out: [string, string][] = [];
  for (const m of t.matchAll(/([^\s=]+)=("((?:[^"\\]|\\.)*)"|'([^']*)'|(\S*))/g)) {
    out.push([m[1]!, m[3] !== undefined ? m[3].replace(/\\(.)/g, "$1") : (m[4] ?? m[5] ?? "")]);
  }
  return out;
}

/** Apply Dockerfile-style changes to an image's container config. */
export function applyChanges(config: Record<string, unknown>, changes: string[]): Record<string, unknown> {
  const c: Record<string, any> = { ...config };
  for (const line of changes) {
    const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(line);
    const op = m?.[1]?.toUpperCase();
    if (!m || !op || !CHANGE_INSTRUCTIONS.includes(op)) throw invalidArgument(`${line.split(/\s/)[0] || line} is not a valid change command`);
    const arg = m[2]!.trim();
    switch (op) {
      case "CMD":
        c.Cmd = commandForm(arg);
        break;
      case "ENTRYPOINT":
        c.Entrypoint = commandForm(arg);
        break;
      case "ENV": {
        const env = new Map<string, string>(((c.Env as string[] | undefined) ?? []).map((e) => [e.split("=")[0]!, e] as [string, string]));
        // $VAR and ${VAR} stand for the image's value so far (ENV PATH=/usr/bin:$PATH).
        const valueOf = (k: string) => env.get(k)?.slice(k.length + 1) ?? "";
        for (const [k, v] of keyValues(arg)) env.set(k, `${k}=${v.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a, b) => valueOf(a ?? b))}`);
        c.Env = [...env.values()];
        break;
      }
      case "LABEL":
        c.Labels = { ...c.Labels, ...Object.fromEntries(keyValues(arg)) };
        break;
      case "EXPOSE":
        for (const p of arg.split(/\s+/)) (c.ExposedPorts ??= {})[p.includes("/") ? p : `${p}/tcp`] = {};
        break;
      case "VOLUME":
        for (const v of commandForm(arg)[0] === "/bin/sh" ? arg.split(/\s+/) : commandForm(arg)) (c.Volumes ??= {})[v] = {};
        break;
      case "USER":
        c.User = arg;
        break;
      case "WORKDIR":
        c.WorkingDir = arg;
        break;
      case "STOPSIGNAL":
        c.StopSignal = arg;
        break;
      case "ONBUILD":
        (c.OnBuild ??= []).push(arg);
        break;
    }
  }
  return c;
}

/** The container config fields Docker 20.10 always shows in image inspect, in its order. */
const CONFIG_DEFAULTS = {
  Hostname: "",
  Domainname: "",
  User: "",
  AttachStdin: false,
  AttachStdout: false,
  AttachStderr: false,
  ExposedPorts: undefined,
  Tty: false,
  OpenStdin: false,
  StdinOnce: false,
  Env: null,
  Cmd: null,
  Healthcheck: undefined,
  Image: "",
  Volumes: null,
  WorkingDir: "",
  Entrypoint: null,
  OnBuild: null,
  Labels: null,
};

/** `config` with every field Docker shows (absent ones at their zero value; optional ones only when set). */
export function withConfigDefaults(config: unknown): Record<string, unknown> {
  const given = config && typeof config === "object" ? (config as Record<string, unknown>) : {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(CONFIG_DEFAULTS)) {
    if (given[k] !== undefined) out[k] = given[k];
    else if (v !== undefined) out[k] = v;
  }
  for (const [k, v] of Object.entries(given)) if (!(k in out) && v !== undefined) out[k] = v;
  return out;
}

const KNOWN_OS = ["aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js", "linux", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows"];
const KNOWN_ARCH = ["386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64", "ppc64le", "riscv64", "s390x", "wasm"];

/**
 * The platform of `docker import --platform`: containerd's normalisation (lower case, macos →
 * darwin, an architecture alone means this host's OS), then only linux is accepted, with moby's
 * messages for the rest.
 */
export function importPlatform(platform: string | undefined): { os: string; architecture: string } {
  const hostArch = process.arch === "arm64" ? "arm64" : "amd64";
  if (platform === undefined || platform === "") return { os: "linux", architecture: hostArch };
  const parts = platform.toLowerCase().split("/");
  if (!/^[a-z0-9_-]+$/.test(parts[0] ?? "")) throw invalidArgument(`"${platform}": is an invalid OS component of "${platform}": OSAndVariant specifier component must match "^[A-Za-z0-9_-]+$": invalid argument`);
  let os = parts[0] === "macos" ? "darwin" : parts[0]!;
  let arch = parts[1] ?? hostArch;
  if (parts.length === 1 && !KNOWN_OS.includes(os)) {
    if (!KNOWN_ARCH.includes(os)) throw invalidArgument(`"${platform}": unknown operating system or architecture: invalid argument`);
    arch = os;
    os = "linux";
  }
  if (arch === "x86_64") arch = "amd64";
  if (arch === "aarch64") arch = "arm64";
  if (os !== "linux") throw invalidArgument(`image operating system "${os}" cannot be used on this platform: operating system is not supported`);
  return { os, architecture: arch };
}
