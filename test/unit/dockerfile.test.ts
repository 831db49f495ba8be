/**
 * The Dockerfile parser, the substitution rules and .dockerignore patterns (no root needed).
 */
import { describe, expect, test } from "bun:test";
import { parseDuration } from "../../src/core/build/builder.ts";
import { parseDockerfile } from "../../src/core/build/dockerfile.ts";
import { DockerIgnore } from "../../src/core/build/dockerignore.ts";
import { expandFields, expandWord, parseKeyValues } from "../../src/core/build/shell-lex.ts";

describe("Dockerfile parser", () => {
  test("directives, comments, continuations (comment lines inside dropped), flags, exec and shell forms", () => {
    const df = parseDockerfile(["# syntax=docker/dockerfile:1", "# escape=`", "# a comment", "FROM busybox AS b", "RUN echo a `", "  # inside", "  && echo b", "COPY --from=b --chown=1:2 /x /y", 'CMD ["sh", "-c", "x"]', "ENTRYPOINT [not json", ""].join("\n"));
    expect(df.escape).toBe("`");
    expect(df.syntax).toBe("docker/dockerfile:1");
    expect(df.instructions.map((i) => i.name)).toEqual(["from", "run", "copy", "cmd", "entrypoint"]);
    expect(df.instructions[1]!.args).toBe("echo a   && echo b");
    expect(df.instructions[1]!.line).toBe(5);
    expect(df.instructions[2]!.flags).toEqual({ from: "b", chown: "1:2" });
    expect(df.instructions[2]!.args).toBe("/x /y");
    expect(df.instructions[3]!.json).toEqual(["sh", "-c", "x"]);
    expect(df.instructions[4]!.json).toBeUndefined();
  });

  test("here-documents: several, <<- strips tabs, quoted delimiters mark no expansion", () => {
    const df = parseDockerfile(["FROM x", "RUN <<EOF", "echo 1", "EOF", "COPY <<-'A' <<B /d/", "\tone", "\tA", "two $X", "B", ""].join("\n"));
    expect(df.instructions[1]!.heredocs).toEqual([{ name: "EOF", content: "echo 1\n", quoted: false }]);
    expect(df.instructions[2]!.heredocs).toEqual([
      { name: "A", content: "one\n", quoted: true },
      { name: "B", content: "two $X\n", quoted: false },
    ]);
  });

  test("errors name the line", () => {
    expect(() => parseDockerfile("FROM x\n\nBOGUS y\n")).toThrow("dockerfile parse error on line 3: unknown instruction: BOGUS");
    expect(() => parseDockerfile("# escape=x\nFROM y\n")).toThrow("invalid ESCAPE");
    expect(() => parseDockerfile("FROM x\nRUN <<EOF\nno end\n")).toThrow("unterminated heredoc");
    expect(() => parseDockerfile("\n# only a comment\n")).toThrow("cannot be empty");
  });
});

describe("substitution", () => {
  const env = { A: "1", EMPTY: "", SPACE: "a b" };
  test("Docker's forms and quoting", () => {
    expect(expandWord("$A-${A}-${B:-def}-${EMPTY:-e}-${EMPTY-e}-${A:+alt}-${B:+alt}", env)).toBe("1-1-def-e--alt-");
    expect(expandWord("'$A' \"$A\" \\$A", env)).toBe("$A 1 $A");
    expect(expandFields("x $SPACE \"$SPACE\"", env)).toEqual(["x", "a", "b", "a b"]);
    expect(() => expandWord("${B:?must be set}", env)).toThrow("must be set");
    expect(expandWord("`$A", env, "`")).toBe("$A");
  });
  test("key=value and the legacy ENV form", () => {
    expect(parseKeyValues('a=1 b="two words" c=${A}', env)).toEqual([["a", "1"], ["b", "two words"], ["c", "1"]]);
    expect(parseKeyValues("KEY value with spaces", env)).toEqual([["KEY", "value with spaces"]]);
    expect(parseKeyValues("NAME", env, "\\", "ARG")).toEqual([["NAME", ""]]);
    expect(() => parseKeyValues("=x", env)).toThrow("names can not be blank");
  });
  test("Go durations", () => {
    expect(parseDuration("1m30s")).toBe(90e9);
    expect(parseDuration("500ms")).toBe(5e8);
    expect(() => parseDuration("ten")).toThrow("invalid duration");
  });
});

describe(".dockerignore", () => {
  test("wildcards, **, directories, exceptions, last match wins", () => {
    const ig = new DockerIgnore("# comment\n*.log\n!keep.log\nbuild/\n**/tmp\ndocs/*.md\n!docs/README.md\n/abs.txt\n");
    expect(ig.excludes("a.log")).toBe(true);
    expect(ig.excludes("keep.log")).toBe(false);
    expect(ig.excludes("sub/a.log")).toBe(false); // * does not cross directories
    expect(ig.excludes("build")).toBe(true);
    expect(ig.excludes("build/out/x")).toBe(true); // below an excluded directory
    expect(ig.excludes("a/b/tmp")).toBe(true);
    expect(ig.excludes("tmp/file")).toBe(true);
    expect(ig.excludes("docs/x.md")).toBe(true);
    expect(ig.excludes("docs/README.md")).toBe(false);
    expect(ig.excludes("abs.txt")).toBe(true);
    expect(ig.excludes("src/main.ts")).toBe(false);
  });

  test("an exception two directories below an excluded one keeps the walk going there (docker-py's dockerignore test)", () => {
    const ig = new DockerIgnore("ignored\n!ignored/subdir/excepted-file\n! ignored/subdir/excepted-with-spaces  \n");
    expect(ig.hasExceptionsUnder("ignored")).toBe(true);
    expect(ig.hasExceptionsUnder("ignored/subdir")).toBe(true);
    expect(ig.hasExceptionsUnder("other")).toBe(false);
    expect(ig.excludes("ignored/subdir/file")).toBe(true);
    expect(ig.excludes("ignored/subdir/excepted-file")).toBe(false);
    expect(ig.excludes("ignored/subdir/excepted-with-spaces")).toBe(false);
  });
});
