/**
 * Crash-safe metadata writes: write a temp file, fsync it, rename it over the target, fsync the
 * directory. A crash at any point leaves either the old or the new content, never a torn file.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { failpoint } from "./failpoints.ts";

/**
 * Atomically replace `path` with `content`. With `durable: false` the fsyncs are skipped: the
 * rename still makes a crash of the process leave the old or the new content, but a power cut may
 * lose the write; for state that dies with the machine anyway (live processes' state under /run).
 */
export function writeFileAtomic(path: string, content: string | Uint8Array, mode = 0o644, opts: { durable?: boolean } = {}): void {
  const durable = opts.durable ?? true;
  failpoint(`write ${path}`);
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const fd = openSync(tmp, "w", mode);
  try {
    if (typeof content === "string") writeSync(fd, content);
    else writeSync(fd, content);
    if (durable) fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  }
  closeSync(fd);
  failpoint(`rename ${path}`);
  renameSync(tmp, path);
  if (durable) fsyncDir(dir);
}

/** fsync a directory, making a rename or create in it durable. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
