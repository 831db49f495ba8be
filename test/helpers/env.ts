/**
 * What the tests need from the machine, found once: root, the docker CLI, Debian's dockerd,
 * nft, busybox-static and friends; and `skipUnless`, which every skipped block goes through so
 * that the run says why a block did not run.
 */
import { existsSync } from "node:fs";

/** Running as root (the real-kernel tests need it). */
export const ROOT = process.getuid?.() === 0;
/** The docker CLI (28, at /usr/local/bin/docker; Debian's as a fallback). */
export const DOCKER = ["/usr/local/bin/docker", "/usr/bin/docker"].find((p) => existsSync(p));
/** The pinned buildx (scripts/peers/install.sh builds it), the docker CLI plugin behind `docker build`. */
export const BUILDX = [process.env.BUNKER_BUILDX, `${process.env.XDG_CACHE_HOME ?? `${process.env.HOME}/.cache`}/bunker-peers/buildx-v0.24.0/docker-buildx`].find((p): p is string => !!p && existsSync(p));
/** `nft`, to read the rules Bunker installs over netlink. */
export const NFT = Bun.which("nft");

/** Skips already reported, so a block's reason is printed once. */
const reported = new Set<string>();

/**
 * True (skip) when a requirement of `name` is missing; each missing one is named on stdout
 * ("skip: <name>: needs root, docker CLI"), as the summary shows only a count.
 */
export function skipUnless(name: string, needs: Record<string, unknown>): boolean {
  const missing = Object.entries(needs)
    .filter(([, have]) => !have)
    .map(([what]) => what);
  if (missing.length && !reported.has(name)) {
    reported.add(name);
    console.log(`skip: ${name}: needs ${missing.join(", ")}`);
  }
  return missing.length > 0;
}

/**
 * Wait until `cond` holds (polled every `every` ms), instead of sleeping a fixed time; throws
 * naming `what` when `timeout` ms pass first.
 */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, opts: { timeout?: number; every?: number } = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeout ?? 10_000);
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(opts.every ?? 20);
  }
}
