/**
 * The Dockerfile's instructions, one case each: what each changes in the stage's config, and
 * the ones that run a build container (RUN, WORKDIR) or copy files (COPY, ADD: copy.ts).
 */

import { ignore, ignored } from "../log.ts";
import { posix } from "node:path";

import { mkdirInRoot } from "../container/archive.ts";

import { type Instruction } from "./dockerfile.ts";
import { expandFields, expandWord, parseKeyValues } from "./shell-lex.ts";

import { BuildError, type BuildRun, namedDir, short, type Stage } from "./build-types.ts";
import { argsText, configStep, container, envOf, fromImage, shellOf, stepImage, withImageRootOf } from "./build-steps.ts";
import { parseRunFlags } from "./run-flags.ts";
import { withRunMounts } from "./run-mounts.ts";
import { copy } from "./copy.ts";
import { parseDuration } from "./builder.ts";

export async function dispatch(run: BuildRun, s: Stage, ins: Instruction, fromOnbuild = false): Promise<void> {
  const { opts, escape, usedArgs, globals } = run;
  const env = () => envOf(s, true);
  const word = (w: string) => expandWord(w, env(), escape);
  switch (ins.name) {
    case "run":
      await runInstruction(run, s, ins);
      return;
    case "copy":
    case "add":
      await copy(run, s, ins, env());
      return;
    case "cmd":
    case "entrypoint": {
      const value = ins.json ?? (ins.args ? [...shellOf(s), ins.args] : []);
      if (ins.name === "cmd") {
        s.config.Cmd = value;
        s.cmdSet = true;
      } else {
        s.config.Entrypoint = value.length ? value : null;
        if (!s.cmdSet) s.config.Cmd = null;
      }
      await configStep(run, s, `${ins.name.toUpperCase()} ${JSON.stringify(value)}`);
      return;
    }
    case "env": {
      const pairs = parseKeyValues(ins.args, env(), escape, "ENV");
      const list = [...(s.config.Env ?? [])];
      for (const [k, v] of pairs) {
        const at = list.findIndex((e) => e.startsWith(`${k}=`));
        if (at >= 0) list[at] = `${k}=${v}`;
        else list.push(`${k}=${v}`);
      }
      s.config.Env = list;
      await configStep(run, s, `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(" ")}`);
      return;
    }
    case "label": {
      const pairs = parseKeyValues(ins.args, env(), escape, "LABEL");
      s.config.Labels = { ...(s.config.Labels ?? {}), ...Object.fromEntries(pairs) };
      await configStep(run, s, `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(" ")}`);
      return;
    }
    case "maintainer":
      s.author = ins.args;
      await configStep(run, s, `MAINTAINER ${ins.args}`);
      return;
    case "expose": {
      const ports = expandFields(ins.args, env(), escape);
      const exposed = { ...(s.config.ExposedPorts ?? {}) };
      for (const p of ports) {
        if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/.test(p)) throw new BuildError(`Invalid containerPort: ${p}`);
        exposed[p.includes("/") ? p : `${p}/tcp`] = {};
      }
      s.config.ExposedPorts = exposed;
      await configStep(run, s, `EXPOSE ${Object.keys(exposed).sort().join(" ")}`);
      return;
    }
    case "volume": {
      const vols = ins.json ?? expandFields(ins.args, env(), escape);
      if (!vols.length || vols.some((v) => !v.trim())) throw new BuildError("VOLUME specified can not be an empty string");
      s.config.Volumes = { ...(s.config.Volumes ?? {}), ...Object.fromEntries(vols.map((v) => [v, {}])) };
      await configStep(run, s, `VOLUME ${JSON.stringify(vols)}`);
      return;
    }
    case "user":
      s.config.User = word(ins.args);
      await configStep(run, s, `USER ${s.config.User}`);
      return;
    case "workdir":
      await workdirInstruction(run, s, ins);
      return;
    case "arg": {
      for (const [k, v] of parseKeyValues(ins.args, env(), escape, "ARG")) {
        const given = opts.buildArgs[k];
        const value = given ?? ((v ?? "") !== "" || ins.args.includes("=") ? v : (globals.get(k) ?? opts.platformArgs?.[k] ?? ""));
        if (given !== undefined) usedArgs.add(k);
        s.args.set(k, value ?? "");
      }
      await configStep(run, s, `ARG ${ins.args}`);
      return;
    }
    case "onbuild": {
      if (fromOnbuild) throw new BuildError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      const inner = ins.args.trim();
      if (/^(onbuild|from|maintainer)\b/i.test(inner)) throw new BuildError(`${inner.split(/\s/)[0]!.toUpperCase()} isn't allowed as an ONBUILD trigger`);
      s.config.OnBuild = [...(s.config.OnBuild ?? []), inner];
      await configStep(run, s, `ONBUILD ${inner}`);
      return;
    }
    case "stopsignal":
      s.config.StopSignal = word(ins.args);
      await configStep(run, s, `STOPSIGNAL ${s.config.StopSignal}`);
      return;
    case "shell":
      if (!ins.json) throw new BuildError("SHELL requires the arguments to be in JSON form");
      s.config.Shell = ins.json;
      await configStep(run, s, `SHELL ${JSON.stringify(ins.json)}`);
      return;
    case "healthcheck":
      await healthcheckInstruction(run, s, ins);
      return;
    case "from":
      throw new BuildError("FROM inside a stage");
  }
}

/** RUN: the command in a build container from the stage's image (with its `--mount`s, `--network`, `--security`), its layer committed. */
async function runInstruction(run: BuildRun, s: Stage, ins: Instruction): Promise<void> {
  const { deps, opts } = run;
  const flags = parseRunFlags(ins.flagList ?? []);
  if (flags.security === "insecure" && !opts.entitlements?.includes("security.insecure")) throw new BuildError("granting entitlement security.insecure is not allowed by build daemon configuration");
  if (flags.network === "host" && opts.entitlements && !opts.entitlements.includes("network.host")) throw new BuildError("granting entitlement network.host is not allowed by build daemon configuration");
  const shell = shellOf(s);
  let cmd: string[];
  if (ins.json) cmd = ins.json;
  else {
    // `RUN <<EOF` alone runs the document as the script; `RUN cmd <<EOF` gives it to the shell as a here-document.
    const only = ins.heredocs.length === 1 && /^<<-?(["']?)\w+\1$/.test(ins.args.trim());
    const script = only ? ins.heredocs[0]!.content : ins.heredocs.length ? `${ins.args}\n${ins.heredocs.map((h) => `${h.content}${h.name}`).join("\n")}` : ins.args;
    cmd = [...shell, script];
  }
  const args = argsText(s);
  const createdBy = `${args.length ? `|${args.length} ${args.join(" ")} ` : ""}${ins.json ? JSON.stringify(cmd) : cmd.join(" ")}`.trim();
  const history = `${args.length ? `|${args.length} ${args.join(" ")} ` : ""}${cmd.join(" ")}`;
  const key = ins.flagList?.length ? `RUN ${JSON.stringify(ins.flagList)} ${createdBy}` : `RUN ${createdBy}`;
  const host = { ...(flags.network ? { NetworkMode: flags.network === "default" ? opts.network || "default" : flags.network } : {}), ...(flags.security === "insecure" ? { Privileged: true } : {}) };
  await stepImage(run, s, key, () =>
    withRunMounts(
      run,
      s,
      flags,
      (from, fn) => withImageRoot(run, from, fn),
      async (mounts) => {
        const runEnv = [...(s.config.Env ?? []), ...[...s.args].filter(([k]) => !(s.config.Env ?? []).some((e) => e.startsWith(`${k}=`))).map(([k, v]) => `${k}=${v}`), ...mounts.env];
        const id = await container(run, s, cmd, runEnv, { ...host, ...(mounts.mounts.length ? { Mounts: mounts.mounts } : {}) });
        opts.out(` ---> Running in ${short(id)}\n`);
        try {
          const done = deps.containers.wait(id, "next-exit");
          // stderr in red, as the classic builder marks it (docker-py's tests look for the escapes).
          const att = deps.containers.attach(
            id,
            { stdin: false },
            { data: (rec) => (opts.events ? opts.events.output(rec.stream === 2 ? 2 : 1, rec.data) : opts.out(rec.stream === 2 ? `\x1b[91m${new TextDecoder().decode(rec.data)}\x1b[0m` : new TextDecoder().decode(rec.data))), end: () => {} },
          );
          await deps.containers.start(id);
          const code = await done;
          att.detach();
          if (code !== 0) throw new BuildError(`The command '${ins.json ? JSON.stringify(cmd) : cmd.join(" ")}' returned a non-zero code: ${code}`, code, cmd.join(" "));
          return await deps.containers.commit(id, {
            config: s.config,
            exactConfig: true,
            pause: false,
            createdBy: history,
            ...(opts.buildkitLayers ? { keepMountDirs: true } : {}),
            ...(mounts.drop.length ? { dropPaths: mounts.drop } : {}),
            ...(s.author ? { author: s.author } : {}),
          });
        } finally {
          await deps.containers.remove(id, { force: true }).catch(ignore("build container removal failed"));
          opts.out(`Removing intermediate container ${short(id)}\n`);
        }
      },
    ),
  );
}

/** `fn` with the root of a stage or an image (`--mount=from=…`) mounted, through a transient container. */
async function withImageRoot<T>(run: BuildRun, from: string, fn: (root: string) => Promise<T>): Promise<T> {
  const dir = namedDir(run.opts, from.toLowerCase());
  if (dir) return fn(dir);
  const image = await fromImage(run, from.toLowerCase());
  return withImageRootOf(run.deps.containers, image.id, fn);
}

/** WORKDIR: the directory made in a layer when the image lacks it, as the classic builder does. */
async function workdirInstruction(run: BuildRun, s: Stage, ins: Instruction): Promise<void> {
  const { deps, escape } = run;
  const word = (w: string) => expandWord(w, envOf(s, true), escape);
  const dir = word(ins.args);
  const abs = posix.normalize(dir.startsWith("/") ? dir : posix.join(s.config.WorkingDir || "/", dir));
  s.config.WorkingDir = abs;
  // As the classic builder: the directory is made in a layer when the image lacks it.
  await stepImage(run, s, `WORKDIR ${abs}`, async () => {
    const id = await container(run, s, null, s.config.Env ?? []);
    try {
      await deps.containers.withRoot(id, "/", async (root) => {
        mkdirInRoot(deps.sys, root, abs);
      });
      return await deps.containers.commit(id, { config: s.config, exactConfig: true, pause: false, createdBy: `/bin/sh -c #(nop) WORKDIR ${abs}` });
    } finally {
      await deps.containers.remove(id, { force: true }).catch(ignore("build container removal failed"));
    }
  });
}

/** HEALTHCHECK NONE or CMD with its --interval, --timeout, --start-period and --retries. */
async function healthcheckInstruction(run: BuildRun, s: Stage, ins: Instruction): Promise<void> {
  const rest = ins.args.trim();
  if (/^none$/i.test(rest)) s.config.Healthcheck = { Test: ["NONE"] };
  else {
    const m = /^cmd\s+([\s\S]*)$/i.exec(rest);
    if (!m) throw new BuildError("Unknown type in HEALTHCHECK (try CMD)");
    let json: string[] | undefined;
    try {
      const parsed = JSON.parse(m[1]!) as unknown;
      if (Array.isArray(parsed)) json = parsed as string[];
    } catch (err) {
      ignored("shell form", err);
    }
    const dur = (v: string | undefined) => (v ? parseDuration(v) : undefined);
    s.config.Healthcheck = {
      Test: json ? ["CMD", ...json] : ["CMD-SHELL", m[1]!],
      ...(ins.flags.interval ? { Interval: dur(ins.flags.interval) } : {}),
      ...(ins.flags.timeout ? { Timeout: dur(ins.flags.timeout) } : {}),
      ...(ins.flags["start-period"] ? { StartPeriod: dur(ins.flags["start-period"]) } : {}),
      ...(ins.flags.retries ? { Retries: Number(ins.flags.retries) } : {}),
    };
  }
  await configStep(run, s, `HEALTHCHECK ${JSON.stringify(s.config.Healthcheck)}`);
}
