/**
 * The house rules of DESIGN.md, checked (run by .ci/run; `bun scripts/check-layers.ts`):
 *
 * - `core/**` never imports `plugins/**`; only `main.ts` and `plugins/index.ts` name a plugin;
 * - a plugin never imports another plugin;
 * - `core/api/**` talks to services (and the types and parsers at the edge), never to a driver,
 *   a store, a log file or `Sys`;
 * - only `core/sys/` imports `bun:ffi`;
 * - no import from a lower layer to a higher one (the layers are {@link LAYERS});
 * - no source file over {@link MAX_FILE_LINES} lines but generated tables, no function over
 *   {@link MAX_FUNCTION_LINES} lines.
 *
 * Type-only imports count: a type loop is a loop. Every breach is printed as `file:line: rule`; the
 * measures are printed either way; the exit status is 1 on any breach.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { parse } from "@babel/parser";

const ROOT = resolve(import.meta.dir, "..");
const SRC = join(ROOT, "src");
export const MAX_FILE_LINES = 500;
export const MAX_FUNCTION_LINES = 120;

/**
 * The layers, lowest first. A file belongs to the first layer with a matching prefix (paths are
 * relative to `src/`). A file may import its own layer and the ones below it.
 */
export const LAYERS: { name: string; paths: string[] }[] = [
  {
    name: "base: errors, the kernel seam, formats and small shared pieces",
    paths: [
      "core/errors.ts",
      "core/sys/",
      "core/atomic-file.ts",
      "core/bytes.ts",
      "core/json.ts",
      "core/log.ts",
      "core/signals.ts",
      "core/version.ts",
      "core/validate.ts",
      "core/format/",
      "core/filters.ts",
      "core/events/",
      "core/journal/",
      "core/failpoints.ts",
      "core/steps.ts",
      "core/argv.ts",
      "core/grpc/",
      "core/buildkit/gen/",
    ],
  },
  { name: "data: content-addressed blobs, layer tars, image records", paths: ["core/content/", "core/layer/", "core/image/reference.ts", "core/image/manifest.ts", "core/image/image-store.ts", "core/image/hello-world.ts", "core/client/"] },
  {
    name: "drivers: the storage, network and runtime seams and the plugin registry",
    paths: [
      "core/storage/",
      "core/runtime/",
      "core/plugin/",
      "core/network/types.ts",
      "core/network/netlink.ts",
      "core/network/rtnl.ts",
      "core/network/nftables.ts",
      "core/network/ipv4.ts",
      "core/network/ipv6.ts",
      "core/network/port-spec.ts",
      "core/network/remote-driver.ts",
      "core/network/remote-ipam.ts",
      "core/network/ipam.ts",
      "core/network/dns-server.ts",
    ],
  },
  { name: "plugins: concrete drivers (import base, data and the seams only)", paths: ["plugins/network-", "plugins/storage-", "plugins/runtime-"] },
  { name: "distribution: the registry client and server", paths: ["core/registry/"] },
  { name: "services: containers, images, networks, volumes, builds, the system", paths: ["core/container/", "core/image/", "core/network/", "core/volume/", "core/build/", "core/system/", "core/buildkit/"] },
  { name: "api: the Docker Engine API over HTTP", paths: ["core/api/"] },
  { name: "daemon: the composition of services and the API server", paths: ["core/daemon/"] },
  { name: "front ends and the composition root", paths: ["cli/", "plugins/index.ts", "main.ts"] },
];

/** What `core/api/**` may import besides its own files and the base layer: services and edge parsers. */
const API_MAY_IMPORT = [/^core\/[a-z-]+\/[a-z-]+-service\.ts$/, /^core\/[a-z-]+\/[a-z-]+-backend\.ts$/, /^core\/[a-z-]+\/types\.ts$/, /^core\/image\/reference\.ts$/, /^core\/registry\/auth\.ts$/, /^core\/network\/port-spec\.ts$/];

/** Files that are generated tables or data, exempt from the size limits. */
const GENERATED_FILES = new Set(["plugins/runtime-linux/seccomp-tables.ts"]);
/** Folders of generated code (protoc-gen-es output from `proto/`, `npm run gen:proto`). */
const GENERATED_DIRS = ["core/buildkit/gen/"];
const GENERATED = { has: (rel: string) => GENERATED_FILES.has(rel) || GENERATED_DIRS.some((d) => rel.startsWith(d)) };

type Breach = { file: string; line: number; rule: string };

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir).sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (p.endsWith(".ts")) out.push(p);
  }
  return out;
}

const layerOf = (rel: string) => LAYERS.findIndex((l) => l.paths.some((p) => rel === p || rel.startsWith(p)));
const pluginOf = (rel: string) => /^plugins\/([^/]+)\//.exec(rel)?.[1];

type Node = { type: string; loc?: { start: { line: number }; end: { line: number } }; [k: string]: unknown };

function* walk(node: unknown): Generator<Node> {
  if (!node || typeof node !== "object") return;
  if (Array.isArray(node)) {
    for (const n of node) yield* walk(n);
    return;
  }
  const n = node as Node;
  if (typeof n.type === "string") yield n;
  for (const [k, v] of Object.entries(n)) if (k !== "loc" && k !== "leadingComments" && k !== "trailingComments" && k !== "innerComments") yield* walk(v);
}

const FUNCTIONS = new Set(["FunctionDeclaration", "FunctionExpression", "ArrowFunctionExpression", "ClassMethod", "ClassPrivateMethod", "ObjectMethod"]);

function functionName(n: Node, parent: Node | undefined): string {
  const key = (n.key as { name?: string } | undefined)?.name ?? (n.id as { name?: string } | undefined)?.name;
  if (key) return key;
  const id = (parent?.id as { name?: string } | undefined)?.name ?? (parent?.key as { name?: string } | undefined)?.name;
  return id ?? "(anonymous)";
}

/** Checks every file under src/ and returns the breaches and the measures. */
export function check(src: string = SRC): { breaches: Breach[]; measures: Record<string, number> } {
  const breaches: Breach[] = [];
  const measures = { files: 0, filesOverLimit: 0, functionsOverLimit: 0, upwardImports: 0, ruleBreaches: 0, longestFile: 0, longestFunction: 0 };
  for (const abs of sourceFiles(src)) {
    const rel = relative(src, abs);
    const text = readFileSync(abs, "utf8");
    measures.files++;
    const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
    if (!GENERATED.has(rel)) {
      measures.longestFile = Math.max(measures.longestFile, lines);
      if (lines > MAX_FILE_LINES) {
        measures.filesOverLimit++;
        breaches.push({ file: rel, line: 1, rule: `${lines} lines (limit ${MAX_FILE_LINES})` });
      }
    }
    const ast = parse(text, { sourceType: "module", plugins: ["typescript"], errorRecovery: false }) as unknown as Node;
    const from = layerOf(rel);
    if (from < 0) breaches.push({ file: rel, line: 1, rule: "belongs to no layer (add it to LAYERS in scripts/check-layers.ts)" });
    const parents = new Map<Node, Node>();
    for (const n of walk(ast)) {
      for (const v of Object.values(n)) {
        if (v && typeof v === "object") for (const c of Array.isArray(v) ? v : [v]) if (c && typeof c === "object" && typeof (c as Node).type === "string") parents.set(c as Node, n);
      }
      if (FUNCTIONS.has(n.type) && n.loc && !GENERATED.has(rel)) {
        const len = n.loc.end.line - n.loc.start.line + 1;
        measures.longestFunction = Math.max(measures.longestFunction, len);
        if (len > MAX_FUNCTION_LINES) {
          measures.functionsOverLimit++;
          breaches.push({ file: rel, line: n.loc.start.line, rule: `function ${functionName(n, parents.get(n))} is ${len} lines (limit ${MAX_FUNCTION_LINES})` });
        }
      }
      let spec: string | undefined;
      if (["ImportDeclaration", "ExportNamedDeclaration", "ExportAllDeclaration", "ImportExpression", "TSImportType"].includes(n.type)) {
        // Babel 7 names a TSImportType's string `argument`, the others `source`.
        const source = (n.source ?? n.argument) as { type: string; value?: string } | null | undefined;
        if (source?.type === "StringLiteral") spec = source.value;
      } else if (n.type === "CallExpression" && (n.callee as Node).type === "Import") {
        // Babel 7's dynamic import(): a call whose callee is `Import`.
        const arg = (n.arguments as Node[])[0] as { type: string; value?: string } | undefined;
        if (arg?.type === "StringLiteral") spec = arg.value;
      }
      if (!spec) continue;
      const line = n.loc?.start.line ?? 1;
      const add = (rule: string, upward = false) => {
        breaches.push({ file: rel, line, rule });
        if (upward) measures.upwardImports++;
        else measures.ruleBreaches++;
      };
      if (spec === "bun:ffi" && !rel.startsWith("core/sys/")) add("imports bun:ffi (only core/sys/ may)");
      if (!spec.startsWith(".")) continue;
      const target = relative(src, resolve(dirname(abs), spec));
      if (target.startsWith("..")) continue;
      const targetPlugin = pluginOf(target);
      if (rel.startsWith("core/") && target.startsWith("plugins/")) add(`core imports a plugin (${target})`);
      if (targetPlugin && !rel.startsWith("core/") && rel !== "main.ts" && rel !== "plugins/index.ts" && pluginOf(rel) !== targetPlugin) {
        add(pluginOf(rel) ? `plugin ${pluginOf(rel)} imports plugin ${targetPlugin} (${target})` : `names a plugin (${target}); only main.ts and plugins/index.ts may`);
      }
      if (rel.startsWith("core/api/") && !target.startsWith("core/api/") && layerOf(target) > 0 && !API_MAY_IMPORT.some((re) => re.test(target))) {
        add(`the API imports ${target} (it may import services, their types and the edge parsers only)`);
      }
      if (rel.startsWith("core/api/") && target.startsWith("core/sys/")) add(`the API imports Sys (${target})`);
      const to = layerOf(target);
      if (from >= 0 && to > from) add(`imports ${target} from the higher layer "${LAYERS[to]!.name.split(":")[0]}" (this file is in "${LAYERS[from]!.name.split(":")[0]}")`, true);
    }
  }
  return { breaches, measures };
}

if (import.meta.main) {
  const { breaches, measures } = check();
  for (const b of breaches) console.log(`src/${b.file}:${b.line}: ${b.rule}`);
  console.log(
    `check-layers: ${measures.files} files; files over ${MAX_FILE_LINES} lines: ${measures.filesOverLimit} (longest ${measures.longestFile}); functions over ${MAX_FUNCTION_LINES} lines: ${measures.functionsOverLimit} (longest ${measures.longestFunction}); imports from a lower layer to a higher one: ${measures.upwardImports}; other rule breaches: ${measures.ruleBreaches}`,
  );
  process.exit(breaches.length ? 1 : 0);
}
