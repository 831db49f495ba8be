/**
 * OCI hooks run by the runtime in its own namespaces, with the container's state on stdin:
 * prestart and createRuntime at the sync point (namespaces exist, before pivot_root),
 * poststart after start, poststop after delete. A failing prestart/createRuntime hook fails the
 * create; poststart/poststop failures are reported but do not undo anything (runtime-spec).
 * createContainer and startContainer hooks run inside the container, from its plan
 * (container-plan.ts, hooksInside).
 */
import { EngineError } from "../../core/errors.ts";
import type { Spec } from "../../core/runtime/oci.ts";

type Hook = NonNullable<NonNullable<Spec["hooks"]>["prestart"]>[number];

/** Run `hooks` in order with `state` as JSON on stdin; throws on the first failure. */
export async function runHooks(kind: string, hooks: Hook[] | undefined, state: Record<string, unknown>): Promise<void> {
  for (const [i, h] of (hooks ?? []).entries()) {
    const args = h.args?.length ? h.args : [h.path];
    const p = Bun.spawn([h.path, ...args.slice(1)], {
      argv0: args[0]!,
      env: Object.fromEntries((h.env ?? []).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)])),
      stdin: new TextEncoder().encode(JSON.stringify(state)),
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = h.timeout ? setTimeout(() => p.kill("SIGKILL"), h.timeout * 1000) : undefined;
    const code = await p.exited;
    if (timer) clearTimeout(timer);
    if (code !== 0) {
      const err = (await new Response(p.stderr).text()).trim();
      throw new EngineError("failed-precondition", `${kind} hook #${i} (${h.path}) failed with exit ${code}${p.signalCode ? ` (${p.signalCode}${h.timeout ? `, timeout ${h.timeout}s` : ""})` : ""}${err ? `: ${err}` : ""}`);
    }
  }
}
