/**
 * Build progress as BuildKit's Status stream carries it: a vertex per step (named as BuildKit
 * names them, `[internal] load build context`, `[2/3] RUN …`, `[build 1/2] FROM …`), started,
 * cached, completed or failed, with the step's output as logs and sub-steps as statuses.
 */
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { BuildStep } from "../build/build-types.ts";
import type { Job } from "./jobs.ts";

/** One vertex on a job's progress. */
export class Vertex {
  private started = timestampNow();

  constructor(
    private readonly job: Job,
    readonly digest: string,
    readonly name: string,
  ) {
    job.publish({ vertexes: [{ digest, name, started: this.started }] });
  }

  /** Output of the step (1 stdout, 2 stderr). */
  log(stream: 1 | 2, msg: Uint8Array): void {
    this.job.publish({ logs: [{ vertex: this.digest, stream: BigInt(stream), msg, timestamp: timestampNow() }] });
  }

  /** A sub-step shown under the vertex (`naming to …`), complete at once. */
  status(name: string): void {
    const now = timestampNow();
    this.job.publish({ statuses: [{ ID: name, vertex: this.digest, name, timestamp: now, started: now, completed: now }] });
  }

  /** The step was answered from the cache. */
  cached(): void {
    this.end({ cached: true });
  }

  /** The step ended, with an error or without. */
  done(error?: string): void {
    this.end(error ? { error } : {});
  }

  private closed = false;
  private end(how: { cached?: boolean; error?: string }): void {
    if (this.closed) return;
    this.closed = true;
    this.job.publish({ vertexes: [{ digest: this.digest, name: this.name, started: this.started, completed: timestampNow(), ...how }] });
  }
}

/** The instructions that make a vertex in BuildKit's Dockerfile frontend; the others only change the config. */
const VERTEX_KEYWORDS = new Set(["from", "run", "copy", "add", "workdir"]);

/**
 * BuildKit's name for a step: `[2/3] RUN …` in a one-stage build, `[build 1/2] FROM …` in a
 * multi-stage one, counting only the instructions that make a vertex; FROM shows the resolved
 * base image. Undefined for config-only instructions.
 */
export function vertexName(s: BuildStep): string | undefined {
  const kw = s.keywords[s.index - 1];
  if (!kw || !VERTEX_KEYWORDS.has(kw)) return undefined;
  const counted = s.keywords.filter((k) => VERTEX_KEYWORDS.has(k));
  const pos = s.keywords.slice(0, s.index).filter((k) => VERTEX_KEYWORDS.has(k)).length;
  const where = s.stages > 1 ? `${s.stageName ?? `stage-${s.stage}`} ${pos}/${counted.length}` : `${pos}/${counted.length}`;
  const text = kw === "from" && s.base ? `FROM ${s.base}` : s.text.trim().replace(/\s*\\\r?\n\s*/g, " ");
  return `[${where}] ${text}`;
}

/** Vertex factory for one job. */
export class Progress {
  private seq = 0;
  private current: Vertex | undefined;

  constructor(private readonly job: Job) {}

  /** Start a vertex named `name`. */
  vertex(name: string): Vertex {
    const digest = `sha256:${new Bun.CryptoHasher("sha256").update(`${this.job.ref}\n${this.seq++}\n${name}`).digest("hex")}`;
    return new Vertex(this.job, digest, name);
  }

  /** Run `fn` as the vertex `name`: completed when it returns, failed when it throws. */
  async step<T>(name: string, fn: (v: Vertex) => Promise<T>): Promise<T> {
    const v = this.vertex(name);
    try {
      const out = await fn(v);
      v.done();
      return out;
    } catch (err) {
      v.done((err as Error)?.message ?? String(err));
      throw err;
    }
  }

  /** The builder's step events as vertices: each step completes the one before it. */
  builderEvents() {
    return {
      step: (s: BuildStep) => {
        this.current?.done();
        this.current = undefined;
        const name = vertexName(s);
        if (name) this.current = this.vertex(name);
      },
      cached: () => this.current?.cached(),
      output: (stream: 1 | 2, data: Uint8Array) => this.current?.log(stream, data),
    };
  }

  /** End the current builder step, failed with `error` if given. */
  endSteps(error?: string): void {
    this.current?.done(error);
    this.current = undefined;
  }
}
