/**
 * Where a command line's own flags stop. docker (run, create, exec) and runc (exec) take
 * everything after their first operand (the image, the container) as the program and its
 * arguments, `-c` and all; the option parser must not see those. `--` is inserted there.
 */

/**
 * Insert `--` after the first operand following the command when the command (the first operand
 * of the line) is one of `commands`, skipping flags in `valueFlags` with their values.
 */
export function endOptionsAfterOperand(argv: string[], commands: readonly string[], valueFlags: ReadonlySet<string>): string[] {
  let at = -1;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith("-")) {
      if (valueFlags.has(a)) i++;
      continue;
    }
    at = i;
    break;
  }
  if (at < 0 || !commands.includes(argv[at]!) || argv.includes("--")) return argv;
  for (let i = at + 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith("-")) {
      if (valueFlags.has(a)) i++;
      continue;
    }
    return [...argv.slice(0, i + 1), "--", ...argv.slice(i + 1)];
  }
  return argv;
}
