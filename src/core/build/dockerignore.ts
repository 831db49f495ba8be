/**
 * `.dockerignore` with Docker's semantics (moby's patternmatcher): one pattern per line, `#`
 * comments, paths cleaned and relative to the context root, Go `filepath.Match` wildcards
 * (`*`, `?`, `[…]`) plus `**` for any number of directories, `!` exceptions, the last matching
 * line deciding. A pattern that matches a directory excludes everything below it.
 */
import { posix } from "node:path";

interface Pattern {
  re: RegExp;
  /** The cleaned pattern text. */
  text: string;
  exclusion: boolean;
}

function toRegExp(pattern: string): RegExp {
  let re = "^";
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === "*") {
      if (pattern[i + 1] === "*") {
        i++;
        if (pattern[i + 1] === "/") {
          i++;
          re += "(?:.*/)?";
        } else re += ".*";
      } else re += "[^/]*";
    } else if (ch === "?") re += "[^/]";
    else if (ch === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        let cls = pattern.slice(i + 1, end);
        if (cls.startsWith("^") || cls.startsWith("!")) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else if (ch === "\\" && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else re += /[.+^${}()|\\]/.test(ch) ? `\\${ch}` : ch;
  }
  return new RegExp(`${re}$`);
}

/** A parsed .dockerignore. */
export class DockerIgnore {
  private readonly patterns: Pattern[];

  constructor(text: string) {
    this.patterns = text
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => {
        const exclusion = l.startsWith("!");
        let p = exclusion ? l.slice(1).trim() : l;
        p = posix.normalize(p).replace(/^\/+/, "").replace(/\/+$/, "");
        return { re: toRegExp(p === "." ? "" : p), text: p, exclusion };
      });
  }

  /** Whether context path `rel` (no leading slash) is excluded. */
  excludes(rel: string): boolean {
    const parts = rel.split("/");
    let excluded = false;
    for (const p of this.patterns) {
      // A pattern applies to the path itself or to any of its parent directories.
      let hit = false;
      for (let n = parts.length; n >= 1 && !hit; n--) hit = p.re.test(parts.slice(0, n).join("/"));
      if (hit) excluded = !p.exclusion;
    }
    return excluded;
  }

  /** True when an exception could re-include something below excluded directory `rel`. */
  hasExceptionsUnder(rel: string): boolean {
    // An exception names a path below `rel` (the text starts with `rel/`), or has a wildcard
    // that could. (Comparing with the RegExp's source missed every nested path: it escapes `/`.)
    return this.patterns.some((p) => p.exclusion && (p.text.startsWith(`${rel}/`) || /[*?[]/.test(p.text)));
  }
}
