/**
 * `npm start`: build the executable, start the daemon on built-in defaults, show `bunker version`,
 * run a container from the built-in hello-world image (as root: containers need it), show
 * `bunker info`, then keep the daemon in the foreground until Ctrl-C.
 * As root the defaults are /var/lib/bunker and /run/bunker; otherwise per-user directories.
 */
import { homedir } from "node:os";
import { join } from "node:path";

const build = Bun.spawnSync([process.execPath, "scripts/build.ts"], { stdout: "inherit", stderr: "inherit" });
if (build.exitCode !== 0) process.exit(1);

const root = process.getuid?.() === 0;
const dataRoot = root ? "/var/lib/bunker" : join(homedir(), ".local/share/bunker");
const execRoot = root ? "/run/bunker" : join(process.env.XDG_RUNTIME_DIR ?? join(homedir(), ".cache"), "bunker");
const host = `unix://${execRoot}/bunker.sock`;

const daemon = Bun.spawn(["dist/bunker", "daemon", "--data-root", dataRoot, "--exec-root", execRoot], { stdout: "inherit", stderr: "inherit" });
for (let i = 0; ; i++) {
  if (daemon.exitCode !== null) process.exit(daemon.exitCode);
  const ok = await fetch("http://localhost/_ping", { unix: `${execRoot}/bunker.sock` } as RequestInit).then(
    (r) => r.ok,
    () => false,
  );
  if (ok) break;
  if (i > 500) {
    console.error("daemon did not come up");
    daemon.kill();
    process.exit(1);
  }
  await Bun.sleep(10);
}
const steps = [["version"], ...(root ? [["run", "--rm", "hello-world"]] : []), ["info"]];
for (const cmd of steps) Bun.spawnSync(["dist/bunker", "-H", host, ...cmd], { stdout: "inherit", stderr: "inherit" });
console.log(`\nBunker is running (pid ${daemon.pid}) on ${host}. Try: DOCKER_HOST=${host} docker info`);
console.log("Press Ctrl-C to stop it.");
process.on("SIGINT", () => daemon.kill("SIGTERM"));
process.on("SIGTERM", () => daemon.kill("SIGTERM"));
process.exit(await daemon.exited);
