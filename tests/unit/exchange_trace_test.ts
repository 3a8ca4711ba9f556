/**
 * How one exchange's recorded decisions become spans (src/observe/exchange_trace.ts), with
 * the OpenTelemetry SDK's in-memory exporter; the OTLP path to a real collector is
 * tests/integration/tracing_test.ts.
 */
import assert from "node:assert/strict";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { epochNs } from "../../src/observe/decision_trace.ts";
import { ExchangeTrace } from "../../src/observe/exchange_trace.ts";

function setup() {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const tracer = provider.getTracer("test");
  const start = performance.now();
  const span = tracer.startSpan("tollgate r", {
    kind: SpanKind.SERVER,
    startTime: performance.timeOrigin + start,
  });
  return { exporter, trace: new ExchangeTrace(tracer, span, "r", new W3CTraceContextPropagator()), start };
}

const decision = (
  policy: string,
  outcome: "passed" | "modified" | "denied" | "failed" | "skipped",
  at = 0,
) => ({
  policy,
  version: "v1.2.3",
  phase: "request" as const,
  outcome,
  reason: outcome === "skipped" ? "condition_false" : outcome === "failed" ? "error" : undefined,
  startNs: at === 0 ? 0 : epochNs(at),
  durationMs: at === 0 ? 0 : 1,
});

const ms = (time: readonly [number, number]) => time[0] * 1000 + time[1] / 1e6;
const named = (spans: readonly ReadableSpan[], name: string) => spans.filter((s) => s.name === name);
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

Deno.test("a phase's span parents its policies' spans; a Python batch parents the policies it ran", () => {
  const { exporter, trace, start } = setup();
  trace.decided(decision("first", "modified", start + 1), { batched: false });
  trace.decided(decision("cond", "skipped"), { batched: false });
  trace.batchRan(start + 3, start + 7);
  trace.decided(decision("py-a", "passed", start + 3), { batched: true });
  trace.decided(decision("py-b", "failed", start + 5), { batched: true, error: "boom" });
  trace.phaseEnded("request_headers", start, start + 8);
  trace.end(start + 9, { requestId: "id-1", method: "GET", status: 200 });

  const spans = exporter.getFinishedSpans();
  const [exchange] = named(spans, "tollgate r");
  const [phase] = named(spans, "request_headers");
  const [batch] = named(spans, "python batch");
  assert.equal(parentOf(phase), exchange.spanContext().spanId);
  assert.equal(parentOf(named(spans, "policy first")[0]), phase.spanContext().spanId);
  assert.equal(parentOf(batch), phase.spanContext().spanId);
  assert.equal(batch.kind, SpanKind.CLIENT);
  assert.deepEqual(batch.attributes["tollgate.policies"], ["py-a", "py-b"]);
  const [a, b] = [named(spans, "policy py-a")[0], named(spans, "policy py-b")[0]];
  for (const span of [a, b]) assert.equal(parentOf(span), batch.spanContext().spanId);
  // The batch's round trip, shared evenly in order.
  assert.ok(Math.abs(ms(a.startTime) - ms(batch.startTime)) < 0.01);
  assert.ok(Math.abs(ms(a.endTime) - ms(b.startTime)) < 0.01);
  assert.ok(Math.abs(ms(b.endTime) - ms(batch.endTime)) < 0.01);
  assert.equal(b.status.code, SpanStatusCode.ERROR);
  assert.equal(b.status.message, "boom");
  assert.equal(a.status.code, SpanStatusCode.UNSET);
  // A skipped policy is a zero-length span where the chain passed it (after `first`).
  const [cond] = named(spans, "policy cond");
  assert.deepEqual(cond.startTime, cond.endTime);
  assert.ok(Math.abs(ms(cond.startTime) - (performance.timeOrigin + start + 2)) < 0.01);
  assert.deepEqual(
    { ...cond.attributes },
    {
      "tollgate.route": "r",
      "tollgate.phase": "request",
      "tollgate.policy.name": "cond",
      "tollgate.policy.version": "v1.2.3",
      "tollgate.outcome": "skipped",
      "tollgate.reason": "condition_false",
    },
  );
  assert.deepEqual(
    { ...exchange.attributes },
    {
      "tollgate.route": "r",
      "tollgate.outcome": "passed",
      "tollgate.request_id": "id-1",
      "http.request.method": "GET",
      "http.response.status_code": 200,
    },
  );
});

Deno.test("a failure that denied the request marks its phase and the exchange as errors", () => {
  const { exporter, trace, start } = setup();
  trace.decided(decision("boom", "failed", start + 1), { batched: false, error: "x".repeat(5000) });
  trace.phaseEnded("request_headers", start, start + 3, 500);
  trace.end(start + 4, {});
  const spans = exporter.getFinishedSpans();
  const [phase] = named(spans, "request_headers");
  const [exchange] = named(spans, "tollgate r");
  assert.equal(phase.status.code, SpanStatusCode.ERROR);
  assert.equal(phase.attributes["tollgate.outcome"], "failed");
  assert.equal(exchange.status.code, SpanStatusCode.ERROR);
  assert.equal(exchange.attributes["tollgate.outcome"], "failed");
  assert.equal(exchange.attributes["http.response.status_code"], 500);
  assert.ok(named(spans, "policy boom")[0].status.message!.length <= 1025, "a long error is cut");
});

Deno.test("a policy's immediate response is a denial, not an error; the upstream gets the exchange as parent", () => {
  const { exporter, trace, start } = setup();
  trace.decided(decision("deny", "denied", start + 1), { batched: false });
  trace.phaseEnded("request_headers", start, start + 2, 403);
  const upstream = Object.fromEntries(trace.upstreamHeaders());
  trace.end(start + 3, {});
  const [exchange] = named(exporter.getFinishedSpans(), "tollgate r");
  assert.equal(exchange.status.code, SpanStatusCode.UNSET);
  assert.equal(exchange.attributes["tollgate.outcome"], "denied");
  const { traceId, spanId } = exchange.spanContext();
  assert.equal(upstream.traceparent, `00-${traceId}-${spanId}-01`);
});
