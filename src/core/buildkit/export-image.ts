/**
 * The exporters a Solve names, run on the built image: `moby` (buildx's `--load` and `image`
 * outputs on a Docker-API engine: the image stays in Bunker's store and gets its names; a
 * `push` is done by buildx itself through `/images/{name}/push`, as with dockerd). The
 * response keys are BuildKit's.
 */
import type { BuildService } from "../build/build-service.ts";
import { formatReference, parseWithDefaultTag } from "../image/reference.ts";
import { Code, GrpcError } from "../grpc/status.ts";
import type { BuiltImage } from "./jobs.ts";
import type { Progress } from "./progress.ts";

/** One exporter as a Solve names it. */
export interface ExporterRequest {
  Type: string;
  Attrs: Record<string, string>;
}

/** Export `image` with `e`; resolves with the exporter's response entries. */
export async function exportImage(builds: BuildService, e: ExporterRequest, image: BuiltImage, progress: Progress): Promise<Record<string, string>> {
  if (e.Type !== "moby" && e.Type !== "image") throw new GrpcError(Code.UNIMPLEMENTED, `exporter "${e.Type}" is not supported by Bunker yet`);
  const names = (e.Attrs.name ?? "")
    .split(",")
    .map((n) => n.trim())
    .filter(Boolean);
  let full: string[] = [];
  try {
    full = names.map((n) => formatReference(parseWithDefaultTag(n)));
  } catch (err) {
    throw new GrpcError(Code.INVALID_ARGUMENT, `invalid reference format: ${(err as Error).message}`);
  }
  await progress.step("exporting to image", async (v) => {
    v.status("exporting layers");
    v.status(`writing image ${image.id}`);
    for (const n of full) {
      await builds.tag(image.id, [n]);
      v.status(`naming to ${n}`);
    }
  });
  return { "containerimage.config.digest": image.id, "containerimage.digest": image.id, ...(names.length ? { "image.name": full.join(",") } : {}) };
}
