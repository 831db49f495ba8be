/**
 * `moby.buildkit.v1.Control` as Bunker serves it: one worker, Solve (the Dockerfile frontend
 * run directly for `buildctl --frontend dockerfile.v0`, or the gateway client's result awaited
 * for buildx), the Status stream of a job, Info.
 */
import { hostname } from "node:os";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { VERSION } from "../version.ts";
import type { ServiceImpl } from "../grpc/server.ts";
import { Code, GrpcError } from "../grpc/status.ts";
import type { Control } from "./gen/buildkit/control_pb.ts";
import type { WorkerRecordSchema } from "./gen/buildkit/types_pb.ts";
import type { Result } from "./gen/buildkit/gateway_pb.ts";
import { exportImage, type ExporterRequest } from "./export-image.ts";
import { runDockerfile, type FrontendDeps } from "./frontend.ts";
import type { BuiltImage, Job, Jobs } from "./jobs.ts";
import { Progress } from "./progress.ts";

/** What the control service uses. */
export interface ControlDeps extends FrontendDeps {
  jobs: Jobs;
}

/** The one worker: Bunker's builder. */
export function worker(deps: ControlDeps): MessageInitShape<typeof WorkerRecordSchema> {
  return {
    ID: `bunker-${hostname()}`,
    Labels: {
      "org.mobyproject.buildkit.worker.executor": "bunker",
      "org.mobyproject.buildkit.worker.hostname": hostname(),
      "org.mobyproject.buildkit.worker.network": "bridge",
    },
    platforms: deps.platforms().map((p) => {
      const [OS = "linux", Architecture = "amd64", Variant = ""] = p.split("/");
      return { OS, Architecture, Variant };
    }),
    BuildkitVersion: { package: "bunker", version: VERSION, revision: "" },
  };
}

/** A build-cache entry as BuildKit's UsageRecord. */
function usageRecord(r: { id: string; type: string; size: number; createdAt: number; lastUsedAt?: number; inUse: boolean; description: string }) {
  return {
    ID: r.id,
    Mutable: r.type === "exec.cachemount",
    InUse: r.inUse,
    Size: BigInt(r.size),
    CreatedAt: timestampFromMs(r.createdAt),
    ...(r.lastUsedAt ? { LastUsedAt: timestampFromMs(r.lastUsedAt) } : {}),
    UsageCount: 1n,
    Description: r.description,
    RecordType: r.type,
  };
}

/** The image a gateway result names. */
function imageOf(job: Job, result: Result | undefined): BuiltImage | undefined {
  const r = result?.result;
  if (!r || r.case === undefined) return undefined;
  const id = r.case === "ref" ? r.value.id : r.case === "refDeprecated" ? r.value : undefined;
  if (r.case === "refs") throw new GrpcError(Code.UNIMPLEMENTED, "multi-platform results are not supported by Bunker's builder yet");
  if (!id) return undefined;
  const img = job.refs.get(id);
  if (!img) throw new GrpcError(Code.NOT_FOUND, `no such result ref ${id}`);
  return img;
}

/** The Control service's implementation. */
export function controlService(deps: ControlDeps): ServiceImpl<(typeof Control)["method"]> {
  return {
    async diskUsage(req) {
      const filters = req.filter.filter(Boolean);
      if (filters.length) throw new GrpcError(Code.UNIMPLEMENTED, `build cache usage filters (${filters.join(", ")}) are not supported by Bunker yet`);
      const records = await (await deps.builds()).usage();
      return { record: records.map(usageRecord) };
    },
    async prune(req, send) {
      // Filters and space limits would prune a subset: refused rather than ignored.
      const filters = req.filter.filter(Boolean);
      if (filters.length) throw new GrpcError(Code.UNIMPLEMENTED, `build cache prune filters (${filters.join(", ")}) are not supported by Bunker yet`);
      if (req.keepDuration || req.reservedSpace || req.maxUsedSpace || req.minFreeSpace)
        throw new GrpcError(Code.UNIMPLEMENTED, "build cache prune with --keep-storage, --max-used-space, --min-free-space or an age is not supported by Bunker yet");
      const builds = await deps.builds();
      const before = new Map((await builds.usage()).map((r) => [r.id, r]));
      const pruned = await builds.prune();
      for (const id of pruned.CachesDeleted) {
        const r = before.get(id.replace(/^sha256:/, "").slice(0, 12)) ?? before.get(id);
        await send(usageRecord(r ?? { id, type: "regular", size: 0, createdAt: 0, inUse: false, description: "" }));
      }
    },
    async listWorkers() {
      return { record: [worker(deps)] };
    },
    async info() {
      return { buildkitVersion: { package: "bunker", version: VERSION, revision: "" } };
    },
    async status(req, send, ctx) {
      const job = deps.jobs.open(req.Ref);
      for await (const u of job.follow(ctx.signal)) await send(u);
    },
    async solve(req, ctx) {
      const job = deps.jobs.open(req.Ref);
      job.sessionId = req.Session;
      job.frontendAttrs = req.FrontendAttrs;
      job.entitlements = req.Entitlements;
      try {
        let image: BuiltImage | undefined;
        if (req.Frontend) {
          if (req.Frontend !== "dockerfile.v0") throw new GrpcError(Code.UNIMPLEMENTED, `frontend ${req.Frontend} not found: Bunker's builder is the dockerfile.v0 frontend`);
          image = await runDockerfile(deps, job, req.FrontendAttrs);
        } else if (req.Definition?.def.length) {
          throw new GrpcError(Code.UNIMPLEMENTED, "solving an LLB definition is not supported: Bunker builds Dockerfiles (frontend dockerfile.v0)");
        } else {
          const abort = new Promise<never>((_, bad) => ctx.signal.addEventListener("abort", () => bad(new GrpcError(Code.CANCELLED, "context canceled"))));
          const r = await Promise.race([job.result, abort]);
          if (r.error) throw new GrpcError(Code.UNKNOWN, r.error);
          image = imageOf(job, r.result);
        }
        const exporters: ExporterRequest[] = req.Exporters.length ? req.Exporters : req.ExporterDeprecated ? [{ Type: req.ExporterDeprecated, Attrs: req.ExporterAttrsDeprecated }] : [];
        const response: Record<string, string> = {};
        if (exporters.length && !image) throw new GrpcError(Code.INVALID_ARGUMENT, "the build returned no image to export");
        const progress = new Progress(job);
        if (ctx.signal.aborted) throw new GrpcError(Code.CANCELLED, "context canceled");
        for (const [index, e] of exporters.entries()) Object.assign(response, await exportImage(await deps.builds(), e, image!, progress, { session: () => deps.sessions.get(job.sessionId), index }));
        return { ExporterResponse: response };
      } finally {
        deps.jobs.close(job);
      }
    },
  };
}
