/**
 * The Dockerfile parser, with the classic builder's rules (moby's `buildkit/frontend/dockerfile/
 * parser`): parser directives (`# escape=`, `# syntax=`) at the top, comments, line continuations
 * with the escape character (comment lines inside a continuation are dropped), instruction
 * flags (`--from=…`), the JSON (exec) and shell forms, and here-documents (`RUN <<EOF`,
 * `COPY <<EOF /dest`, `<<-` stripping leading tabs, several per line). Errors name the line.
 */
import { ignored } from "../log.ts";
import { invalidArgument } from "../errors.ts";

/** Every instruction the builder knows. */
export const INSTRUCTIONS = ["from", "run", "cmd", "label", "expose", "env", "add", "copy", "entrypoint", "volume", "user", "workdir", "arg", "onbuild", "stopsignal", "healthcheck", "shell", "maintainer"] as const;
export type InstructionName = (typeof INSTRUCTIONS)[number];

/** A here-document attached to an instruction. */
export interface Heredoc {
  name: string;
  content: string;
  /** True when the delimiter was quoted: no variable expansion in the body. */
  quoted: boolean;
}

/** One parsed instruction. */
export interface Instruction {
  name: InstructionName;
  /** The instruction as written, continuations joined (what `Step N/M :` shows). */
  original: string;
  /** Flags before the arguments (`--from=build` → from: "build"; a repeated flag keeps its last value). */
  flags: Record<string, string>;
  /** The flags in order, repeated ones each time (`RUN --mount=… --mount=…`). */
  flagList: [string, string][];
  /** The arguments' text after the flags. */
  args: string;
  /** The exec form's array, when the arguments are a JSON array of strings. */
  json?: string[];
  heredocs: Heredoc[];
  /** 1-based line where the instruction starts. */
  line: number;
}

/** A parsed Dockerfile. */
export interface Dockerfile {
  escape: string;
  syntax?: string;
  /** `# check=` (BuildKit's lint settings), kept as written. */
  check?: string;
  instructions: Instruction[];
}

const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const HEREDOC = /<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2/g;
const HEREDOC_INSTRUCTIONS = new Set(["run", "copy", "add"]);

/** Parse `text`; throws invalid-argument naming the line on any error. */
export function parseDockerfile(text: string): Dockerfile {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  let escape = "\\";
  let syntax: string | undefined;
  let check: string | undefined;
  let i = 0;
  // Parser directives: only at the very top, before any other line (comments included).
  for (; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i]!);
    if (!m) break;
    const key = m[1]!.toLowerCase();
    if (key === "escape") {
      if (m[2] !== "\\" && m[2] !== "`") throw invalidArgument(`invalid ESCAPE '${m[2]}'. Must be \` or \\`);
      escape = m[2]!;
    } else if (key === "syntax") syntax = m[2]!;
    else if (key === "check") check = m[2]!;
    else break;
  }
  const instructions: Instruction[] = [];
  const isBlank = (l: string) => l.trim() === "";
  const isComment = (l: string) => l.trimStart().startsWith("#");
  const continues = (l: string) => {
    const t = l.replace(/[ \t]+$/, "");
    return t.endsWith(escape) && !t.endsWith(escape + escape);
  };
  while (i < lines.length) {
    const raw = lines[i]!;
    if (isBlank(raw) || isComment(raw)) {
      i++;
      continue;
    }
    const start = i + 1;
    let logical = "";
    let line = raw;
    for (;;) {
      if (continues(line)) {
        logical += line.replace(/[ \t]+$/, "").slice(0, -1);
        i++;
        // Inside a continuation, comment lines are removed and empty lines skipped.
        while (i < lines.length && (isComment(lines[i]!) || isBlank(lines[i]!))) i++;
        if (i >= lines.length) break;
        line = lines[i]!;
        continue;
      }
      logical += line;
      i++;
      break;
    }
    const m = /^\s*(\S+)(?:\s+([\s\S]*))?$/.exec(logical);
    if (!m) continue;
    const name = m[1]!.toLowerCase();
    if (!(INSTRUCTIONS as readonly string[]).includes(name)) throw invalidArgument(`dockerfile parse error on line ${start}: unknown instruction: ${m[1]!.toUpperCase()}`);
    let rest = (m[2] ?? "").trim();
    // Flags: `--name=value` words at the start.
    const flags: Record<string, string> = {};
    const flagList: [string, string][] = [];
    if (name !== "run" || /^--/.test(rest)) {
      for (;;) {
        const f = /^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(\S*))?(?:\s+|$)/.exec(rest);
        if (!f || (name === "healthcheck" && !/^--(interval|timeout|start-period|start-interval|retries)=/.test(rest))) break;
        if (name === "env" || name === "label" || name === "arg" || name === "cmd" || name === "entrypoint") break;
        flags[f[1]!] = f[2] ?? "true";
        flagList.push([f[1]!, f[2] ?? "true"]);
        rest = rest.slice(f[0].length);
      }
    }
    // Here-documents: the bodies follow the instruction line.
    const heredocs: Heredoc[] = [];
    if (HEREDOC_INSTRUCTIONS.has(name)) {
      for (const h of rest.matchAll(HEREDOC)) {
        const strip = h[1] === "-";
        const body: string[] = [];
        for (;;) {
          if (i >= lines.length) throw invalidArgument(`dockerfile parse error on line ${start}: unterminated heredoc ${h[3]}`);
          const l = lines[i++]!;
          if ((strip ? l.replace(/^\t+/, "") : l) === h[3]) break;
          body.push(strip ? l.replace(/^\t+/, "") : l);
        }
        heredocs.push({ name: h[3]!, content: body.length ? `${body.join("\n")}\n` : "", quoted: h[2] !== "" });
      }
    }
    let json: string[] | undefined;
    if (rest.startsWith("[")) {
      try {
        const parsed = JSON.parse(rest) as unknown;
        if (Array.isArray(parsed) && parsed.every((x) => typeof x === "string")) json = parsed;
      } catch (err) {
        ignored("shell form that starts with a bracket", err);
      }
    }
    const original = logical.trim();
    instructions.push({ name: name as InstructionName, original, flags, flagList, args: rest, ...(json ? { json } : {}), heredocs, line: start });
  }
  if (!instructions.length) throw invalidArgument("the Dockerfile (Dockerfile) cannot be empty");
  return { escape, ...(syntax ? { syntax } : {}), ...(check ? { check } : {}), instructions };
}
