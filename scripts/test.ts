/**
 * The test command (`npm test`): build the executables (host, arm64, musl), run every test with
 * `bun test`, and end with the plain summary line `N passed, N failed` that CI reads.
 * Extra arguments are passed to `bun test` (e.g. a path filter).
 */
const build = Bun.spawnSync([process.execPath, "scripts/build.ts", "--all"], { stdout: "inherit", stderr: "inherit" });
if (build.exitCode !== 0) {
  console.log("0 passed, 1 failed");
  process.exit(1);
}

// bunfig.toml's [test] timeout is not read by this bun (a 6 s test fails at 5 s with it set), so
// the per-test timeout is given on the command line.
const proc = Bun.spawn([process.execPath, "test", "--timeout", "30000", ...process.argv.slice(2)], {
  stdout: "pipe",
  stderr: "pipe",
  env: { ...process.env, FORCE_COLOR: "0" },
});
let output = "";
const pump = async (stream: ReadableStream<Uint8Array>, out: NodeJS.WriteStream) => {
  const dec = new TextDecoder();
  for await (const chunk of stream) {
    const text = dec.decode(chunk, { stream: true });
    output += text;
    out.write(text);
  }
};
await Promise.all([pump(proc.stdout, process.stdout), pump(proc.stderr, process.stderr)]);
const code = await proc.exited;

const count = (word: string) => Number(new RegExp(`^\\s*(\\d+) ${word}$`, "m").exec(output)?.[1] ?? 0);
const passed = count("pass");
const failed = count("fail") + (code !== 0 && count("fail") === 0 ? 1 : 0);
const skipped = count("skip");
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(code === 0 && failed === 0 ? 0 : 1);
export {};
