/**
 * `moby.buildkit.v1.frontend.LLBBridge` as Bunker serves it to buildx's gateway client: Ping
 * (capabilities and the worker), Solve with the `dockerfile.v0` frontend (run at once; the
 * image becomes a ref of the job), Return (the client's result for the job's exporters),
 * ResolveImageConfig from the local store, Warn. Calls find their job by the
 * `buildkit-controlapi-buildid` metadata, waiting for its Solve as BuildKit's forwarder does.
 */
import type { ServiceImpl, CallContext } from "../grpc/server.ts";
import { Code, GrpcError } from "../grpc/status.ts";
import type { LLBBridge } from "./gen/buildkit/gateway_pb.ts";
import { worker, type ControlDeps } from "./control.ts";
import { runDockerfile } from "./frontend.ts";
import type { Job } from "./jobs.ts";

const CAPS = ["solve.base", "solve.inlinereturn", "resolveimage", "resolveimage.resolvemode", "return", "frontend.inputs", "gateway.solve.metadata", "gateway.evaluate", "gateway.solve.evaluate", "gateway.warnings"];

/** What the gateway needs beyond the control service's dependencies. */
export interface GatewayDeps extends ControlDeps {
  /** A local image's ID and config JSON, or undefined. */
  imageConfig: (name: string) => Promise<{ id: string; config: unknown } | undefined>;
}

async function jobOf(deps: ControlDeps, ctx: CallContext): Promise<Job> {
  const id = String(ctx.metadata["buildkit-controlapi-buildid"] ?? "");
  if (!id) throw new GrpcError(Code.INVALID_ARGUMENT, "no buildid found in the context (buildkit-controlapi-buildid)");
  const job = await deps.jobs.wait(id, 3_000);
  if (!job) throw new GrpcError(Code.NOT_FOUND, `no such job ${id}`);
  return job;
}

let refSeq = 0;

/** The LLBBridge service's implementation. */
export function gatewayService(deps: GatewayDeps): ServiceImpl<(typeof LLBBridge)["method"]> {
  return {
    async ping() {
      return { FrontendAPICaps: CAPS.map((ID) => ({ ID, Enabled: true })), LLBCaps: [], Workers: [worker(deps)] };
    },
    async solve(req, ctx) {
      const job = await jobOf(deps, ctx);
      if (!req.Frontend) {
        if (req.Definition?.def.length) throw new GrpcError(Code.UNIMPLEMENTED, "solving an LLB definition is not supported: Bunker builds Dockerfiles (frontend dockerfile.v0)");
        return {};
      }
      if (req.Frontend !== "dockerfile.v0") throw new GrpcError(Code.UNIMPLEMENTED, `frontend ${req.Frontend} not found: Bunker's builder is the dockerfile.v0 frontend`);
      const opts = { ...job.frontendAttrs, ...req.FrontendOpt };
      const call = opts.requestid;
      if (call && call !== "frontend.build") throw new GrpcError(Code.UNIMPLEMENTED, `unsupported request ${call}: Bunker's builder only builds (no --call ${call.replace(/^frontend\./, "")})`);
      const image = await runDockerfile(deps, job, opts);
      const id = `bunker-ref-${++refSeq}`;
      job.refs.set(id, image);
      const metadata = { "containerimage.config": new TextEncoder().encode(JSON.stringify(image.config)) };
      return { ref: id, result: { result: { case: "ref", value: { id } }, metadata } };
    },
    async return(req, ctx) {
      const job = await jobOf(deps, ctx);
      const err = req.error && req.error.code !== 0 ? req.error.message || `build failed (code ${req.error.code})` : undefined;
      job.setResult(err ? { error: err } : req.result ? { result: req.result } : {});
      return {};
    },
    async evaluate() {
      // Refs are built when they are solved, so there is nothing left to evaluate.
      return {};
    },
    async resolveImageConfig(req) {
      const found = await deps.imageConfig(req.Ref);
      if (!found) throw new GrpcError(Code.NOT_FOUND, `${req.Ref}: not found`);
      return { Digest: found.id, Config: new TextEncoder().encode(JSON.stringify(found.config)), Ref: req.Ref };
    },
    async warn(req, ctx) {
      const job = await jobOf(deps, ctx);
      job.publish({ warnings: [{ vertex: req.digest, level: req.level, short: req.short, detail: req.detail, url: req.url }] });
      return {};
    },
  };
}
