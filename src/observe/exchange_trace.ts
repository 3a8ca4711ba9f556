/**
 * The spans of one traced exchange. The exchange span (kind SERVER, a child of the request's
 * trace context) lives from the first ext_proc message to the stream's end. While a phase
 * runs, policy decisions and Python batches are only recorded (numbers); when the phase's
 * answer is ready, its span is built after the fact with its policies' spans below it: a
 * Python batch's span (kind CLIENT: the round trip to the executor) parents the Python
 * policies it ran.
 */
import {
  type Attributes,
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapPropagator,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import type { DecisionDetail, ExchangeRecorder } from "../chain/state.ts";
import type { DecisionEntry } from "./decision_trace.ts";

/** Span attribute names (docs/observability.md#tracing). */
export const ATTR = {
  route: "tollgate.route",
  phase: "tollgate.phase",
  outcome: "tollgate.outcome",
  reason: "tollgate.reason",
  policyName: "tollgate.policy.name",
  policyVersion: "tollgate.policy.version",
  policies: "tollgate.policies",
  requestId: "tollgate.request_id",
  worker: "tollgate.worker",
  method: "http.request.method",
  status: "http.response.status_code",
} as const;

/** One ext_proc message Tollgate answers: a phase span each. */
export type PhaseMessage = "request_headers" | "request_body" | "response_headers" | "response_body";

/** How an exchange (or one of its phases) ended, as `tollgate_requests_total` counts it. */
export type ExchangeOutcome = "passed" | "denied" | "failed" | "unmatched";

/** Longest status message a span gets (a policy's error text). */
const MAX_MESSAGE = 1024;

interface RecordedDecision {
  readonly decision: DecisionEntry;
  readonly error?: string;
}

interface RecordedBatch {
  readonly startMs: number;
  readonly endMs: number;
  readonly error?: string;
  readonly decisions: RecordedDecision[];
}

/** Epoch milliseconds of a `performance.now()` time, as spans take them. */
const epochMs = (performanceMs: number) => performance.timeOrigin + performanceMs;

const message = (text: string) => text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text;

export class ExchangeTrace implements ExchangeRecorder {
  readonly #context: Context;
  /** What the current phase recorded: decisions outside batches, and batches with theirs. */
  #decisions: (RecordedDecision | RecordedBatch)[] = [];
  #outcome: ExchangeOutcome = "passed";
  #error: string | undefined;
  /** The status of the immediate response that ended the exchange, if one did. */
  #immediateStatus: number | undefined;

  constructor(
    private readonly tracer: Tracer,
    private readonly span: Span,
    private readonly route: string | undefined,
    private readonly propagator: TextMapPropagator,
  ) {
    this.#context = trace.setSpan(ROOT_CONTEXT, span);
    if (route !== undefined) span.setAttribute(ATTR.route, route);
  }

  decided(decision: DecisionEntry, detail: DecisionDetail): void {
    const last = this.#decisions.at(-1);
    const recorded = { decision, error: detail.error };
    if (detail.batched && last && "decisions" in last) last.decisions.push(recorded);
    else this.#decisions.push(recorded);
  }

  batchRan(startMs: number, endMs: number, error?: string): void {
    this.#decisions.push({ startMs, endMs, error, decisions: [] });
  }

  /** The route has no chain in the config: the name Envoy sent stays an attribute only. */
  unmatched(): void {
    this.#outcome = "unmatched";
    this.span.updateName("tollgate");
  }

  /**
   * `traceparent` (and `tracestate`, unchanged) naming the exchange span as the parent: the
   * upstream request's trace context.
   */
  upstreamHeaders(): [string, string][] {
    const headers: Record<string, string> = {};
    this.propagator.inject(this.#context, headers, {
      set: (carrier, key, value) => carrier[key] = value,
    });
    return Object.entries(headers);
  }

  /**
   * The phase answered by `message` is over: builds its span (from `startMs` to `endMs`,
   * `performance.now()` times) and the spans of what it recorded. `immediateStatus` is the
   * status of an immediate response that ended it, if one did.
   */
  phaseEnded(phaseMessage: PhaseMessage, startMs: number, endMs: number, immediateStatus?: number): void {
    const recorded = this.#decisions;
    this.#decisions = [];
    const phase = phaseMessage.startsWith("request") ? "request" : "response";
    const outcome = immediateStatus === undefined
      ? "passed"
      : lastOutcome(recorded) === "failed"
      ? "failed"
      : "denied";
    const attributes: Attributes = { [ATTR.phase]: phase, [ATTR.outcome]: outcome };
    if (this.route !== undefined) attributes[ATTR.route] = this.route;
    if (immediateStatus !== undefined) attributes[ATTR.status] = immediateStatus;
    const span = this.tracer.startSpan(
      phaseMessage,
      { kind: SpanKind.INTERNAL, startTime: epochMs(startMs), attributes },
      this.#context,
    );
    const context = trace.setSpan(ROOT_CONTEXT, span);
    // A policy that never started (skipped, or its condition failed) is shown where the chain passed it.
    let cursor = epochMs(startMs);
    for (const item of recorded) {
      cursor = "decisions" in item
        ? this.#batchSpan(item, phase, context)
        : this.#policySpan(item, context, cursor);
    }
    if (outcome === "failed") {
      span.setStatus({ code: SpanStatusCode.ERROR, message: "a policy failure denied the request" });
    }
    span.end(epochMs(endMs));
    this.#immediateStatus ??= immediateStatus;
    if (outcome !== "passed" && this.#outcome === "passed") {
      this.#outcome = outcome;
      if (outcome === "failed") this.#error = "a policy failure denied the request";
    }
  }

  /** The stream ended at `endMs`: the exchange span ends with what the exchange came to. */
  end(endMs: number, facts: { requestId?: string; method?: string; status?: number }): void {
    const { span } = this;
    span.setAttribute(ATTR.outcome, this.#outcome);
    if (facts.requestId) span.setAttribute(ATTR.requestId, facts.requestId);
    if (facts.method) span.setAttribute(ATTR.method, facts.method);
    const status = this.#immediateStatus ?? (facts.status || undefined);
    if (status !== undefined) span.setAttribute(ATTR.status, status);
    if (this.#error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: this.#error });
    span.end(epochMs(endMs));
  }

  #policySpan(item: RecordedDecision, parent: Context, cursor: number, endMs?: number): number {
    const { decision } = item;
    const ran = Number(decision.startNs) > 0;
    const start = ran ? Number(decision.startNs) / 1e6 : cursor;
    const end = endMs ?? start + decision.durationMs;
    const attributes: Attributes = {
      [ATTR.phase]: decision.phase,
      [ATTR.policyName]: decision.policy,
      [ATTR.policyVersion]: decision.version,
      [ATTR.outcome]: decision.outcome,
    };
    if (this.route !== undefined) attributes[ATTR.route] = this.route;
    if (decision.reason !== undefined) attributes[ATTR.reason] = decision.reason;
    const span = this.tracer.startSpan(
      `policy ${decision.policy}`,
      { kind: SpanKind.INTERNAL, startTime: start, attributes },
      parent,
    );
    if (decision.outcome === "failed") {
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: message(item.error ?? decision.reason ?? "failed"),
      });
    }
    span.end(end);
    return end;
  }

  /** A batch's span, its policies below it sharing its time evenly (the executor reports no per-policy time). */
  #batchSpan(batch: RecordedBatch, phase: "request" | "response", parent: Context): number {
    const attributes: Attributes = {
      [ATTR.phase]: phase,
      [ATTR.policies]: batch.decisions.map(({ decision }) => decision.policy),
      [ATTR.outcome]: batch.error === undefined ? "ok" : "failed",
    };
    if (this.route !== undefined) attributes[ATTR.route] = this.route;
    const start = epochMs(batch.startMs);
    const end = epochMs(batch.endMs);
    const span = this.tracer.startSpan(
      "python batch",
      { kind: SpanKind.CLIENT, startTime: start, attributes },
      parent,
    );
    if (batch.error !== undefined) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: message(batch.error) });
    }
    const context = trace.setSpan(ROOT_CONTEXT, span);
    const share = (end - start) / Math.max(batch.decisions.length, 1);
    batch.decisions.forEach((item, k) =>
      this.#policySpan(
        { decision: { ...item.decision, startNs: (start + k * share) * 1e6 }, error: item.error },
        context,
        start,
        start + (k + 1) * share,
      )
    );
    span.end(end);
    return end;
  }
}

/** The outcome of the last decision a phase recorded (inside a batch included). */
function lastOutcome(recorded: readonly (RecordedDecision | RecordedBatch)[]): string | undefined {
  const last = recorded.at(-1);
  if (!last) return undefined;
  if ("decisions" in last) {
    return last.decisions.at(-1)?.decision.outcome ?? (last.error ? "failed" : undefined);
  }
  return last.decision.outcome;
}
