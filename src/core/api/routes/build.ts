/**
 * `POST /build` (the classic builder) and `POST /build/prune`. The context (a tar, optionally
 * compressed) is read whole and unpacked with the secure layer code into a private directory
 * before any output is written (clients such as the docker CLI expect that); `.dockerignore`
 * is applied there too. Output is the classic builder's `stream` lines, `aux` with the image ID
 * and an `errorDetail` (with a failing RUN's exit code) when the build fails.
 */
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, posix } from "node:path";
import * as v from "valibot";
import type { ContainerService } from "../../container/container-service.ts";
import { EngineError, invalidArgument, messageOf } from "../../errors.ts";
import type { ImageService } from "../../image/image-service.ts";
import type { Sys } from "../../sys/sys.ts";
import { truthy } from "../http/request.ts";
import type { Route } from "../router.ts";

const StringMap = v.record(v.string(), v.nullable(v.string()));

/** Remove what `.dockerignore` excludes (the Dockerfile and .dockerignore stay, as Docker keeps them). */
async function applyDockerignore(dir: string, keep: string[]): Promise<(path: string) => boolean> {
  const file = join(dir, ".dockerignore");
  if (!existsSync(file)) return () => false;
  const { DockerIgnore } = await import("../../build/dockerignore.ts");
  const ig = new DockerIgnore(readFileSync(file, "utf8"));
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const p = rel ? `${rel}/${name}` : name;
      if (keep.includes(p)) continue;
      const isDir = lstatSync(join(dir, p)).isDirectory();
      if (ig.excludes(p)) {
        if (isDir && ig.hasExceptionsUnder(p)) walk(p);
        else rmSync(join(dir, p), { recursive: true, force: true });
        continue;
      }
      if (isDir) walk(p);
    }
  };
  walk("");
  return (p) => ig.excludes(posix.normalize(`/${p}`).slice(1));
}

/** The build routes. */
export function buildRoutes(deps: { images: () => Promise<ImageService>; containers: () => Promise<ContainerService>; sys: () => Sys; tmpRoot: string; cacheFile: string }): Route[] {
  return [
    {
      method: "POST",
      path: "/build",
      handler: async ({ req, res }) => {
        const q = req.query;
        if (q.get("remote")) throw invalidArgument("building from a remote context (remote=) is not supported; send the context as the request body");
        const json = (name: string) => {
          const raw = q.get(name);
          if (!raw) return {};
          try {
            return v.parse(StringMap, JSON.parse(raw));
          } catch {
            throw invalidArgument(`invalid ${name}: want a JSON object of strings`);
          }
        };
        const buildArgs = json("buildargs");
        const labels = Object.fromEntries(Object.entries(json("labels")).map(([k, val]) => [k, val ?? ""]));
        mkdirSync(deps.tmpRoot, { recursive: true, mode: 0o700 });
        const dir = mkdtempSync(join(deps.tmpRoot, "build-"));
        try {
          // The whole context first: nothing is written before the request body is read.
          const [{ applyLayer }, { decompressStream }] = await Promise.all([import("../../layer/apply.ts"), import("../../layer/compression.ts")]);
          try {
            const { stream } = await decompressStream(req.stream());
            await applyLayer(deps.sys(), dir, stream, { whiteouts: "literal", chown: false, sync: false });
          } catch (err) {
            throw invalidArgument(`failed to read the build context: ${messageOf(err)}`);
          }
          const dockerfile = q.get("dockerfile") || "Dockerfile";
          const excluded = await applyDockerignore(dir, [dockerfile, ".dockerignore"]);
          // moby's removeDockerfile: the Dockerfile and .dockerignore reach the builder even when
          // excluded, then leave the context if .dockerignore names them (docker-py names an
          // out-of-context Dockerfile there).
          const dfFile = join(dir, posix.normalize(`/${dockerfile}`).slice(1));
          const dockerfileText = existsSync(dfFile) ? readFileSync(dfFile, "utf8") : undefined;
          for (const f of [".dockerignore", dockerfile]) if (excluded(f)) rmSync(join(dir, posix.normalize(`/${f}`).slice(1)), { force: true });
          // Before any output: dockerd answers 500 when there is no Dockerfile (an empty context, say).
          if (dockerfileText === undefined) throw new EngineError("internal", `Cannot locate specified Dockerfile: ${dockerfile}`);
          // An empty one (only blanks and comments) is refused before any output too, as dockerd does.
          if (!dockerfileText.split("\n").some((l) => l.trim() && !l.trim().startsWith("#"))) throw invalidArgument(`the Dockerfile (${dockerfile}) cannot be empty`);
          const list = (name: string) => q.getAll(name).flatMap((x) => (x.startsWith("[") ? (JSON.parse(x) as string[]) : x.split(","))).filter(Boolean);
          let cacheFrom: string[];
          try {
            cacheFrom = list("cachefrom");
          } catch {
            throw invalidArgument("invalid cachefrom: want a JSON array of image names");
          }
          const extraHosts = list("extrahosts");
          const [images, containers, { build, BuildError }] = await Promise.all([deps.images(), deps.containers(), import("../../build/builder.ts")]);
          const quiet = truthy(q.get("q"));
          const out = res.stream(200, "application/json");
          let chain: Promise<void> = Promise.resolve();
          const send = (obj: unknown) => {
            const line = JSON.stringify(obj) + "\n";
            chain = chain.then(() => out.write(line));
          };
          try {
            const id = await build(
              { sys: deps.sys(), images, containers, cacheFile: deps.cacheFile },
              {
                context: dir,
                dockerfile,
                ...(dockerfileText !== undefined ? { dockerfileText } : {}),
                ...(cacheFrom.length ? { cacheFrom } : {}),
                ...(extraHosts.length ? { extraHosts } : {}),
                tags: q.getAll("t"),
                buildArgs,
                labels,
                ...(q.get("target") ? { target: q.get("target")! } : {}),
                noCache: truthy(q.get("nocache")),
                pull: truthy(q.get("pull")),
                ...(q.get("networkmode") && q.get("networkmode") !== "default" ? { network: q.get("networkmode")! } : {}),
                out: (text) => {
                  if (!quiet) send({ stream: text });
                },
                pullImage: (name) => images.pull(name, { progress: (m) => (quiet ? undefined : send(m)) }).then(() => {}),
              },
            );
            send({ aux: { ID: id } });
            if (quiet) send({ stream: `${id}\n` });
            else send({ stream: `Successfully built ${id.slice(7, 19)}\n` });
            for (const t of q.getAll("t")) {
              const shown = images.tag(id, t);
              if (!quiet) send({ stream: `Successfully tagged ${shown}\n` });
            }
          } catch (err) {
            const code = err instanceof BuildError ? err.exitCode : 1;
            send({ errorDetail: { code, message: messageOf(err) }, error: messageOf(err) });
          }
          await chain;
          out.end();
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    },
    {
      method: "POST",
      path: "/build/prune",
      handler: async ({ res }) => res.json(200, await (await deps.images()).pruneBuildCache()),
    },
  ];
}
