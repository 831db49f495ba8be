/**
 * Manifests, indexes and image configs: Docker image manifest v2 schema 2 and manifest lists, OCI
 * image manifests and indexes, validated with valibot. A document whose declared media type
 * disagrees with the transport's Content-Type, or that carries both `manifests` and `layers`, is
 * refused (the ambiguity behind CVE-2021-41190). Also: platform selection from an index, and
 * diff IDs to chain IDs as Docker computes them.
 */
import * as v from "valibot";
import { type Digest, isDigest } from "../content/digest.ts";
import { invalidArgument, notFound } from "../errors.ts";
import { formatIssues } from "../validate.ts";

export const MediaTypes = {
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerForeignLayerGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  ociLayerNondistGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
} as const;

const MANIFEST_TYPES: readonly string[] = [MediaTypes.dockerManifest, MediaTypes.ociManifest];
const INDEX_TYPES: readonly string[] = [MediaTypes.dockerManifestList, MediaTypes.ociIndex];
const CONFIG_TYPES: readonly string[] = [MediaTypes.dockerConfig, MediaTypes.ociConfig];
/** Layer media types the engine can unpack (compression is still detected from the bytes). */
export const LAYER_TYPES: readonly string[] = [
  MediaTypes.dockerLayerGzip,
  MediaTypes.dockerForeignLayerGzip,
  MediaTypes.ociLayer,
  MediaTypes.ociLayerGzip,
  MediaTypes.ociLayerZstd,
  MediaTypes.ociLayerNondistGzip,
  "application/vnd.oci.image.layer.nondistributable.v1.tar",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

const DigestSchema = v.pipe(v.string(), v.check(isDigest, "invalid digest")) as unknown as v.GenericSchema<string, Digest>;

const PlatformSchema = v.object({
  architecture: v.string(),
  os: v.string(),
  "os.version": v.optional(v.string()),
  "os.features": v.optional(v.array(v.string())),
  variant: v.optional(v.string()),
});
export type Platform = v.InferOutput<typeof PlatformSchema>;

const DescriptorSchema = v.object({
  mediaType: v.string(),
  digest: DigestSchema,
  size: v.pipe(v.number(), v.integer(), v.minValue(0)),
  urls: v.optional(v.array(v.string())),
  annotations: v.optional(v.record(v.string(), v.string())),
  platform: v.optional(PlatformSchema),
  artifactType: v.optional(v.string()),
});
export type Descriptor = v.InferOutput<typeof DescriptorSchema>;

const ManifestSchema = v.object({
  schemaVersion: v.literal(2),
  mediaType: v.optional(v.string()),
  config: DescriptorSchema,
  layers: v.array(DescriptorSchema),
  annotations: v.optional(v.record(v.string(), v.string())),
  subject: v.optional(DescriptorSchema),
  artifactType: v.optional(v.string()),
});
const IndexSchema = v.object({
  schemaVersion: v.literal(2),
  mediaType: v.optional(v.string()),
  manifests: v.array(DescriptorSchema),
  annotations: v.optional(v.record(v.string(), v.string())),
});

/** An image manifest. */
export type ImageManifest = v.InferOutput<typeof ManifestSchema> & { kind: "manifest"; mediaType: string };
/** A manifest list or index. */
export type ImageIndex = v.InferOutput<typeof IndexSchema> & { kind: "index"; mediaType: string };

/**
 * Parse a manifest or index. `contentType` is the registry's Content-Type (or the descriptor's
 * media type) when known; it must agree with the document.
 */
export function parseManifest(bytes: Uint8Array | string, contentType?: string): ImageManifest | ImageIndex {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(typeof bytes === "string" ? bytes : new TextDecoder().decode(bytes));
  } catch (err) {
    throw invalidArgument(`manifest is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw invalidArgument("manifest is not a JSON object");
  if ("manifests" in doc && ("layers" in doc || "config" in doc)) {
    throw invalidArgument("ambiguous manifest: it has both `manifests` and `layers`/`config`");
  }
  const ct = contentType?.split(";")[0]!.trim();
  const declared = typeof doc.mediaType === "string" ? doc.mediaType : undefined;
  if (declared && ct && ct !== "application/json" && declared !== ct) {
    throw invalidArgument(`manifest mediaType ${declared} does not match Content-Type ${ct}`);
  }
  const mediaType = declared ?? (ct && ct !== "application/json" ? ct : "manifests" in doc ? MediaTypes.ociIndex : MediaTypes.ociManifest);
  if (INDEX_TYPES.includes(mediaType)) {
    const r = v.safeParse(IndexSchema, doc);
    if (!r.success) throw invalidArgument(`invalid image index: ${formatIssues(r.issues)}`);
    return { ...r.output, kind: "index", mediaType };
  }
  if (MANIFEST_TYPES.includes(mediaType)) {
    const r = v.safeParse(ManifestSchema, doc);
    if (!r.success) throw invalidArgument(`invalid image manifest: ${formatIssues(r.issues)}`);
    if (!CONFIG_TYPES.includes(r.output.config.mediaType) && !r.output.artifactType) {
      throw invalidArgument(`unsupported config media type ${r.output.config.mediaType}`);
    }
    for (const l of r.output.layers) if (!LAYER_TYPES.includes(l.mediaType)) throw invalidArgument(`unsupported layer media type ${l.mediaType}`);
    return { ...r.output, kind: "manifest", mediaType };
  }
  throw invalidArgument(`unsupported manifest media type ${mediaType}`);
}

/** Docker's spelling of the host platform (`linux/amd64`, `linux/arm64/v8`). */
export function hostPlatform(arch: string = process.arch): Platform {
  if (arch === "arm64") return { os: "linux", architecture: "arm64", variant: "v8" };
  if (arch === "arm") return { os: "linux", architecture: "arm", variant: "v7" };
  return { os: "linux", architecture: arch === "x64" ? "amd64" : arch };
}

/** Parse `os/arch[/variant]`, normalising aliases (`x86_64`, `aarch64`, `armhf`). */
export function parsePlatform(s: string): Platform {
  const [os, arch, variant] = s.toLowerCase().split("/");
  if (!os || !arch) throw invalidArgument(`invalid platform ${JSON.stringify(s)}: expected os/arch[/variant]`);
  return normalizePlatform({ os, architecture: arch, ...(variant ? { variant } : {}) });
}

/** containerd's normalisation: arm64 defaults to v8, arm to v7, aliases to Go names. */
export function normalizePlatform(p: Platform): Platform {
  const alias: Record<string, [string, string?]> = {
    x86_64: ["amd64"],
    "x86-64": ["amd64"],
    aarch64: ["arm64"],
    armhf: ["arm", "v7"],
    armel: ["arm", "v6"],
    i386: ["386"],
  };
  const [architecture, impliedVariant] = alias[p.architecture] ?? [p.architecture];
  let variant = p.variant ?? impliedVariant;
  if (architecture === "arm64" && (variant === undefined || variant === "8")) variant = "v8";
  if (architecture === "arm" && variant === undefined) variant = "v7";
  if (architecture === "arm" && variant && /^\d$/.test(variant)) variant = `v${variant}`;
  return { ...p, architecture, ...(variant ? { variant } : {}) };
}

/**
 * Pick the manifest for `want` from an index: exact os/arch/variant first, then (for arm) an older
 * compatible variant. Attestation entries (platform unknown/unknown) never match.
 */
export function selectPlatform(index: ImageIndex, want: Platform = hostPlatform()): Descriptor {
  const w = normalizePlatform(want);
  const candidates = index.manifests.filter((d) => d.platform && d.platform.os === w.os && normalizePlatform(d.platform).architecture === w.architecture);
  const variantOf = (d: Descriptor) => normalizePlatform(d.platform!).variant;
  const exact = candidates.find((d) => variantOf(d) === w.variant);
  if (exact) return exact;
  if (w.architecture === "arm" && w.variant) {
    const rank = (x?: string) => Number(x?.slice(1) ?? 0);
    const compatible = candidates.filter((d) => rank(variantOf(d)) <= rank(w.variant)).sort((a, b) => rank(variantOf(b)) - rank(variantOf(a)));
    if (compatible[0]) return compatible[0];
  }
  if (!w.variant && candidates[0]) return candidates[0];
  const have = index.manifests.filter((d) => d.platform).map((d) => `${d.platform!.os}/${d.platform!.architecture}${d.platform!.variant ? `/${d.platform!.variant}` : ""}`);
  throw notFound(`no matching manifest for ${w.os}/${w.architecture}${w.variant ? `/${w.variant}` : ""} in the manifest list entries (have: ${have.join(", ") || "none"})`);
}

const HealthSchema = v.object({
  Test: v.optional(v.nullable(v.array(v.string()))),
  Interval: v.optional(v.number()),
  Timeout: v.optional(v.number()),
  StartPeriod: v.optional(v.number()),
  StartInterval: v.optional(v.number()),
  Retries: v.optional(v.number()),
});
const ContainerConfigSchema = v.object({
  User: v.optional(v.string()),
  ExposedPorts: v.optional(v.nullable(v.record(v.string(), v.unknown()))),
  Env: v.optional(v.nullable(v.array(v.string()))),
  Entrypoint: v.optional(v.nullable(v.array(v.string()))),
  Cmd: v.optional(v.nullable(v.array(v.string()))),
  Volumes: v.optional(v.nullable(v.record(v.string(), v.unknown()))),
  WorkingDir: v.optional(v.string()),
  Labels: v.optional(v.nullable(v.record(v.string(), v.string()))),
  StopSignal: v.optional(v.string()),
  Healthcheck: v.optional(v.nullable(HealthSchema)),
  ArgsEscaped: v.optional(v.boolean()),
  OnBuild: v.optional(v.nullable(v.array(v.string()))),
  Shell: v.optional(v.nullable(v.array(v.string()))),
});
const HistorySchema = v.object({
  created: v.optional(v.string()),
  created_by: v.optional(v.string()),
  author: v.optional(v.string()),
  comment: v.optional(v.string()),
  empty_layer: v.optional(v.boolean()),
});
const ImageConfigSchema = v.object({
  architecture: v.string(),
  os: v.string(),
  variant: v.optional(v.string()),
  // An image without layers may say null for its time and its diff IDs (dockerd loads it).
  created: v.optional(
    v.pipe(
      v.nullable(v.string()),
      v.transform((x) => x ?? undefined),
    ),
  ),
  author: v.optional(v.string()),
  config: v.optional(v.nullable(ContainerConfigSchema)),
  rootfs: v.object({
    type: v.literal("layers"),
    diff_ids: v.pipe(
      v.nullable(v.array(DigestSchema)),
      v.transform((x) => x ?? []),
    ),
  }),
  history: v.optional(v.nullable(v.array(HistorySchema))),
  // Docker's own fields of a local image (commit, classic build): shown by inspect.
  comment: v.optional(v.string()),
  container: v.optional(v.string()),
  container_config: v.optional(v.nullable(v.looseObject({}))),
  docker_version: v.optional(v.string()),
});
/** An image configuration (the JSON whose digest is the image ID). */
export type ImageConfig = v.InferOutput<typeof ImageConfigSchema>;

/** Parse and validate an image config; unknown fields are kept by the raw bytes, not here. */
export function parseImageConfig(bytes: Uint8Array | string): ImageConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof bytes === "string" ? bytes : new TextDecoder().decode(bytes));
  } catch (err) {
    throw invalidArgument(`image config is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const r = v.safeParse(ImageConfigSchema, doc);
  if (!r.success) throw invalidArgument(`invalid image config: ${formatIssues(r.issues)}`);
  const nonEmpty = (r.output.history ?? []).filter((h) => !h.empty_layer).length;
  if (r.output.history?.length && nonEmpty !== r.output.rootfs.diff_ids.length) {
    throw invalidArgument(`invalid image config: history has ${nonEmpty} layers but rootfs has ${r.output.rootfs.diff_ids.length} diff IDs`);
  }
  return r.output;
}

export { chainIds } from "../content/digest.ts";
