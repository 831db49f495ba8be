/**
 * The OCI runtime spec (config.json), Linux parts, as valibot schemas and the types inferred from
 * them: the engine builds its containers' specs typed (core/container/spec-builder.ts), and a runtime
 * reads a bundle through `parseSpec`. What a runtime reads is
 * type-checked and an error names the field (`process.args: Invalid length`). Unknown keys pass,
 * as the spec allows extensions; known fields this runtime does not implement are refused by
 * `unsupportedFields` rather than silently ignored.
 */
import * as v from "valibot";
import { invalidArgument } from "../errors.ts";
import { parseOrThrow } from "../validate.ts";

const u32 = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(0xffffffff));
const i64 = v.pipe(v.number(), v.integer());
const abs = v.pipe(v.string(), v.startsWith("/", "must be an absolute path"));

export const NAMESPACE_TYPES = ["mount", "pid", "network", "uts", "ipc", "user", "cgroup", "time"] as const;
export type NamespaceType = (typeof NAMESPACE_TYPES)[number];

const IdMapping = v.object({ containerID: u32, hostID: u32, size: u32 });
const Rlimit = v.object({ type: v.pipe(v.string(), v.regex(/^RLIMIT_[A-Z]+$/, "must be RLIMIT_<NAME>")), soft: v.pipe(v.number(), v.integer(), v.minValue(0)), hard: v.pipe(v.number(), v.integer(), v.minValue(0)) });
const CapList = v.optional(v.array(v.pipe(v.string(), v.regex(/^CAP_[A-Z_]+$/, "must be CAP_<NAME>"))));

const SeccompArg = v.object({
  index: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(5)),
  value: v.pipe(v.number(), v.integer(), v.minValue(0)),
  valueTwo: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
  op: v.picklist(["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"]),
});
const SeccompAction = v.picklist(["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"]);
export const SeccompSchema = v.looseObject({
  defaultAction: SeccompAction,
  defaultErrnoRet: v.optional(u32),
  architectures: v.optional(v.array(v.string())),
  flags: v.optional(v.array(v.string())),
  listenerPath: v.optional(v.string()),
  syscalls: v.optional(
    v.array(
      v.looseObject({
        names: v.pipe(v.array(v.string()), v.minLength(1)),
        action: SeccompAction,
        errnoRet: v.optional(u32),
        args: v.optional(v.array(SeccompArg)),
      }),
    ),
  ),
});
export type SeccompSpec = v.InferOutput<typeof SeccompSchema>;

const Hook = v.object({ path: abs, args: v.optional(v.array(v.string())), env: v.optional(v.array(v.string())), timeout: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))) });
const Hooks = v.optional(v.array(Hook));

const Device = v.object({
  type: v.picklist(["c", "b", "u", "p"]),
  path: abs,
  major: v.optional(i64),
  minor: v.optional(i64),
  fileMode: v.optional(u32),
  uid: v.optional(u32),
  gid: v.optional(u32),
});
const DeviceRule = v.object({ allow: v.boolean(), type: v.optional(v.picklist(["a", "c", "b"])), major: v.optional(v.nullable(i64)), minor: v.optional(v.nullable(i64)), access: v.optional(v.string()) });

export const ResourcesSchema = v.looseObject({
  devices: v.optional(v.array(DeviceRule)),
  memory: v.optional(v.looseObject({ limit: v.optional(i64), reservation: v.optional(i64), swap: v.optional(i64), kernel: v.optional(i64), swappiness: v.optional(v.number()), disableOOMKiller: v.optional(v.boolean()) })),
  cpu: v.optional(
    v.looseObject({
      shares: v.optional(v.number()),
      quota: v.optional(i64),
      period: v.optional(v.number()),
      cpus: v.optional(v.string()),
      mems: v.optional(v.string()),
      realtimeRuntime: v.optional(i64),
      realtimePeriod: v.optional(v.number()),
      idle: v.optional(i64),
    }),
  ),
  pids: v.optional(v.object({ limit: i64 })),
  // 0 means "not set" (dockerd sends it); otherwise 10–1000.
  blockIO: v.optional(
    v.looseObject({
      weight: v.optional(
        v.pipe(
          v.number(),
          v.integer(),
          v.check((w) => w === 0 || (w >= 10 && w <= 1000), "must be 0 (unset) or 10–1000"),
        ),
      ),
    }),
  ),
  hugepageLimits: v.optional(v.array(v.object({ pageSize: v.string(), limit: v.number() }))),
  unified: v.optional(v.record(v.string(), v.string())),
});
export type Resources = v.InferOutput<typeof ResourcesSchema>;

export const ProcessSchema = v.looseObject({
  terminal: v.optional(v.boolean()),
  consoleSize: v.optional(v.object({ height: u32, width: u32 })),
  cwd: abs,
  env: v.optional(v.array(v.pipe(v.string(), v.includes("=", "must be KEY=value")))),
  args: v.pipe(v.array(v.string()), v.minLength(1, "must name the program to run")),
  commandLine: v.optional(v.string()),
  rlimits: v.optional(v.array(Rlimit)),
  apparmorProfile: v.optional(v.string()),
  capabilities: v.optional(v.looseObject({ bounding: CapList, permitted: CapList, effective: CapList, inheritable: CapList, ambient: CapList })),
  noNewPrivileges: v.optional(v.boolean()),
  oomScoreAdj: v.optional(v.pipe(v.number(), v.integer(), v.minValue(-1000), v.maxValue(1000))),
  selinuxLabel: v.optional(v.string()),
  user: v.looseObject({ uid: u32, gid: u32, umask: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(0o777))), additionalGids: v.optional(v.array(u32)), username: v.optional(v.string()) }),
});
export type ProcessSpec = v.InferOutput<typeof ProcessSchema>;

const Mount = v.looseObject({
  destination: v.pipe(v.string(), v.minLength(1)),
  source: v.optional(v.string()),
  type: v.optional(v.string()),
  options: v.optional(v.array(v.string())),
  uidMappings: v.optional(v.array(IdMapping)),
  gidMappings: v.optional(v.array(IdMapping)),
});
export type MountSpec = v.InferOutput<typeof Mount>;

export const SpecSchema = v.looseObject({
  ociVersion: v.pipe(v.string(), v.regex(/^1\.\d+\.\d+/, "must be a 1.x runtime-spec version")),
  process: v.optional(ProcessSchema),
  root: v.optional(v.looseObject({ path: v.pipe(v.string(), v.minLength(1)), readonly: v.optional(v.boolean()) })),
  hostname: v.optional(v.string()),
  domainname: v.optional(v.string()),
  mounts: v.optional(v.array(Mount)),
  hooks: v.optional(v.looseObject({ prestart: Hooks, createRuntime: Hooks, createContainer: Hooks, startContainer: Hooks, poststart: Hooks, poststop: Hooks })),
  annotations: v.optional(v.record(v.string(), v.string())),
  linux: v.optional(
    v.looseObject({
      namespaces: v.optional(v.array(v.object({ type: v.picklist(NAMESPACE_TYPES, `must be one of ${NAMESPACE_TYPES.join(", ")}`), path: v.optional(abs) }))),
      uidMappings: v.optional(v.array(IdMapping)),
      gidMappings: v.optional(v.array(IdMapping)),
      devices: v.optional(v.array(Device)),
      cgroupsPath: v.optional(v.string()),
      resources: v.optional(ResourcesSchema),
      rootfsPropagation: v.optional(v.picklist(["private", "shared", "slave", "unbindable", "rprivate", "rshared", "rslave", "runbindable"])),
      seccomp: v.optional(SeccompSchema),
      sysctl: v.optional(v.record(v.string(), v.string())),
      maskedPaths: v.optional(v.array(abs)),
      readonlyPaths: v.optional(v.array(abs)),
      mountLabel: v.optional(v.string()),
      timeOffsets: v.optional(
        v.record(v.picklist(["monotonic", "boottime"], "must be monotonic or boottime"), v.object({ secs: v.optional(i64), nanosecs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(999_999_999))) })),
      ),
    }),
  ),
});
export type Spec = v.InferOutput<typeof SpecSchema>;

/** Fields of the spec this runtime does not implement: using one is an error, never ignored. */
const UNSUPPORTED = ["linux.intelRdt", "linux.personality", "linux.netDevices", "linux.memoryPolicy", "process.scheduler", "process.ioPriority", "process.execCPUAffinity"];

function jsonOf(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`${what}: not JSON: ${(err as Error).message}`);
  }
}

/** Parse a config.json text; throws invalid-argument naming the field. */
export function parseSpec(text: string, what = "config.json"): Spec {
  const raw = jsonOf(text, what) as Record<string, Record<string, unknown> | undefined>;
  const spec = parseOrThrow(SpecSchema, raw, what);
  for (const field of UNSUPPORTED) {
    const [section, key] = field.split(".") as [string, string];
    if (raw[section]?.[key] !== undefined) throw invalidArgument(`${what}: ${field} is not supported by this runtime`);
  }
  return spec;
}

/** Parse a process.json (`exec --process`). */
export function parseProcess(text: string, what = "process.json"): ProcessSpec {
  return parseOrThrow(ProcessSchema, jsonOf(text, what), what);
}
