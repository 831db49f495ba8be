/**
 * Composition root. One executable, several faces: invoked as `bunkerd` it is the daemon;
 * otherwise `bunker <command>` is the client (and `bunker daemon` the daemon). Later faces:
 * `bunker runtime …` (OCI runtime) and `bunker registry serve`.
 */
import { basename } from "node:path";
import { runCli } from "./cli/index.ts";
import { builtinPlugins } from "./plugins/index.ts";

const invokedAs = basename(process.argv0 || "bunker");
const args = process.argv.slice(2);
const argv = invokedAs === "bunkerd" ? ["daemon", ...args] : args;

const code = await runCli(argv, builtinPlugins, invokedAs === "bunkerd" ? "bunkerd" : "bunker");
process.exit(code);
