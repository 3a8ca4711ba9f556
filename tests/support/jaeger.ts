/**
 * A real Jaeger (v2, built by scripts/lib/jaeger.ts) for the tracing tests: an OTLP/HTTP
 * receiver and the query API on free ports of 127.0.0.1, traces kept in memory. Spans are
 * read back through the query API (`/api/traces/<traceId>`), as the Jaeger UI reads them.
 */
import { join } from "node:path";
import { stringify } from "yaml";
import { ensureJaeger } from "../../scripts/lib/jaeger.ts";
import { freePort, waitFor } from "./ports.ts";

/** A span as the query API returns it (the fields the tests read). */
export interface JaegerSpan {
  readonly traceID: string;
  readonly spanID: string;
  readonly operationName: string;
  readonly references: readonly {
    readonly refType: string;
    readonly traceID: string;
    readonly spanID: string;
  }[];
  readonly tags: readonly { readonly key: string; readonly value: unknown }[];
  readonly processID: string;
  readonly startTime: number;
  readonly duration: number;
}

/** A span's tags by key. */
export function tagsOf(span: JaegerSpan): Record<string, unknown> {
  return Object.fromEntries(span.tags.map((tag) => [tag.key, tag.value]));
}

/** The span id of a span's parent (its CHILD_OF reference), if it has one. */
export function parentOf(span: JaegerSpan): string | undefined {
  return span.references.find((ref) => ref.refType === "CHILD_OF")?.spanID;
}

export class Jaeger {
  private constructor(
    private readonly child: Deno.ChildProcess,
    private readonly dir: string,
    private readonly otlpPort: number,
    private readonly queryPort: number,
  ) {}

  /** `host:port` of the OTLP/HTTP receiver (what the engine's net permission names). */
  get otlpHost(): string {
    return `127.0.0.1:${this.otlpPort}`;
  }

  /** The receiver's base URL, as `tracing.otlp.endpoint` takes it (`/v1/traces` is added). */
  get otlpEndpoint(): string {
    return `http://${this.otlpHost}`;
  }

  static async start(): Promise<Jaeger> {
    const binary = await ensureJaeger();
    const dir = await Deno.makeTempDir({ prefix: "tollgate-jaeger-" });
    const [otlpPort, queryPort, queryGrpcPort] = [freePort(), freePort(), freePort()];
    const config = {
      service: {
        extensions: ["jaeger_storage", "jaeger_query"],
        pipelines: { traces: { receivers: ["otlp"], exporters: ["jaeger_storage_exporter"] } },
        telemetry: { metrics: { level: "none" }, logs: { level: "warn" } },
      },
      extensions: {
        jaeger_storage: { backends: { memstore: { memory: { max_traces: 10000 } } } },
        jaeger_query: {
          storage: { traces: "memstore" },
          enable_tracing: false,
          http: { endpoint: `127.0.0.1:${queryPort}` },
          grpc: { endpoint: `127.0.0.1:${queryGrpcPort}` },
        },
      },
      receivers: { otlp: { protocols: { http: { endpoint: `127.0.0.1:${otlpPort}` } } } },
      exporters: { jaeger_storage_exporter: { trace_storage: "memstore" } },
    };
    const file = join(dir, "jaeger.yaml");
    await Deno.writeTextFile(file, stringify(config));
    const child = new Deno.Command(binary, {
      args: ["--config", file],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const jaeger = new Jaeger(child, dir, otlpPort, queryPort);
    try {
      await waitFor("Jaeger's query API", async () => (await fetch(jaeger.#url("/api/services"))).ok, 30_000);
      await waitFor("Jaeger's OTLP receiver", async () => {
        using _ = await Deno.connect({ hostname: "127.0.0.1", port: otlpPort });
        return true;
      }, 30_000);
    } catch (error) {
      await jaeger.stop();
      throw error;
    }
    return jaeger;
  }

  #url(path: string): string {
    return `http://127.0.0.1:${this.queryPort}${path}`;
  }

  /** The services that have reported spans. */
  async services(): Promise<string[]> {
    const body = await (await fetch(this.#url("/api/services"))).json();
    return body.data ?? [];
  }

  /** The spans stored for `traceId` (none when the trace is unknown). */
  async spans(traceId: string): Promise<JaegerSpan[]> {
    const response = await fetch(this.#url(`/api/traces/${traceId}`));
    if (response.status === 404) {
      await response.body?.cancel();
      return [];
    }
    if (!response.ok) throw new Error(`Jaeger answered ${response.status}: ${await response.text()}`);
    const body = await response.json();
    return (body.data ?? []).flatMap((t: { spans: JaegerSpan[] }) => t.spans);
  }

  async stop(): Promise<void> {
    try {
      this.child.kill("SIGTERM");
    } catch {
      // already exited
    }
    await this.child.status;
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
