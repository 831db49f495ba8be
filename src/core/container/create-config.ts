/**
 * The body of `POST /containers/create` (Engine API 1.51): the container Config at the top level,
 * `HostConfig`, `NetworkingConfig`. Unknown fields are accepted and ignored, as dockerd's Go
 * decoder does; a known field of the wrong type is a 400 naming it. Go clients send `null` for
 * empty slices and maps, so those are nullable throughout.
 */
import * as v from "valibot";

const str = v.nullish(v.string());
const bool = v.nullish(v.boolean());
/**
 * An integer the engine stores as Go's int64 does: a value at or past 2^63 (JSON's 9223372036854775808,
 * which would be kept as a float and break every later `docker inspect`) is refused with 400.
 */
const int = v.nullish(
  v.pipe(
    v.number(),
    v.integer(),
    v.check(
      (n) => n >= -(2 ** 63) && n < 2 ** 63,
      (issue) => `${issue.input} is out of range for an int64`,
    ),
  ),
);
const strs = v.nullish(v.array(v.string()));
const strMap = v.nullish(v.record(v.string(), v.string()));
const emptyObjMap = v.nullish(v.record(v.string(), v.looseObject({})));
/** A Go []string that some clients send as a single string (Entrypoint, Cmd, Shell). */
const strSlice = v.nullish(
  v.union([
    v.array(v.string()),
    v.pipe(
      v.string(),
      v.transform((s) => [s]),
    ),
  ]),
);

export const HealthcheckSchema = v.looseObject({
  Test: strs,
  Interval: int,
  Timeout: int,
  Retries: int,
  StartPeriod: int,
  StartInterval: int,
});

export const RestartPolicySchema = v.looseObject({
  Name: v.nullish(v.picklist(["", "no", "always", "unless-stopped", "on-failure"], 'must be one of "no", "always", "unless-stopped", "on-failure"')),
  MaximumRetryCount: int,
});

export const MountSchema = v.looseObject({
  Target: v.string(),
  Source: str,
  Type: v.picklist(["bind", "volume", "tmpfs", "npipe", "cluster", "image"]),
  ReadOnly: bool,
  Consistency: str,
  BindOptions: v.nullish(v.looseObject({ Propagation: str, NonRecursive: bool, CreateMountpoint: bool })),
  VolumeOptions: v.nullish(v.looseObject({ NoCopy: bool, Labels: strMap, Subpath: str, DriverConfig: v.nullish(v.looseObject({ Name: str, Options: strMap })) })),
  TmpfsOptions: v.nullish(v.looseObject({ SizeBytes: int, Mode: int, Options: v.nullish(v.array(v.array(v.string()))) })),
});

export const HostConfigSchema = v.looseObject({
  Binds: strs,
  NetworkMode: str,
  PortBindings: v.nullish(v.record(v.string(), v.nullish(v.array(v.looseObject({ HostIp: str, HostPort: str }))))),
  RestartPolicy: v.nullish(RestartPolicySchema),
  AutoRemove: bool,
  VolumeDriver: str,
  VolumesFrom: strs,
  Mounts: v.nullish(v.array(MountSchema)),
  CapAdd: strs,
  CapDrop: strs,
  Dns: strs,
  DnsOptions: strs,
  DnsSearch: strs,
  ExtraHosts: strs,
  GroupAdd: strs,
  IpcMode: str,
  PidMode: str,
  UTSMode: str,
  UsernsMode: str,
  CgroupnsMode: str,
  Privileged: bool,
  PublishAllPorts: bool,
  ReadonlyRootfs: bool,
  SecurityOpt: strs,
  Tmpfs: strMap,
  ShmSize: int,
  Sysctls: strMap,
  Runtime: str,
  Init: bool,
  ConsoleSize: v.nullish(v.array(v.pipe(v.number(), v.integer()))),
  LogConfig: v.nullish(v.looseObject({ Type: str, Config: strMap })),
  Memory: int,
  MemoryReservation: int,
  MemorySwap: int,
  MemorySwappiness: int,
  NanoCpus: int,
  CpuShares: int,
  CpuPeriod: int,
  CpuQuota: int,
  CpuRealtimePeriod: int,
  CpuRealtimeRuntime: int,
  CpusetCpus: str,
  CpusetMems: str,
  PidsLimit: int,
  BlkioWeight: int,
  OomKillDisable: bool,
  OomScoreAdj: int,
  Ulimits: v.nullish(v.array(v.looseObject({ Name: v.string(), Soft: v.pipe(v.number(), v.integer()), Hard: v.pipe(v.number(), v.integer()) }))),
  Devices: v.nullish(v.array(v.looseObject({ PathOnHost: v.string(), PathInContainer: str, CgroupPermissions: str }))),
  CgroupParent: str,
  DeviceCgroupRules: strs,
  MaskedPaths: strs,
  ReadonlyPaths: strs,
});

export const ContainerConfigSchema = v.looseObject({
  Hostname: str,
  Domainname: str,
  User: str,
  AttachStdin: bool,
  AttachStdout: bool,
  AttachStderr: bool,
  ExposedPorts: emptyObjMap,
  Tty: bool,
  OpenStdin: bool,
  StdinOnce: bool,
  Env: strs,
  Cmd: strSlice,
  Healthcheck: v.nullish(HealthcheckSchema),
  ArgsEscaped: bool,
  Image: str,
  Volumes: emptyObjMap,
  WorkingDir: str,
  Entrypoint: strSlice,
  NetworkDisabled: bool,
  MacAddress: str,
  OnBuild: strs,
  Labels: strMap,
  StopSignal: str,
  StopTimeout: int,
  Shell: strSlice,
});

export const CreateBodySchema = v.looseObject({
  ...ContainerConfigSchema.entries,
  HostConfig: v.nullish(HostConfigSchema),
  NetworkingConfig: v.nullish(v.looseObject({ EndpointsConfig: v.nullish(v.record(v.string(), v.nullish(v.looseObject({})))) })),
});

export type CreateBody = v.InferOutput<typeof CreateBodySchema>;
export type HostConfig = v.InferOutput<typeof HostConfigSchema>;
export type ContainerConfig = v.InferOutput<typeof ContainerConfigSchema>;
