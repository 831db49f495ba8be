/**
 * The exporters a Solve names, run on the built image: `moby` (buildx's `--load` and `image`
 * outputs on a Docker-API engine: the image stays in Bunker's store and gets its names; a
 * `push` is done by buildx itself through `/images/{name}/push`, as with dockerd). The
 * response keys are BuildKit's. `local` and `tar` send the image's filesystem to the client
 * through its session's FileSend.
 */
import type { BuildService } from "../build/build-service.ts";
import { formatReference, parseWithDefaultTag } from "../image/reference.ts";
import { Code, GrpcError } from "../grpc/status.ts";
import type { BuiltImage } from "./jobs.ts";
import type { Progress } from "./progress.ts";
import type { DescMethodBiDiStreaming } from "@bufbuild/protobuf";
import { writeTar } from "../layer/tar-stream.ts";
import { FileSend } from "./gen/buildkit/session_pb.ts";
import { PacketSchema } from "./gen/buildkit/fsutil_pb.ts";
import { sendDir, treeAsTar } from "./fs-send.ts";
import type { Session } from "./sessions.ts";

/** One exporter as a Solve names it. */
export interface ExporterRequest {
  Type: string;
  Attrs: Record<string, string>;
}

/** Where an exporter sends files: the session and the exporter's index in the Solve. */
export interface ExportTarget {
  session: () => Promise<Session>;
  index: number;
}

/** fsutil packets on FileSend.DiffCopy: the method is declared with BytesMessage, but a directory export sends Packets on it. */
const FILESEND_PACKETS = { ...FileSend.method.diffCopy, input: PacketSchema, output: PacketSchema } as unknown as DescMethodBiDiStreaming<typeof PacketSchema, typeof PacketSchema>;

/** `--output type=local` (the image's filesystem into the client's directory) and `type=tar` (as a tar stream). */
async function exportFiles(builds: BuildService, e: ExporterRequest, image: BuiltImage, progress: Progress, target: ExportTarget): Promise<Record<string, string>> {
  const session = await target.session();
  if (!session.supports("/moby.filesync.v1.FileSend/DiffCopy")) throw new GrpcError(Code.FAILED_PRECONDITION, "method /moby.filesync.v1.FileSend/diffcopy not supported by the client");
  const md = { "buildkit-attachable-exporter-id": String(target.index) };
  await builds.withImageRoot(image.id, (root) =>
    progress.step(e.Type === "local" ? "exporting to client directory" : "exporting to client tarball", async (v) => {
      if (e.Type === "local") {
        const sent = await sendDir(session.client.open(FILESEND_PACKETS, md), root);
        v.status(`copying files ${sent.bytes}B`);
        return;
      }
      const call = session.client.open(FileSend.method.diffCopy, md);
      const done = (async () => {
        for await (const _ of call.responses) void _;
      })();
      for await (const chunk of writeTar(treeAsTar(root))) await call.send({ data: chunk });
      call.end();
      await done;
      v.status("sending tarball");
    }),
  );
  return {};
}

/** Export `image` with `e`; resolves with the exporter's response entries. */
export async function exportImage(builds: BuildService, e: ExporterRequest, image: BuiltImage, progress: Progress, target: ExportTarget): Promise<Record<string, string>> {
  if (e.Type === "local" || e.Type === "tar") return exportFiles(builds, e, image, progress, target);
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
