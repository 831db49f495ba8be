/**
 * Bunker beside a running Docker: dockerd (Debian's docker.io, with its firewall on, as a user
 * migrating from Docker has it) sets iptables-nft's FORWARD policy to DROP and loads
 * br_netfilter, which used to make traffic between Bunker's containers time out. With dockerd
 * running, two Bunker containers on a user network talk by name, a published port answers, and
 * dockerd's own containers still talk to each other; Bunker's accept rules in dockerd's FORWARD
 * chain go with its network. The firewall state from before the test is put back afterwards.
 * Traffic goes only to loopback and to the containers this file creates.
 */
import { NFT, ROOT, skipUnless } from "../helpers/env.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, run, startDaemon, type TestDaemon, tempDir } from "../helpers/daemon.ts";
import { DOCKER_CLI, DOCKERD, type PeerDockerd, startDockerd } from "../helpers/dockerd.ts";
import { BUSYBOX, busyboxLayer, dockerArchive } from "../helpers/images.ts";

const IPTABLES = Bun.which("iptables");
const httpd = (text: string) => ["sh", "-c", `mkdir -p /www && echo ${text} > /www/index.html && exec busybox httpd -f -p 80 -h /www`];
const fetchIn = (host: string) => `for i in 1 2 3 4 5; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 ${host} 80 && exit 0; sleep 0.3; done; exit 1`;
const sh = (cmd: string[]) => Bun.spawnSync(cmd).stdout.toString();

describe.skipIf(skipUnless("Bunker beside a running dockerd", { "root": ROOT, "nft (nftables)": NFT, "iptables": IPTABLES, "dockerd (docker.io)": DOCKERD, "the docker CLI": DOCKER_CLI, "busybox-static": BUSYBOX }))("Bunker beside a running dockerd", () => {
  let dir: string;
  let dockerd: PeerDockerd;
  let bunker: TestDaemon;
  let tablesBefore: string;
  let forwardPolicyBefore: string;
  const onBunker = (...a: string[]) => run([DOCKER_CLI!, ...a], { DOCKER_HOST: bunker.host });

  beforeAll(async () => {
    dir = tempDir("bunker-coexist-");
    tablesBefore = sh([NFT!, "list", "tables"]);
    forwardPolicyBefore = /-P FORWARD (\w+)/.exec(sh([IPTABLES!, "-S", "FORWARD"]))?.[1] ?? "ACCEPT";
    // dockerd with its firewall on, its bridge and pools away from Bunker's 172.17.0.0/16. Started
    // as at boot, with forwarding off: dockerd then turns it on and sets FORWARD's policy to DROP.
    writeFileSync("/proc/sys/net/ipv4/ip_forward", "0");
    dockerd = await startDockerd(join(dir, "dockerd"), { args: ["--bip", "10.98.0.1/24", "--default-address-pool", "base=10.97.0.0/16,size=24"] });
    writeFileSync(join(dir, "busybox.tar"), await dockerArchive({ tags: ["busybox:latest"], layers: [await busyboxLayer()], gzip: true }));
    expect((await dockerd.docker("load", "-i", join(dir, "busybox.tar"))).code).toBe(0);
    bunker = await startDaemon({ dir: join(dir, "bunker") });
    expect((await onBunker("load", "-i", join(dir, "busybox.tar"))).code).toBe(0);
  }, 90_000);

  afterAll(async () => {
    await onBunker("rm", "-f", "web", "web2").catch(() => {});
    await onBunker("network", "rm", "app").catch(() => {});
    await bunker?.stop();
    await dockerd?.docker("rm", "-f", "dweb").catch(() => {});
    await dockerd?.docker("network", "rm", "dnet").catch(() => {});
    await dockerd?.stop();
    // Put the host's firewall back as it was: dockerd leaves its tables and the DROP policy.
    for (const t of ["ip filter", "ip nat", "ip6 filter", "ip6 nat"]) if (!tablesBefore.includes(`table ${t}\n`)) Bun.spawnSync([NFT!, "delete", "table", ...t.split(" ")]);
    if (tablesBefore.includes("table ip filter\n")) Bun.spawnSync([IPTABLES!, "-P", "FORWARD", forwardPolicyBefore]);
    Bun.spawnSync(["ip", "link", "del", "docker0"]);
    cleanup(dir);
  }, 60_000);

  test("dockerd has set FORWARD to DROP (the condition this file is about)", () => {
    expect(sh([IPTABLES!, "-S", "FORWARD"])).toContain("-P FORWARD DROP");
  });

  test("two Bunker containers on a user network talk by name; a published port answers; the accept rules sit in dockerd's FORWARD chain", async () => {
    expect((await onBunker("network", "create", "app")).code).toBe(0);
    const bridge = `br-${(await onBunker("network", "inspect", "-f", "{{.Id}}", "app")).stdout.trim().slice(0, 12)}`;
    expect((await onBunker("run", "-d", "--name", "web", "--network", "app", "-p", "127.0.0.1:18090:80", "busybox", ...httpd("bunker-web"))).code).toBe(0);
    const r = await onBunker("run", "--rm", "--network", "app", "busybox", "sh", "-c", fetchIn("web"));
    expect(r.stdout).toContain("bunker-web");
    let body = "";
    for (let i = 0; i < 20 && !body.includes("bunker-web"); i++) {
      body = await fetch("http://127.0.0.1:18090/", { signal: AbortSignal.timeout(2000) }).then((x) => x.text(), () => "");
      if (!body.includes("bunker-web")) await Bun.sleep(150);
    }
    expect(body).toContain("bunker-web");
    const forward = sh([NFT!, "list", "chain", "ip", "filter", "FORWARD"]);
    expect(forward).toContain(`iifname "${bridge}" accept comment "bunker bunker ${bridge} in"`);
    expect(forward).toContain(`oifname "${bridge}" accept comment "bunker bunker ${bridge} out"`);
    // The policy itself is left as dockerd set it.
    expect(sh([IPTABLES!, "-S", "FORWARD"])).toContain("-P FORWARD DROP");
  }, 60_000);

  test("dockerd's own containers still talk to each other", async () => {
    expect((await dockerd.docker("network", "create", "dnet")).code).toBe(0);
    expect((await dockerd.docker("run", "-d", "--name", "dweb", "--network", "dnet", "busybox", ...httpd("docker-web"))).code).toBe(0);
    const r = await dockerd.docker("run", "--rm", "--network", "dnet", "busybox", "sh", "-c", fetchIn("dweb"));
    expect(r.stdout).toContain("docker-web");
  }, 60_000);

  test("removing the Bunker network removes its accept rules from dockerd's chain, and nothing else of dockerd's", async () => {
    const bridge = `br-${(await onBunker("network", "inspect", "-f", "{{.Id}}", "app")).stdout.trim().slice(0, 12)}`;
    const before = sh([NFT!, "list", "chain", "ip", "filter", "FORWARD"]).split("\n").filter((l) => !l.includes("bunker bunker"));
    expect((await onBunker("rm", "-f", "web")).code).toBe(0);
    expect((await onBunker("network", "rm", "app")).code).toBe(0);
    const after = sh([NFT!, "list", "chain", "ip", "filter", "FORWARD"]);
    expect(after).not.toContain(bridge);
    expect(after.split("\n").filter((l) => !l.includes("bunker bunker"))).toEqual(before);
  }, 30_000);
});
