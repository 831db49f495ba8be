/**
 * Image references, parsed and normalised as Docker does (the distribution/reference grammar):
 * `busybox` → `docker.io/library/busybox:latest`, `localhost:5000/a/b@sha256:…`, and back to the
 * familiar short form for display (`busybox:latest`).
 */
import { parseDigest } from "../content/digest.ts";
import { invalidArgument } from "../errors.ts";

/** The default registry and its legacy aliases. */
export const DEFAULT_DOMAIN = "docker.io";
const LEGACY_DOMAINS = new Set(["index.docker.io", "registry-1.docker.io"]);
const OFFICIAL_PREFIX = "library/";
const MAX_NAME_LENGTH = 255;

// Grammar pieces (distribution/reference regexp.go), anchored where used.
const ALNUM = "[a-z0-9]+";
const SEPARATOR = "(?:[._]|__|[-]+)";
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
const IPV6 = "\\[(?:[a-fA-F0-9:]+)\\]";
const DOMAIN = `(?:${DOMAIN_NAME}|${IPV6})(?::[0-9]+)?`;
const TAG = "[\\w][\\w.-]{0,127}";
const DIGEST = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";
const REFERENCE = new RegExp(`^((?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const ANCHORED_DOMAIN = new RegExp(`^${DOMAIN}$`);
const ID_ONLY = /^[a-f0-9]{64}$/;

/** A fully qualified reference. */
export interface Reference {
  /** Registry host (with port), e.g. `docker.io`, `localhost:5000`. */
  domain: string;
  /** Repository path inside the registry, e.g. `library/busybox`. */
  path: string;
  tag?: string;
  digest?: string;
}

/** `domain/path`. */
export function repositoryName(r: Reference): string {
  return `${r.domain}/${r.path}`;
}

/** The canonical string: `docker.io/library/busybox:latest`, with `@digest` when present. */
export function formatReference(r: Reference): string {
  return `${repositoryName(r)}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
}

/** The familiar form Docker shows: `busybox:latest`, `user/app:1`, `localhost:5000/x:y`. */
export function familiarName(r: Reference): string {
  let name = repositoryName(r);
  if (r.domain === DEFAULT_DOMAIN) {
    name = r.path.startsWith(OFFICIAL_PREFIX) && !r.path.slice(OFFICIAL_PREFIX.length).includes("/") ? r.path.slice(OFFICIAL_PREFIX.length) : r.path;
  }
  return name;
}

/** Familiar form with tag and digest. */
export function familiarString(r: Reference): string {
  return `${familiarName(r)}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
}

/**
 * Parse a user-supplied reference and normalise it as Docker's ParseNormalizedNamed does: a first
 * component without `.` or `:` (and not `localhost`) is a Docker Hub path; single-component Hub
 * names go under `library/`. Errors use Docker's wording (`invalid reference format…`).
 */
export function parseReference(input: string): Reference {
  if (ID_ONLY.test(input)) {
    throw invalidArgument(`invalid repository name (${input}), cannot specify 64-byte hexadecimal strings`);
  }
  const { domain, remainder } = splitDomain(input);
  if (remainder.split(/[:@]/)[0] !== remainder.split(/[:@]/)[0]!.toLowerCase()) {
    throw invalidArgument(`invalid reference format: repository name (${remainder.split(/[:@]/)[0]}) must be lowercase`);
  }
  const m = REFERENCE.exec(`${domain}/${remainder}`);
  if (!m) throw invalidArgument("invalid reference format");
  const name = m[1]!;
  if (name.length > MAX_NAME_LENGTH) throw invalidArgument(`invalid reference format: repository name must not be more than ${MAX_NAME_LENGTH} characters`);
  const ref: Reference = { domain, path: name.slice(domain.length + 1) };
  if (m[2]) ref.tag = m[2];
  if (m[3]) {
    parseDigest(m[3]); // only digests the engine can verify
    ref.digest = m[3];
  }
  return ref;
}

/** Parse and add `:latest` when neither tag nor digest is given (Docker's TagNameOnly). */
export function parseWithDefaultTag(input: string): Reference {
  const r = parseReference(input);
  if (!r.tag && !r.digest) r.tag = "latest";
  return r;
}

/** Split off the registry domain, applying Docker Hub's defaults. */
function splitDomain(name: string): { domain: string; remainder: string } {
  const i = name.indexOf("/");
  const first = i < 0 ? "" : name.slice(0, i);
  let domain: string;
  let remainder: string;
  if (i < 0 || (!/[.:]/.test(first) && first !== "localhost" && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = first;
    remainder = name.slice(i + 1);
    if (!ANCHORED_DOMAIN.test(domain)) throw invalidArgument("invalid reference format");
  }
  if (LEGACY_DOMAINS.has(domain)) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes("/")) remainder = OFFICIAL_PREFIX + remainder;
  return { domain, remainder };
}

/** `https://index.docker.io/v1/`, `http://host:5000/` and the like → the registry's host. */
export function normalizeRegistryHost(address: string): string {
  const host = address.replace(/^https?:\/\//, "").replace(/\/.*$/, "");
  return host === "index.docker.io" || host === "registry-1.docker.io" ? "docker.io" : host;
}
