/**
 * Build and protocol version facts. `scripts/build.ts` replaces the `BUNKER_BUILD_*` globals with
 * literals through `bun build --define`; when running from source they fall back to "dev" values.
 */
import pkg from "../../package.json" with { type: "json" };

declare const BUNKER_BUILD_COMMIT: string | undefined;
declare const BUNKER_BUILD_TIME: string | undefined;

/** Bunker's own release version, from package.json. */
export const VERSION: string = pkg.version;
/** Git commit the executable was built from (short hash), or "dev". */
export const GIT_COMMIT: string = typeof BUNKER_BUILD_COMMIT === "string" ? BUNKER_BUILD_COMMIT : "dev";
/** Build time in RFC 3339, or the empty string when running from source. */
export const BUILD_TIME: string = typeof BUNKER_BUILD_TIME === "string" ? BUNKER_BUILD_TIME : "";

/** The Docker Engine API version Bunker speaks (what Docker 28.3–28.5 advertises). */
export const API_VERSION = "1.51";
/** The oldest API version accepted on a versioned path (moby's MinSupportedAPIVersion). */
export const MIN_API_VERSION = "1.24";

/** Docker's `GOARCH` naming for the running CPU. */
export function goArch(arch: string = process.arch): string {
  return arch === "x64" ? "amd64" : arch === "ia32" ? "386" : arch;
}

/** Compare dotted API versions numerically: negative when a < b. */
export function compareApiVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
