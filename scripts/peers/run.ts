/**
 * The slow peer suites (`npm run test:peers`): the Docker SDK for Python's integration suite and
 * moby's API integration tests, each against Debian's dockerd and against Bunker
 * (test/peers/docker-py/run.ts and test/peers/moby/run.ts; each can run alone). Ends with the summed `N passed, N failed`.
 */
const suites = ["test/peers/docker-py/run.ts", "test/peers/moby/run.ts"];
let passed = 0;
let failed = 0;
for (const s of suites) {
  console.log(`\n== ${s}`);
  const p = Bun.spawn([process.execPath, s, ...process.argv.slice(2)], { stdout: "pipe", stderr: "inherit" });
  let out = "";
  for await (const chunk of p.stdout) {
    const t = new TextDecoder().decode(chunk);
    out += t;
    process.stdout.write(t);
  }
  const code = await p.exited;
  const m = /(\d+) passed, (\d+) failed\s*$/.exec(out.trim());
  if (m) {
    passed += Number(m[1]);
    failed += Number(m[2]);
  }
  if (code !== 0 && (!m || Number(m[2]) === 0)) failed++; // a suite that broke before it counted
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
export {};
