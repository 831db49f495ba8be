/**
 * Network setup cost. (1) Inside Bunker: the time the engine spends connecting a created
 * container (loopback up, veth pair with its container end made in the container's namespace,
 * address, route, rules) and disconnecting it after the exit, read from the daemon's own debug
 * log for `--network bridge` and `--network none`. (2) End to end: `docker run --rm busybox true`
 * with the same docker CLI against Bunker and Debian's dockerd, each with its default bridge and
 * with `--network none`, runs alternated. dockerd runs with `--iptables=false` (and its bridge on
 * a subnet of its own) so the bench leaves the host's firewall alone; its bridge path still
 * creates the namespace, veth pair and addresses.
 */
import { join } from "node:path";
import { BUNKER_BIN as BUNKER, benchWorkDir, DOCKER_CLI as DOCKER, DOCKERD_BIN as DOCKERD, ms, removeWorkDir, summary, waitForPing } from "./lib.ts";

const N = Number(process.env.BUNKER_BENCH_N ?? 30);

interface Engine {
  name: string;
  host: string;
  proc: Bun.Subprocess<"ignore", "ignore", "pipe">;
  log: string[];
}

async function docker(e: Engine, ...args: string[]): Promise<string> {
  const p = Bun.spawn([DOCKER!, "-H", e.host, ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`${e.name}: docker ${args.join(" ")}: ${err}`);
  return out;
}

function start(name: string, cmd: string[], socket: string): Engine {
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const e: Engine = { name, host: `unix://${socket}`, proc, log: [] };
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of proc.stderr) e.log.push(...dec.decode(chunk).split("\n"));
  })();
  return e;
}

/** `ms=` of Bunker's debug lines with `msg`, from line `from` on. */
function loggedMs(e: Engine, msg: string, from: number): number[] {
  return e.log.slice(from).filter((l) => l.includes(`msg="${msg}"`)).map((l) => Number(/ ms=([\d.]+)/.exec(l)?.[1])).filter((x) => !Number.isNaN(x));
}

/** The suite: returns the markdown section. */
export async function networkSuite(): Promise<string> {
  if (!DOCKER) return "## Network setup\n\nSkipped: no docker CLI.\n";
  const { work, archive } = await benchWorkDir("bunker-bench-net");
  const engines: Engine[] = [];
  try {
    const bdir = join(work, "bunker");
    const bsock = join(bdir, "run", "bunker.sock");
    const bunker = start("bunker", [BUNKER, "daemon", "--log-level", "debug", "--config-file", "/dev/null", "--data-root", join(bdir, "data"), "--exec-root", join(bdir, "run")], bsock);
    engines.push(bunker);
    await waitForPing(bsock);
    if (DOCKERD) {
      const ddir = join(work, "dockerd");
      const dsock = join(ddir, "docker.sock");
      engines.push(
        start("dockerd", [DOCKERD, "--data-root", join(ddir, "data"), "--exec-root", join(ddir, "run"), "-H", `unix://${dsock}`, "--pidfile", join(ddir, "docker.pid"), "--iptables=false", "--ip6tables=false", "--bip", "10.250.0.1/24"], dsock),
      );
      await waitForPing(dsock);
    }
    for (const e of engines) await docker(e, "load", "-i", archive);
    const modes = ["bridge", "none"];
    for (const e of engines) for (const m of modes) for (let i = 0; i < 3; i++) await docker(e, "run", "--rm", "--network", m, "busybox", "true");
    const samples = new Map<string, number[]>();
    const attach = new Map<string, number[]>();
    const detach = new Map<string, number[]>();
    for (let i = 0; i < N; i++) {
      for (const e of engines) {
        for (const m of modes) {
          const from = e.log.length;
          const t0 = performance.now();
          await docker(e, "run", "--rm", "--network", m, "busybox", "true");
          const key = `${e.name} ${m}`;
          (samples.get(key) ?? samples.set(key, []).get(key)!).push(performance.now() - t0);
          if (e === bunker) {
            await Bun.sleep(20); // the log line is written before the CLI returns; let it arrive
            (attach.get(m) ?? attach.set(m, []).get(m)!).push(...loggedMs(e, "network attach", from));
            (detach.get(m) ?? detach.set(m, []).get(m)!).push(...loggedMs(e, "network detach", from));
          }
        }
      }
    }
    const med = (k: string) => summary(samples.get(k)!).median;
    const rows = [...samples.keys()].map((k) => {
      const s = summary(samples.get(k)!);
      return `| ${k} | ${ms(s.median)} | ${ms(s.min)} |`;
    });
    const a = (m: string) => summary(attach.get(m) ?? [0]);
    const d = (m: string) => summary(detach.get(m) ?? [0]);
    const bridgeAdds = a("bridge").median - a("none").median + (d("bridge").median - d("none").median);
    const lines = [
      "## Network setup (bridge vs none)",
      "",
      `Suite \`bench/network.ts\`: ${N} alternated runs of \`docker run --rm --network <mode> busybox true\` per engine and mode, same docker CLI; Bunker's own attach/detach times from its debug log. dockerd: \`--iptables=false\`, bridge on 10.250.0.0/24.`,
      "",
      "| inside Bunker, per container | median ms | min ms |",
      "|---|---|---|",
      `| attach, bridge (lo up, veth into the namespace, address, route, rules) | ${ms(a("bridge").median)} | ${ms(a("bridge").min)} |`,
      `| attach, none (lo up) | ${ms(a("none").median)} | ${ms(a("none").min)} |`,
      `| detach, bridge | ${ms(d("bridge").median)} | ${ms(d("bridge").min)} |`,
      `| detach, none | ${ms(d("none").median)} | ${ms(d("none").min)} |`,
      "",
      `**The bridge adds ${ms(bridgeAdds)} ms of engine work per container over none (target < 5 ms: ${bridgeAdds < 5 ? "met" : "missed"}).**`,
      "",
      "| end to end: docker run --rm | median ms | min ms |",
      "|---|---|---|",
      ...rows,
      "",
      `Bridge minus none, end to end (medians): bunker ${ms(med("bunker bridge") - med("bunker none"))} ms${DOCKERD ? `, dockerd ${ms(med("dockerd bridge") - med("dockerd none"))} ms; dockerd bridge ÷ bunker bridge: ${(med("dockerd bridge") / med("bunker bridge")).toFixed(1)}×` : ""}. End-to-end differences include the kernel's deferred namespace teardown, which lands on whichever run comes next.`,
      "",
    ];
    return lines.join("\n");
  } finally {
    for (const e of engines) {
      e.proc.kill("SIGTERM");
      await e.proc.exited;
    }
    Bun.spawnSync(["ip", "link", "del", "docker0"], { stderr: "ignore" });
    removeWorkDir(work);
  }
}

if (import.meta.main) console.log(await networkSuite());
