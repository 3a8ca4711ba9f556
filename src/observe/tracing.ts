/**
 * OpenTelemetry tracing (`tracing` in the config; docs/observability.md#tracing): each
 * data-plane worker has one tracer provider exporting spans over OTLP/HTTP (protobuf) in
 * batches. An exchange continues the W3C trace context of its request (`traceparent`,
 * `tracestate`); one without a sampled parent starts a trace for `sampleRatio` of requests.
 * Spans are built from recorded timings when each phase ends (./exchange_trace.ts), so a
 * policy call records only numbers. Without `tracing` nothing here is created.
 */
import { getLogger } from "@logtape/logtape";
import {
  type Context,
  diag,
  type DiagLogger,
  DiagLogLevel,
  ROOT_CONTEXT,
  SpanKind,
  type Tracer,
} from "@opentelemetry/api";
import { setGlobalErrorHandler, W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import type { TracingConfig } from "../config/types.ts";
import { ATTR, ExchangeTrace } from "./exchange_trace.ts";

const log = getLogger(["tollgate", "tracing"]);

/** A failing collector is logged once, then at most once a minute with a count. */
const ERROR_LOG_INTERVAL_MS = 60_000;

const propagator = new W3CTraceContextPropagator();

/** The request's trace context headers, as the propagator reads them. */
interface TraceHeaders {
  traceparent?: string;
  tracestate?: string;
}

const getter = {
  get: (carrier: TraceHeaders, key: string) =>
    key === "traceparent" || key === "tracestate" ? carrier[key] : undefined,
  keys: () => ["traceparent", "tracestate"],
};

/** Logs what the SDK reports (failed exports, dropped spans), rate-limited so a down collector is one line a minute. */
class ExportProblems {
  #last = -Infinity;
  #suppressed = 0;

  constructor(private readonly endpoint: string) {}

  report(problem: string): void {
    const now = performance.now();
    if (now - this.#last < ERROR_LOG_INTERVAL_MS) {
      this.#suppressed++;
      return;
    }
    const fields = { problem, endpoint: this.endpoint, suppressed: this.#suppressed };
    if (this.#suppressed === 0) log.warn("tracing: {problem} (collector {endpoint})", fields);
    else log.warn("tracing: {problem} (collector {endpoint}; {suppressed} more in the last minute)", fields);
    this.#last = now;
    this.#suppressed = 0;
  }

  /** The SDK's diagnostics at warning and above. */
  logger(): DiagLogger {
    const report = (message: string, ...args: unknown[]) =>
      this.report([message, ...args.map(String)].join(" "));
    const ignore = () => {};
    return { error: report, warn: report, info: ignore, debug: ignore, verbose: ignore };
  }
}

export class Tracing {
  readonly #provider: TracerProvider;
  readonly #tracer: Tracer;

  private constructor(config: TracingConfig, worker: number) {
    const problems = new ExportProblems(config.endpoint);
    // One provider per worker (each Worker has its own globals): the SDK reports here.
    setGlobalErrorHandler((error) => problems.report(`export failed: ${(error as Error)?.message ?? error}`));
    diag.setLogger(problems.logger(), DiagLogLevel.WARN);
    this.#provider = new TracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName, [ATTR.worker]: worker }),
      // A sampled parent is always continued and an unsampled one never; a request without
      // one starts a trace for sampleRatio of trace ids.
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
      spanProcessors: [
        new BatchSpanProcessor({
          exporter: new OTLPTraceExporter({
            url: config.endpoint,
            headers: { ...config.headers },
            timeoutMillis: config.timeoutMs,
          }),
        }),
      ],
    });
    this.#tracer = this.#provider.getTracer("tollgate");
  }

  /** The worker's tracing; `worker` is its index (a resource attribute). */
  static start(config: TracingConfig, worker: number): Tracing {
    return new Tracing(config, worker);
  }

  /**
   * Starts the trace of an exchange whose first message arrived at `startMs`
   * (`performance.now()`), continuing the request's trace context. Undefined when the
   * exchange is not sampled: nothing more is recorded for it.
   */
  begin(
    route: string | undefined,
    headers: TraceHeaders,
    startMs: number,
  ): ExchangeTrace | undefined {
    const parent: Context = headers.traceparent === undefined
      ? ROOT_CONTEXT
      : propagator.extract(ROOT_CONTEXT, headers, getter);
    const span = this.#tracer.startSpan(
      route === undefined ? "tollgate" : `tollgate ${route}`,
      { kind: SpanKind.SERVER, startTime: performance.timeOrigin + startMs },
      parent,
    );
    if (!span.isRecording()) return undefined;
    return new ExchangeTrace(this.#tracer, span, route, propagator);
  }

  /** Exports what is buffered (within `timeoutMs`) and stops. */
  async shutdown(timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs));
    try {
      await Promise.race([this.#provider.shutdown().catch(() => {}), late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
