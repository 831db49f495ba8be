/**
 * Variable substitution in Dockerfile instructions, as the classic builder does it (moby's
 * shell lexer): `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
 * `${VAR:?msg}`; single quotes keep their text literal, double quotes group words but still
 * expand, the escape character (`\` or `` ` ``) protects the next character. Also the word
 * splitting and `key=value` parsing of ENV, LABEL and ARG.
 */
import { invalidArgument } from "../errors.ts";

/** Expand one word: quotes removed, variables replaced. */
export function expandWord(word: string, env: Record<string, string>, escape = "\\"): string {
  return expandWords(word, env, escape, false).join("");
}

/** Expand and split on unquoted whitespace (COPY sources, EXPOSE, VOLUME, …). */
export function expandFields(text: string, env: Record<string, string>, escape = "\\"): string[] {
  return expandWords(text, env, escape, true);
}

function expandWords(text: string, env: Record<string, string>, escape: string, split: boolean): string[] {
  const out: string[] = [];
  let cur = "";
  let started = false;
  let i = 0;
  const push = () => {
    if (started) out.push(cur);
    cur = "";
    started = false;
  };
  const variable = (): string => {
    // At "$": returns the expansion and advances i.
    i++;
    if (text[i] === "{") {
      const close = matchBrace(text, i);
      const inner = text.slice(i + 1, close);
      i = close + 1;
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+?])([\s\S]*))?$/.exec(inner);
      if (!m) throw invalidArgument(`failed to process "${text}": bad substitution`);
      const [, name, op, arg = ""] = m;
      const set = name! in env;
      const value = env[name!] ?? "";
      const word = () => expandWord(arg, env, escape);
      switch (op) {
        case undefined:
          return value;
        case ":-":
          return set && value !== "" ? value : word();
        case "-":
          return set ? value : word();
        case ":+":
          return set && value !== "" ? word() : "";
        case "+":
          return set ? word() : "";
        case ":?":
        case "?":
          if (op === ":?" ? !set || value === "" : !set) throw invalidArgument(`failed to process "${text}": ${name}: ${arg || "is not allowed to be unset"}`);
          return value;
      }
      return value;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (!m) return "$";
    i += m[0].length;
    return env[m[0]] ?? "";
  };
  while (i < text.length) {
    const ch = text[i]!;
    if (split && /\s/.test(ch)) {
      push();
      i++;
      continue;
    }
    started = true;
    if (ch === escape) {
      if (i + 1 < text.length) cur += text[i + 1];
      i += 2;
    } else if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw invalidArgument(`failed to process "${text}": unexpected end of statement while looking for matching single-quote`);
      cur += text.slice(i + 1, end);
      i = end + 1;
    } else if (ch === '"') {
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === escape && i + 1 < text.length && ['"', "$", escape].includes(text[i + 1]!)) {
          cur += text[i + 1];
          i += 2;
        } else if (text[i] === "$") cur += variable();
        else cur += text[i++];
      }
      if (text[i] !== '"') throw invalidArgument(`failed to process "${text}": unexpected end of statement while looking for matching double-quote`);
      i++;
    } else if (ch === "$") {
      const value = variable();
      if (!split) cur += value;
      else {
        // An unquoted expansion is split into words too (moby's ProcessWords).
        for (const c of value) {
          if (/\s/.test(c)) push();
          else {
            cur += c;
            started = true;
          }
        }
      }
    } else {
      cur += ch;
      i++;
    }
  }
  push();
  return out;
}

function matchBrace(text: string, open: number): number {
  let depth = 0;
  for (let j = open; j < text.length; j++) {
    if (text[j] === "{") depth++;
    else if (text[j] === "}" && --depth === 0) return j;
  }
  throw invalidArgument(`failed to process "${text}": missing '}'`);
}

/**
 * `key=value …` pairs of ENV, LABEL and ARG (values expanded); the legacy `ENV key value with
 * spaces` form when the first word has no `=`.
 */
export function parseKeyValues(args: string, env: Record<string, string>, escape = "\\", instruction = "ENV"): [string, string][] {
  const words = splitRaw(args, escape);
  if (!words.length) throw invalidArgument(`${instruction} requires at least one argument`);
  if (!words[0]!.includes("=")) {
    if (instruction === "ARG") return [[expandWord(words[0]!, env, escape), ""]];
    const rest = args.trim().slice(words[0]!.length).trim();
    if (!rest) throw invalidArgument(`${instruction} names can not be blank`);
    return [[words[0]!, expandWord(rest, env, escape)]];
  }
  return words.map((w) => {
    const eq = w.indexOf("=");
    if (eq < 0) {
      if (instruction === "ARG") return [w, ""] as [string, string];
      throw invalidArgument(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    }
    const key = expandWord(w.slice(0, eq), env, escape);
    if (!key) throw invalidArgument(`${instruction} names can not be blank`);
    return [key, expandWord(w.slice(eq + 1), env, escape)] as [string, string];
  });
}

/** Split on unquoted whitespace, keeping quotes and escapes in the words (expansion comes later). */
export function splitRaw(text: string, escape = "\\"): string[] {
  const out: string[] = [];
  let cur = "";
  let quote = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === escape && i + 1 < text.length) {
      cur += ch + text[++i];
      continue;
    }
    if (quote) {
      if (ch === quote) quote = "";
      cur += ch;
      continue;
    }
    if (ch === "'" || ch === '"') {
      quote = ch;
      cur += ch;
      continue;
    }
    if (/\s/.test(ch)) {
      if (cur) out.push(cur);
      cur = "";
      continue;
    }
    cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}
