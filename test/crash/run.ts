/**
 * `npm run test:crash`: the kill -9 suite on overlay and on vfs at once (two daemons, each with
 * its own data root, bridge and registry port), ending with the summed `N passed, N failed`.
 * Extra arguments go to each run (`--cuts 5`, `--ops commit,start`).
 */
const drivers = ["overlay", "vfs"];
/** Bridge links on the host (a network create cut short must not leave one that no network owns). */
const bridges = () =>
  new Set(
    Bun.spawnSync(["ip", "-o", "link", "show", "type", "bridge"])
      .stdout.toString()
      .split("\n")
      .map((l) => l.split(": ")[1]?.split("@")[0])
      .filter((n): n is string => !!n && /^br-[0-9a-f]{12}$/.test(n)),
  );
const before = bridges();
const runs = drivers.map((d) => Bun.spawn([process.execPath, `${import.meta.dir}/kill9.ts`, "--drivers", d, ...process.argv.slice(2)], { stdout: "pipe", stderr: "inherit", env: { ...process.env, ...(process.env.BUNKER_CRASH_REPORT ? { BUNKER_CRASH_REPORT: `${process.env.BUNKER_CRASH_REPORT}.${d}` } : {}) } }));
let passed = 0;
let failed = 0;
const outputs = await Promise.all(runs.map((r) => new Response(r.stdout).text()));
for (const [i, out] of outputs.entries()) {
  for (const line of out.split("\n")) if (line && !/^\d+ passed, \d+ failed$/.test(line)) console.log(line);
  const m = /^(\d+) passed, (\d+) failed$/m.exec(out);
  if (!m) {
    console.log(`${drivers[i]}: the run ended without a summary (exit ${await runs[i]!.exited})`);
    failed++;
    continue;
  }
  passed += Number(m[1]);
  failed += Number(m[2]);
}
const left = [...bridges()].filter((b) => !before.has(b));
console.log(`${left.length ? "(fail)" : "(pass)"} no bridge left that no network owns: ${left.length ? left.join(", ") : "none"}`);
if (left.length) failed++;
else passed++;
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
