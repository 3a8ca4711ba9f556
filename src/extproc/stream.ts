/**
 * One ext_proc stream = one HTTP exchange. Envoy sends a message per phase and waits for
 * exactly one answer of the matching type; this state machine runs the route's chain in
 * the right slices and builds those answers.
 *
 * Phases: request headers → (request body) → response headers → (response body). Trailers
 * are passed through. A stream may also start at the response headers (an Envoy local
 * reply), and after an immediate response Envoy sends nothing more.
 */
import { create } from "@bufbuild/protobuf";
import type { JsonObject } from "@bufbuild/protobuf";
import type { ProcessingMode } from "../gen/proto/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.ts";
import {
  type CommonResponse,
  type ProcessingRequest,
  type ProcessingResponse,
  ProcessingResponseSchema,
} from "../gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import { type AuditObserver, dispatchAudits } from "../chain/audit.ts";
import type { Chain } from "../chain/chain.ts";
import { type ImmediateOutcome, type Phase, type RunObserver, runPolicies } from "../chain/run.ts";
import { ExchangeState } from "../chain/state.ts";
import type { Kernel, RouteTable } from "../kernel/routes.ts";
import type { UnmatchedAction, UnmatchedReason } from "../kernel/unmatched.ts";
import { type DecisionEntry, serverTimingValue } from "../observe/decision_trace.ts";
import type { ExchangeTrace, PhaseMessage } from "../observe/exchange_trace.ts";
import type { Tracing } from "../observe/tracing.ts";
import { Body } from "../sdk/context.ts";
import { clientAddressOf } from "./address.ts";
import { modeOverrideFor, PASS_THROUGH_MODE } from "./mode.ts";
import {
  commonResponse,
  immediateResponse,
  loadRequestHeaders,
  loadResponseHeaders,
  phaseMetadata,
  setHeadersResponse,
  traceMetadata,
  valueOf,
} from "./translate.ts";

/** The attribute namespace Envoy uses for `request_attributes`, whatever the filter's name. */
const ATTRIBUTES_KEY = "envoy.filters.http.ext_proc";
const ROUTE_ATTRIBUTE = "xds.route_name";
const SOURCE_ATTRIBUTE = "source.address";

type PhaseReply = "requestHeaders" | "requestBody" | "responseHeaders" | "responseBody";

/** The phase span of each message Tollgate answers (src/observe/exchange_trace.ts). */
const PHASE_SPANS: Readonly<Record<string, PhaseMessage>> = {
  requestHeaders: "request_headers",
  requestBody: "request_body",
  responseHeaders: "response_headers",
  responseBody: "response_body",
};

function routeNameOf(request: ProcessingRequest): string | undefined {
  const value = request.attributes[ATTRIBUTES_KEY]?.[ROUTE_ATTRIBUTE];
  return typeof value === "string" && value ? value : undefined;
}

/** Gives the state Envoy's request attributes and the client address they carry. */
function loadAttributes(state: ExchangeState, request: ProcessingRequest): void {
  const attributes = request.attributes[ATTRIBUTES_KEY];
  if (!attributes) return;
  state.attributes = attributes;
  state.clientAddress = clientAddressOf(attributes[SOURCE_ATTRIBUTE]);
}

/** One header of a message not loaded into an exchange (an unmatched request's id). */
function headerValue(headers: Parameters<typeof loadRequestHeaders>[1], name: string): string | undefined {
  const header = headers?.headers.find((h) => h.key === name);
  return header && valueOf(header);
}

function reply(
  kind: PhaseReply,
  common: CommonResponse | undefined,
  modeOverride?: ProcessingMode,
  dynamicMetadata?: JsonObject,
): ProcessingResponse {
  return create(ProcessingResponseSchema, {
    response: { case: kind, value: { response: common } },
    modeOverride,
    dynamicMetadata,
  });
}

function immediateReply(outcome: ImmediateOutcome, dynamicMetadata?: JsonObject): ProcessingResponse {
  return create(ProcessingResponseSchema, {
    response: { case: "immediateResponse", value: immediateResponse(outcome) },
    dynamicMetadata,
  });
}

function tooLarge(limit: number): ImmediateOutcome {
  return {
    statusCode: 413,
    headers: [["content-type", "application/json"]],
    body: new TextEncoder().encode(JSON.stringify({ error: "body_too_large", limitBytes: limit })),
    policy: "limits",
  };
}

/** The answer to a request refused because its route has no chain (`unmatchedRoutes: deny`). */
function routeNotConfigured(route: string | undefined, requestId: string | undefined): ImmediateOutcome {
  return {
    statusCode: 404,
    headers: [["content-type", "application/json"]],
    body: new TextEncoder().encode(
      JSON.stringify({ error: "route_not_configured", route: route ?? null, requestId: requestId ?? null }),
    ),
    policy: "unmatched-route",
  };
}

/** Envoy's side broke the protocol; the stream is ended with an error status. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
  /** A short label for logs and metrics, e.g. `second_request_headers`. */
  constructor(readonly reason: string, message: string) {
    super(message);
  }
}

/** How an exchange went, for `tollgate_requests_total`: the route's chain decided, or there was none. */
export type RequestOutcome = "passed" | "denied" | "failed" | "unmatched";

/** One finished exchange (a stream that carried a request), seen once when its stream ends. */
export interface ExchangeSummary {
  /** The chain it ran (the default chain for an unmatched route); undefined when none ran. */
  readonly chain: Chain | undefined;
  /** The route name Envoy sent ("" when none). */
  readonly route: string;
  readonly outcome: RequestOutcome;
  /** The status Tollgate answered with, else the upstream's if a response phase ran; 0 when unknown. */
  readonly status: number;
  /** Time spent in Tollgate, every message of the exchange summed. */
  readonly seconds: number;
  readonly requestId: string;
}

/** Counts what the stream does, for metrics. */
export interface StreamObserver extends RunObserver, AuditObserver {
  immediateResponse(policy: string, status: number): void;
  unmatchedRequest(reason: UnmatchedReason, action: UnmatchedAction): void;
  exchangeDone?(summary: ExchangeSummary): void;
}

export class ExchangeStream {
  #chain: Chain | undefined;
  /** The chain the route resolved to, even an empty one (for metrics). */
  #resolved: Chain | undefined;
  #state: ExchangeState | undefined;
  /** The table whose chain this stream runs, held until {@link release}. */
  #table: RouteTable | undefined;
  #maxBodyBytes = 0;
  /** Request entries already run; the rest run when the body arrives. */
  #requestRan = 0;
  #responseRan = 0;
  /** Set once request or response headers arrived: request headers come first and once. */
  #headersSeen = false;
  /** Milliseconds spent handling this stream's messages. */
  #busyMs = 0;
  #route = "";
  #outcome: RequestOutcome = "passed";
  /** The status of a response Tollgate sent itself (0: none). */
  #answered = 0;
  /** The request id of a request no chain runs for (the state has the others'). */
  #requestId = "";
  /** The trace of a route that passes through with disabled policies only. */
  #passTrace: readonly DecisionEntry[] | undefined;
  /** How many trace entries the last answer's metadata carried. */
  #traceSent = 0;
  /** The exchange's spans, when `tracing` is on and the exchange is sampled. */
  #trace: ExchangeTrace | undefined;

  constructor(
    private readonly kernel: Kernel,
    private readonly observer?: StreamObserver,
    private readonly tracing?: Tracing,
  ) {}

  /**
   * The stream has ended: the exchange goes to the chain's auditing policies, and its
   * table may close its policies once no stream uses it.
   */
  release(): void {
    if (this.#headersSeen) {
      this.observer?.exchangeDone?.({
        chain: this.#resolved,
        route: this.#route,
        outcome: this.#outcome,
        status: this.#answered || (this.#state?.status ?? 0),
        seconds: this.#busyMs / 1000,
        requestId: this.#state?.shared.requestId ?? this.#requestId,
      });
    }
    const chain = this.#chain;
    if (chain && this.#state && chain.audits.length > 0) {
      dispatchAudits(chain.audits, this.#state, this.observer, this.#table?.config.limits.policyTimeoutMs);
    }
    this.#chain = undefined;
    this.#table?.release();
    this.#table = undefined;
    const state = this.#state;
    this.#trace?.end(performance.now(), {
      requestId: state?.shared.requestId,
      method: state?.method,
      status: state?.status,
    });
    this.#trace = undefined;
  }

  /** Handles one message; undefined means "send nothing" (observability mode, unknown message). */
  handle(
    request: ProcessingRequest,
  ): Promise<ProcessingResponse | undefined> | ProcessingResponse | undefined {
    const started = performance.now();
    const answer = this.#traced(request);
    if (!(answer instanceof Promise)) {
      this.#busyMs += performance.now() - started;
      return answer;
    }
    return answer.then((response) => {
      this.#busyMs += performance.now() - started;
      return response;
    });
  }

  /** Dispatches one message, inside the exchange's phase spans when it is traced. */
  #traced(
    request: ProcessingRequest,
  ): Promise<ProcessingResponse | undefined> | ProcessingResponse | undefined {
    if (request.observabilityMode) return undefined;
    if (!this.tracing) return this.#dispatch(request);
    // Traced: the exchange's trace starts with its first message; each answer ends a phase span.
    const started = performance.now();
    const message = request.request;
    if (!this.#headersSeen && (message.case === "requestHeaders" || message.case === "responseHeaders")) {
      const headers = message.value.headers;
      this.#trace = this.tracing.begin(routeNameOf(request), {
        traceparent: headerValue(headers, "traceparent"),
        tracestate: headerValue(headers, "tracestate"),
      }, started);
    }
    const response = this.#dispatch(request);
    const span = message.case && PHASE_SPANS[message.case];
    if (!this.#trace || !span) return response;
    const ended = (answer: ProcessingResponse | undefined) => {
      const immediate = answer?.response.case === "immediateResponse"
        ? answer.response.value.status?.code
        : undefined;
      this.#trace?.phaseEnded(span, started, performance.now(), immediate);
      return answer;
    };
    return response instanceof Promise ? response.then(ended) : ended(response);
  }

  #dispatch(
    request: ProcessingRequest,
  ): Promise<ProcessingResponse | undefined> | ProcessingResponse | undefined {
    const message = request.request;
    switch (message.case) {
      case "requestHeaders":
        if (this.#headersSeen) {
          throw new ProtocolError(
            "second_request_headers",
            "request_headers after the stream's headers phase: one stream carries one HTTP request",
          );
        }
        this.#headersSeen = true;
        return this.#onRequestHeaders(request, message.value.headers, message.value.endOfStream);
      case "requestBody":
        return this.#onBody("request", message.value.body, message.value.endOfStream);
      case "responseHeaders":
        this.#headersSeen = true;
        return this.#onResponseHeaders(request, message.value.headers, message.value.endOfStream);
      case "responseBody":
        return this.#onBody("response", message.value.body, message.value.endOfStream);
      case "requestTrailers":
        return create(ProcessingResponseSchema, { response: { case: "requestTrailers", value: {} } });
      case "responseTrailers":
        return create(ProcessingResponseSchema, { response: { case: "responseTrailers", value: {} } });
      default:
        return undefined;
    }
  }

  /**
   * Binds the stream to the current route table's chain for the request's route. Returns
   * "pass" (no policy to run), "deny" (unmatched route refused) or "run".
   */
  #bind(request: ProcessingRequest, route: string | undefined): "pass" | "deny" | "run" {
    const { table, chain, unmatched } = this.kernel.resolve(route);
    this.#route = route ?? "";
    this.#resolved = chain;
    if (unmatched) {
      this.#outcome = "unmatched";
      this.observer?.unmatchedRequest(route === undefined ? "no_route_name" : "unknown_route", unmatched);
      this.#trace?.unmatched();
    }
    if (unmatched === "deny") return "deny";
    if (!chain || chain.isEmpty) {
      if (chain && chain.disabled.length > 0) this.#passTrace = chain.disabled;
      return "pass";
    }
    table.acquire();
    this.#table = table;
    this.#chain = chain;
    this.#maxBodyBytes = table.config.limits.maxBodyBytes;
    // The default chain runs for many routes: its policies see the name Envoy sent.
    this.#state = new ExchangeState(unmatched ? { name: route ?? "" } : chain.route);
    this.#state.trace.push(...chain.disabled);
    this.#state.recorder = this.#trace;
    loadAttributes(this.#state, request);
    return "run";
  }

  /** A request no chain runs for: passed through, or refused (`unmatchedRoutes: deny`). */
  #passOrRefuse(
    bound: "pass" | "deny",
    route: string | undefined,
    headers: Parameters<typeof loadRequestHeaders>[1],
    kind: "requestHeaders" | "responseHeaders",
  ): ProcessingResponse {
    const requestId = headerValue(headers, "x-request-id");
    this.#requestId = requestId ?? "";
    if (bound === "deny") return this.#refuse(route, requestId);
    const trace = this.#passTrace && traceMetadata(this.#passTrace);
    if (kind === "responseHeaders") return reply(kind, undefined, undefined, trace);
    // A traced request still carries its trace context on to the upstream.
    const upstream = this.#trace && setHeadersResponse(this.#trace.upstreamHeaders());
    return reply(kind, upstream, PASS_THROUGH_MODE, trace);
  }

  #refuse(route: string | undefined, requestId: string | undefined): ProcessingResponse {
    const outcome = routeNotConfigured(route, requestId);
    this.#answered = outcome.statusCode;
    this.observer?.immediateResponse(outcome.policy, outcome.statusCode);
    return immediateReply(outcome);
  }

  async #run(phase: Phase, from: number, to: number): Promise<ImmediateOutcome | undefined> {
    const chain = this.#chain!;
    const outcome = await runPolicies(
      phase === "request" ? chain.request : chain.response,
      from,
      to,
      phase,
      this.#state!,
      this.observer,
      // The table the stream is bound to: a request keeps the config it started with.
      this.#table!.config.limits.policyTimeoutMs,
    );
    if (outcome) this.#answeredWith(outcome);
    return outcome;
  }

  #answeredWith(outcome: ImmediateOutcome): void {
    this.#answered = outcome.statusCode;
    if (this.#outcome !== "unmatched") this.#outcome = outcome.failed ? "failed" : "denied";
    this.observer?.immediateResponse(outcome.policy, outcome.statusCode);
  }

  /** An immediate response's answer: with Server-Timing when the route asks for it, and the trace. */
  #immediate(outcome: ImmediateOutcome): ProcessingResponse {
    const state = this.#state!;
    state.finalStatus = outcome.statusCode;
    const timed: ImmediateOutcome = this.#chain!.serverTiming
      ? { ...outcome, headers: [...outcome.headers, ["server-timing", serverTimingValue(state.trace)]] }
      : outcome;
    return immediateReply(timed, this.#metadata(state));
  }

  /** The answer's dynamic metadata: analytics, and the trace when it grew since the last answer. */
  #metadata(state: ExchangeState) {
    const grown = state.trace.length !== this.#traceSent;
    this.#traceSent = state.trace.length;
    return phaseMetadata(state, grown);
  }

  async #onRequestHeaders(
    request: ProcessingRequest,
    headers: Parameters<typeof loadRequestHeaders>[1],
    endOfStream: boolean,
  ): Promise<ProcessingResponse> {
    const route = routeNameOf(request);
    const bound = this.#bind(request, route);
    if (bound !== "run") return this.#passOrRefuse(bound, route, headers, "requestHeaders");
    const chain = this.#chain!;
    const state = this.#state!;
    loadRequestHeaders(state, headers);
    state.shared.requestId = state.requestHeaders.get("x-request-id") ?? crypto.randomUUID();
    if (chain.audits.length > 0) {
      state.received = { path: state.path, headers: [...state.requestHeaders], at: Date.now() };
    }
    // Before the policies: they see (and may change) the trace context the upstream gets.
    if (this.#trace) {
      for (const [name, value] of this.#trace.upstreamHeaders()) {
        state.requestHeaders.set(name, value);
        state.changes.headers.add(name);
      }
    }
    const bodyComing = chain.needsRequestBody && !endOfStream;
    const to = bodyComing ? chain.requestHeadersCount : chain.request.length;
    this.#requestRan = to;
    const immediate = await this.#run("request", 0, to);
    if (immediate) return this.#immediate(immediate);
    return reply(
      "requestHeaders",
      commonResponse(state, { side: "request", bodyPhase: false }),
      modeOverrideFor(chain),
      this.#metadata(state),
    );
  }

  async #onResponseHeaders(
    request: ProcessingRequest,
    headers: Parameters<typeof loadResponseHeaders>[1],
    endOfStream: boolean,
  ): Promise<ProcessingResponse> {
    // A stream that starts here is an Envoy local reply: no mode override was sent yet.
    const startsHere = this.#state === undefined;
    if (startsHere) {
      const route = routeNameOf(request);
      const bound = this.#bind(request, route);
      if (bound !== "run") return this.#passOrRefuse(bound, route, headers, "responseHeaders");
    }
    const chain = this.#chain;
    const state = this.#state;
    if (!chain || !state || !chain.needsResponse) return reply("responseHeaders", undefined);
    state.beginPhase();
    loadResponseHeaders(state, headers);
    if (startsHere) state.shared.requestId = state.responseHeaders.get("x-request-id") ?? crypto.randomUUID();
    const bodyComing = chain.needsResponseBody && !endOfStream;
    const to = bodyComing ? chain.responseHeadersCount : chain.response.length;
    this.#responseRan = to;
    const immediate = await this.#run("response", 0, to);
    if (immediate) return this.#immediate(immediate);
    state.finalStatus = state.status;
    if (chain.serverTiming) {
      state.responseHeaders.append("server-timing", serverTimingValue(state.trace));
      state.changes.headers.add("server-timing");
    }
    return reply(
      "responseHeaders",
      commonResponse(state, { side: "response", bodyPhase: false }),
      startsHere && bodyComing ? modeOverrideFor(chain) : undefined,
      this.#metadata(state),
    );
  }

  async #onBody(side: Phase, bytes: Uint8Array, endOfStream: boolean): Promise<ProcessingResponse> {
    const kind: PhaseReply = side === "request" ? "requestBody" : "responseBody";
    const chain = this.#chain;
    const state = this.#state;
    const entries = side === "request" ? chain?.request : chain?.response;
    const ran = side === "request" ? this.#requestRan : this.#responseRan;
    if (!chain || !state || !entries || ran >= entries.length) return reply(kind, undefined);
    if (bytes.byteLength > this.#maxBodyBytes) {
      const refused = tooLarge(this.#maxBodyBytes);
      this.#answeredWith(refused);
      state.finalStatus = 413;
      return immediateReply(refused, this.#metadata(state));
    }
    state.beginPhase();
    if (side === "request") {
      if (state.received) state.received.body = bytes.slice();
      state.requestBody = new Body(bytes, endOfStream);
      this.#requestRan = entries.length;
    } else {
      state.responseBody = new Body(bytes, endOfStream);
      this.#responseRan = entries.length;
    }
    const immediate = await this.#run(side, ran, entries.length);
    if (immediate) return this.#immediate(immediate);
    return reply(kind, commonResponse(state, { side, bodyPhase: true }), undefined, this.#metadata(state));
  }
}
