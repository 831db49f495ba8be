/**
 * Composition root. One executable, several faces: invoked as `bunkerd` it is the daemon;
 * as `bunker-runc`, or as `bunker runtime …`, the OCI runtime (runc's command line); otherwise
 * `bunker <command>` is the client (and `bunker daemon` the daemon).
 */
import { basename } from "node:path";
import { runCli } from "./cli/index.ts";
import { builtinPlugins } from "./plugins/index.ts";

const invokedAs = basename(process.argv0 || "bunker");
const args = process.argv.slice(2);
const argv = invokedAs === "bunkerd" ? ["daemon", ...args] : args;

let code: number;
if (invokedAs === "bunker-runc" || argv[0] === "runtime") {
  // The OCI runtime face: runc's command line (see plugins/runtime-linux/cli.ts); loaded only here.
  const { runRuntimeCli } = await import("./plugins/runtime-linux/cli.ts");
  code = await runRuntimeCli(invokedAs === "bunker-runc" ? argv : argv.slice(1), invokedAs === "bunker-runc" ? "bunker-runc" : "bunker runtime");
} else code = await runCli(argv, builtinPlugins, invokedAs === "bunkerd" ? "bunkerd" : "bunker");
process.exit(code);
