/**
 * Content digests (`sha256:<hex>`, `sha512:<hex>`): parsing with the OCI grammar, and hashing
 * with Bun's native hasher. A malformed digest is an invalid-argument error naming the string.
 */
import { invalidArgument } from "../errors.ts";

/** Algorithms the engine verifies. */
export type DigestAlgorithm = "sha256" | "sha512";

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

/** A validated digest string such as `sha256:…`. */
export type Digest = string & { readonly __digest: unique symbol };

/** The parts of a digest. */
export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
}

/**
 * Parse and validate a digest. The OCI grammar allows other algorithms; the engine accepts the
 * two it can verify and refuses the rest, so nothing unverifiable is ever stored.
 */
export function parseDigest(s: string): ParsedDigest {
  const m = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/.exec(s);
  if (!m) throw invalidArgument(`invalid digest ${JSON.stringify(s)}: expected <algorithm>:<hex>`);
  const algorithm = m[1]!;
  const hex = m[2]!;
  if (algorithm !== "sha256" && algorithm !== "sha512") throw invalidArgument(`unsupported digest algorithm ${JSON.stringify(algorithm)} in ${s}`);
  if (hex.length !== HEX_LENGTH[algorithm] || !/^[a-f0-9]+$/.test(hex)) {
    throw invalidArgument(`invalid digest ${JSON.stringify(s)}: ${algorithm} needs ${HEX_LENGTH[algorithm]} lower-case hex digits`);
  }
  return { algorithm, hex };
}

/** Validate and brand a digest string. */
export function asDigest(s: string): Digest {
  parseDigest(s);
  return s as Digest;
}

/** True when `s` is a valid digest. */
export function isDigest(s: string): s is Digest {
  try {
    parseDigest(s);
    return true;
  } catch {
    return false;
  }
}

/** An incremental hasher producing a Digest. */
export class Digester {
  private readonly hasher: Bun.CryptoHasher;
  size = 0;
  constructor(readonly algorithm: DigestAlgorithm = "sha256") {
    this.hasher = new Bun.CryptoHasher(algorithm);
  }
  update(chunk: Uint8Array): void {
    this.hasher.update(chunk);
    this.size += chunk.length;
  }
  digest(): Digest {
    return `${this.algorithm}:${this.hasher.digest("hex")}` as Digest;
  }
}

/** Digest of a whole buffer or string. */
export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = "sha256"): Digest {
  const d = new Digester(algorithm);
  d.update(typeof data === "string" ? new TextEncoder().encode(data) : data);
  return d.digest();
}

/** The chain ID of a layer with diff ID `diffId` on top of the chain `parent`: sha256(parent + " " + diff). */
export function chainIdOf(parent: Digest | undefined, diffId: Digest): Digest {
  return parent ? digestOf(`${parent} ${diffId}`) : diffId;
}

/** Chain IDs for diff IDs: chain(0) = diff(0); chain(n) = sha256(chain(n-1) + " " + diff(n)). */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) out.push(chainIdOf(out.at(-1), d));
  return out;
}
