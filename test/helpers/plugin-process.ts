/**
 * A test plugin (test/fixtures/*-plugin.ts) in its own process: started with `bun`, its stdout
 * lines collected (each call it received), resolved once it prints `listening`.
 */
import { join } from "node:path";

export interface PluginProcess {
  /** Every line the plugin printed so far. */
  lines: string[];
  kill(): void;
}

/** Start `fixture` (a file name under test/fixtures) with `args`; waits up to 2 s for it to listen. */
export async function startPluginProcess(fixture: string, args: string[]): Promise<PluginProcess> {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "../fixtures", fixture), ...args], { stdout: "pipe", stderr: "inherit" });
  const lines: string[] = [];
  void (async () => {
    for await (const chunk of proc.stdout) lines.push(...new TextDecoder().decode(chunk).split("\n").filter(Boolean));
  })();
  for (let i = 0; i < 100 && !lines.includes("listening"); i++) await Bun.sleep(20);
  return { lines, kill: () => proc.kill() };
}
