/**
 * `ADD <git URL> <dest>`: the repository fetched at the ref the URL's fragment names
 * (`#ref:subdir`, as BuildKit reads it) into a scratch directory with the git command, its
 * `.git` kept only with `--keep-git-dir`. The commit it resolved to is part of the step's
 * cache key.
 */
import { existsSync, realpathSync, rmSync } from "node:fs";
import { join, posix } from "node:path";
import { BuildError } from "./build-types.ts";

/** Whether `src` names a git repository (BuildKit's forms: git://, ssh, git@host:, https://….git). */
export function isGitUrl(src: string): boolean {
  if (/^(git:\/\/|ssh:\/\/|git@[^:]+:)/.test(src)) return true;
  return /^https?:\/\//.test(src) && /\.git(?:$|#)/.test(src);
}

async function git(args: string[], cwd: string): Promise<string> {
  const p = Bun.spawn(["git", ...args], { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, GIT_TERMINAL_PROMPT: "0", GIT_CONFIG_NOSYSTEM: "1", HOME: cwd } });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new BuildError(`failed to fetch git source: git ${args[0]}: ${err.trim() || `exit ${code}`}`);
  return out.trim();
}

/** Fetch `url` into `dir` (empty, existing); resolves with the tree to copy and the commit. */
export async function fetchGit(url: string, dir: string, keepGitDir: boolean): Promise<{ root: string; commit: string }> {
  if (!Bun.which("git")) throw new BuildError("ADD of a git repository needs the git command on the daemon's host");
  const hash = url.indexOf("#");
  const repo = hash < 0 ? url : url.slice(0, hash);
  const [ref = "", subdir = ""] = (hash < 0 ? "" : url.slice(hash + 1)).split(":");
  await git(["init", "-q", "."], dir);
  await git(["fetch", "-q", "--depth", "1", "--", repo, ref || "HEAD"], dir);
  await git(["-c", "advice.detachedHead=false", "checkout", "-q", "FETCH_HEAD"], dir);
  const commit = await git(["rev-parse", "HEAD"], dir);
  if (!keepGitDir) rmSync(join(dir, ".git"), { recursive: true, force: true });
  let root = dir;
  if (subdir) {
    const want = join(dir, posix.normalize(`/${subdir}`));
    if (!existsSync(want)) throw new BuildError(`failed to fetch git source: ${subdir}: no such directory in ${repo}`);
    root = realpathSync(want);
    if (root !== dir && !root.startsWith(`${dir}/`)) throw new BuildError(`failed to fetch git source: ${subdir} points outside the repository`);
  }
  return { root, commit };
}
