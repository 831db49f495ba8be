/**
 * Test images made here, with no network: a busybox image from Debian's busybox-static, written
 * as a docker-archive (what `docker save` produces) with our own tar writer.
 */
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { digestOf } from "../../src/core/content/digest.ts";
import { fullHeader, type TarInput, writeTar } from "../../src/core/layer/tar-stream.ts";

export const BUSYBOX = ["/bin/busybox", "/usr/bin/busybox"].find((p) => Bun.file(p).size > 0);

const tarBytes = async (entries: TarInput[]) => Buffer.concat(await Array.fromAsync(writeTar(entries)));
const dir = (name: string): TarInput => ({ header: fullHeader({ name, type: "directory", mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1_700_000_000 }) });
const file = (name: string, body: Uint8Array, mode = 0o644): TarInput => ({ header: fullHeader({ name, type: "file", mode, uid: 0, gid: 0, size: body.length, mtime: 1_700_000_000 }), body });

/**
 * The busybox rootfs as a layer tar. `full`: every applet busybox has (in /bin), and the
 * directories a distribution image has, for the clients' own test suites that expect an
 * alpine- or busybox-like image.
 */
export async function busyboxLayer(opts: { full?: boolean } = {}): Promise<Buffer> {
  const bb = readFileSync(BUSYBOX!);
  const few = ["sh", "echo", "cat", "ls", "true", "false", "sleep", "id", "hostname", "ps", "env", "mount", "unshare", "grep", "head"];
  const all = opts.full ? Bun.spawnSync([BUSYBOX!, "--list"]).stdout.toString().split("\n").filter((a) => a && a !== "busybox") : few;
  const link = (name: string, target: string): TarInput => ({ header: fullHeader({ name, type: "symlink" as const, linkname: target, mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 1_700_000_000 }) });
  const extraDirs = opts.full ? ["root/", "home/", "var/", "var/tmp/", "var/opt/", "usr/", "usr/local/", "usr/local/bin/", "mnt/", "srv/", "opt/"] : [];
  return tarBytes([
    dir("bin/"),
    file("bin/busybox", bb, 0o755),
    ...all.map((a) => link(`bin/${a}`, "busybox")),
    dir("etc/"),
    file("etc/passwd", new TextEncoder().encode(`root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n${opts.full ? "postgres:x:70:70:postgres:/var/lib/postgresql:/bin/sh\n" : ""}`)),
    file("etc/group", new TextEncoder().encode(`root:x:0:\nnogroup:x:65534:\n${opts.full ? "postgres:x:70:\n" : ""}`)),
    ...(opts.full ? [file("etc/os-release", new TextEncoder().encode('NAME="busybox"\nID=busybox\n'))] : []),
    dir("tmp/"),
    ...extraDirs.map(dir),
    ...(opts.full ? [dir("usr/bin/"), link("usr/bin/env", "../../bin/busybox"), dir("sbin/"), link("sbin/init", "../bin/busybox")] : []),
  ]);
}

/** A docker-archive of one image with `layers` (uncompressed tars; `gzip` compresses them). */
export async function dockerArchive(opts: { tags: string[]; layers: Buffer[]; gzip?: boolean; cmd?: string[]; tamper?: boolean }): Promise<Buffer> {
  const diffIds = opts.layers.map((l) => digestOf(l));
  const config = {
    architecture: process.arch === "arm64" ? "arm64" : "amd64",
    os: "linux",
    created: "2026-01-01T00:00:00Z",
    config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: opts.cmd ?? ["sh"], Labels: { "org.example.test": "yes" } },
    rootfs: { type: "layers", diff_ids: diffIds },
    history: opts.layers.map((_, i) => ({ created: "2026-01-01T00:00:00Z", created_by: `layer ${i}` })),
  };
  const cfg = new TextEncoder().encode(JSON.stringify(config));
  const cfgName = `${digestOf(cfg).slice(7)}.json`;
  const entries: TarInput[] = [file(cfgName, cfg)];
  const layerPaths: string[] = [];
  opts.layers.forEach((l, i) => {
    let body: Uint8Array = opts.gzip ? gzipSync(l) : l;
    if (opts.tamper && i === opts.layers.length - 1) {
      body = Buffer.from(body);
      body[600] = body[600]! ^ 0x01;
    }
    const p = `${diffIds[i]!.slice(7)}/layer.tar`;
    layerPaths.push(p);
    entries.push(dir(`${diffIds[i]!.slice(7)}/`), file(p, body));
  });
  entries.push(file("manifest.json", new TextEncoder().encode(JSON.stringify([{ Config: cfgName, RepoTags: opts.tags, Layers: layerPaths }]))));
  return tarBytes(entries);
}

/** A layer tar holding `files` (path → content) under their directories. */
export async function filesLayer(files: Record<string, Uint8Array>): Promise<Buffer> {
  const dirs = new Set<string>();
  for (const p of Object.keys(files)) {
    const parts = p.split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(`${parts.slice(0, i).join("/")}/`);
  }
  return tarBytes([...[...dirs].sort().map(dir), ...Object.entries(files).map(([p, b]) => file(p, b))]);
}
