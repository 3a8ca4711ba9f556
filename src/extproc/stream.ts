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
import type { Chain, ChainEntry } from "../chain/chain.ts";
import { type ImmediateOutcome, type Phase, type RunObserver, runPolicies } from "../chain/run.ts";
import { ExchangeState } from "../chain/state.ts";
import { type Binding, type Kernel, PASS_THROUGH_CHAIN } from "../kernel/routes.ts";
import type { UnmatchedAction, UnmatchedReason } from "../kernel/unmatched.ts";
import { type DecisionEntry, serverTimingValue } from "../observe/decision_trace.ts";
import type { ExchangeTrace, PhaseMessage } from "../observe/exchange_trace.ts";
import type { Tracing } from "../observe/tracing.ts";
import { Body } from "../sdk/context.ts";
import { clientAddressOf } from "./address.ts";
import { ChunkPipeline } from "../chain/chunks.ts";
import { ChunkDecompressor, decodable } from "./decompress.ts";
import { modeOverrideFor, PASS_THROUGH_MODE, streamedResponseMode } from "./mode.ts";
import {
  chunkResponse,
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
type HeaderMessage = Parameters<typeof loadRequestHeaders>[1];

/** The phase span of each message Tollgate answers (src/observe/exchange_trace.ts). */
const PHASE_SPANS: Readonly<Record<string, PhaseMessage>> = {
  requestHeaders: "request_headers",
  requestBody: "request_body",
  responseHeaders: "response_headers",
  responseBody: "response_body",
};

/** What differs between the request and the response phase of an exchange. */
interface PhaseOps {
  readonly headersReply: PhaseReply;
  readonly bodyReply: PhaseReply;
  /** The phase's entries, in the order they run. */
  entries(chain: Chain): readonly ChainEntry[];
  /** How many leading entries run on the headers when a body follows. */
  headersCount(chain: Chain): number;
  needsBody(chain: Chain): boolean;
  /** The phase's entries that see the body chunk by chunk (empty: buffered or none). */
  streaming(chain: Chain): readonly ChainEntry[];
  loadHeaders(state: ExchangeState, headers: HeaderMessage): void;
  headersOf(state: ExchangeState): { get(name: string): string | undefined };
  setBody(state: ExchangeState, body: Body): void;
}

const PHASES: Readonly<Record<Phase, PhaseOps>> = {
  request: {
    headersReply: "requestHeaders",
    bodyReply: "requestBody",
    entries: (chain) => chain.request,
    headersCount: (chain) => chain.requestHeadersCount,
    needsBody: (chain) => chain.needsRequestBody,
    streaming: (chain) => chain.requestStreaming,
    loadHeaders: loadRequestHeaders,
    headersOf: (state) => state.requestHeaders,
    setBody: (state, body) => state.requestBody = body,
  },
  response: {
    headersReply: "responseHeaders",
    bodyReply: "responseBody",
    entries: (chain) => chain.response,
    headersCount: (chain) => chain.responseHeadersCount,
    needsBody: (chain) => chain.needsResponseBody,
    streaming: (chain) => chain.responseStreaming,
    loadHeaders: loadResponseHeaders,
    headersOf: (state) => state.responseHeaders,
    setBody: (state, body) => state.responseBody = body,
  },
};

/** Not bound to a chain yet: nothing to run, nothing held. */
const UNBOUND: Binding = {
  chain: PASS_THROUGH_CHAIN,
  resolved: undefined,
  route: PASS_THROUGH_CHAIN.route,
  limits: { maxBodyBytes: 0, maxChunkBytes: 0, maxAccumulatedBytes: 0, policyTimeoutMs: 0, auditQueue: 0 },
  release: () => {},
};
/**
 * The state of a stream that runs nothing. It is never loaded or run against: every
 * handler stops first when its phase has no entries, which the pass-through chain has not.
 */
const IDLE_STATE = new ExchangeState(PASS_THROUGH_CHAIN.route);

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
function headerValue(headers: HeaderMessage, name: string): string | undefined {
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
  #binding: Binding = UNBOUND;
  #state: ExchangeState = IDLE_STATE;
  /** Entries already run per phase; the rest run when the body arrives. */
  readonly #ran: Record<Phase, number> = { request: 0, response: 0 };
  /** Set once request or response headers arrived: request headers come first and once. */
  #headersSeen = false;
  /** The chunk pipeline of each phase whose body is streamed. */
  readonly #pipelines: Record<Phase, ChunkPipeline | undefined> = { request: undefined, response: undefined };
  /** The coding of a compressed streamed response, and its decompressor once a chunk came. */
  #compression: string | undefined;
  #decompressor: ChunkDecompressor | undefined;
  /** Milliseconds spent handling this stream's messages. */
  #busyMs = 0;
  /** The route name Envoy sent ("" when none). */
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

  /** Envoy ended the stream: a policy still running for it sees its `ctx.signal` fire. */
  cancel(): void {
    if (this.#state !== IDLE_STATE) this.#state.cancel();
  }

  /**
   * The stream has ended: it is counted, the exchange goes to the chain's auditing policies,
   * and its table may close its policies once no stream uses it.
   */
  release(): void {
    const state = this.#state === IDLE_STATE ? undefined : this.#state;
    if (this.#headersSeen) {
      this.observer?.exchangeDone?.({
        chain: this.#binding.resolved,
        route: this.#route,
        outcome: this.#outcome,
        status: this.#answered || (state?.status ?? 0),
        seconds: this.#busyMs / 1000,
        requestId: state?.shared.requestId ?? this.#requestId,
      });
    }
    const { chain, limits } = this.#binding;
    if (state && chain.audits.length > 0) {
      dispatchAudits(chain.audits, state, this.observer, limits.policyTimeoutMs);
    }
    this.#trace?.end(performance.now(), {
      requestId: state?.shared.requestId,
      method: state?.method,
      status: state?.status,
    });
    this.#trace = undefined;
    this.#binding.release();
    this.#binding = UNBOUND;
    this.#decompressor?.close();
    this.#decompressor = this.#compression = undefined;
    this.#pipelines.request = this.#pipelines.response = undefined;
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
        return this.#onHeaders("request", request, message.value.headers, message.value.endOfStream);
      case "requestBody":
        return this.#onBody("request", message.value.body, message.value.endOfStream);
      case "responseHeaders":
        this.#headersSeen = true;
        return this.#onHeaders("response", request, message.value.headers, message.value.endOfStream);
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
   * Asks the kernel which chain serves the request's route and binds the stream to it.
   * Returns "pass" (no policy to run), "deny" (unmatched route refused) or "run".
   */
  #bind(request: ProcessingRequest, route: string | undefined): "pass" | "deny" | "run" {
    const binding = this.kernel.bind(route);
    this.#binding = binding;
    this.#route = route ?? "";
    if (binding.unmatched) {
      this.#outcome = "unmatched";
      this.observer?.unmatchedRequest(
        route === undefined ? "no_route_name" : "unknown_route",
        binding.unmatched,
      );
      this.#trace?.unmatched();
    }
    if (binding.unmatched === "deny") return "deny";
    if (binding.chain.isEmpty) {
      const disabled = binding.resolved?.disabled ?? [];
      if (disabled.length > 0) this.#passTrace = disabled;
      return "pass";
    }
    this.#state = new ExchangeState(binding.route);
    this.#state.trace.push(...binding.chain.disabled);
    this.#state.recorder = this.#trace;
    loadAttributes(this.#state, request);
    return "run";
  }

  /** A request no chain runs for: passed through, or refused (`unmatchedRoutes: deny`). */
  #passOrRefuse(
    bound: "pass" | "deny",
    route: string | undefined,
    headers: HeaderMessage,
    kind: PhaseReply,
  ): ProcessingResponse {
    const requestId = headerValue(headers, "x-request-id");
    this.#requestId = requestId ?? "";
    if (bound === "deny") return this.#refuse(route, requestId);
    const trace = this.#passTrace && traceMetadata(this.#passTrace);
    if (kind !== "requestHeaders") return reply(kind, undefined, undefined, trace);
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

  /** Runs the chain's `phase` policies `[from, to)`: synchronously when none of them waits. */
  #run(phase: Phase, from: number, to: number): Settled<ImmediateOutcome | undefined> {
    const { chain, limits } = this.#binding;
    const outcome = runPolicies(
      PHASES[phase].entries(chain),
      from,
      to,
      phase,
      this.#state,
      this.observer,
      // The table the stream is bound to: a request keeps the config it started with.
      limits.policyTimeoutMs,
    );
    return then(outcome, (immediate) => {
      if (immediate) this.#answeredWith(immediate);
      return immediate;
    });
  }

  /** Counts a response Tollgate sent itself. */
  #answeredWith(outcome: ImmediateOutcome): void {
    this.#answered = outcome.statusCode;
    this.#state.finalStatus = outcome.statusCode;
    if (this.#outcome !== "unmatched") this.#outcome = outcome.failed ? "failed" : "denied";
    this.observer?.immediateResponse(outcome.policy, outcome.statusCode);
  }

  /** An immediate response's answer: with Server-Timing when the route asks for it, and the trace. */
  #immediate(outcome: ImmediateOutcome): ProcessingResponse {
    const state = this.#state;
    const timed: ImmediateOutcome = this.#binding.chain.serverTiming
      ? { ...outcome, headers: [...outcome.headers, ["server-timing", serverTimingValue(state.trace)]] }
      : outcome;
    return immediateReply(timed, this.#metadata(state));
  }

  /** The answer's dynamic metadata: analytics, and the trace when it grew since the last answer. */
  #metadata(state: ExchangeState): JsonObject | undefined {
    const grown = state.trace.length !== this.#traceSent;
    this.#traceSent = state.trace.length;
    return phaseMetadata(state, grown);
  }

  /**
   * Request or response headers. A stream normally binds at the request headers; one that
   * starts at the response headers is an Envoy local reply, bound there, and no mode
   * override was sent for it yet.
   */
  #onHeaders(
    phase: Phase,
    request: ProcessingRequest,
    headers: HeaderMessage,
    endOfStream: boolean,
  ): Settled<ProcessingResponse> {
    const ops = PHASES[phase];
    const startsHere = phase === "request" || this.#binding === UNBOUND;
    if (startsHere) {
      const route = routeNameOf(request);
      const bound = this.#bind(request, route);
      if (bound !== "run") return this.#passOrRefuse(bound, route, headers, ops.headersReply);
    }
    const { chain } = this.#binding;
    const state = this.#state;
    if (phase === "response" && !chain.needsResponse) return reply(ops.headersReply, undefined);
    state.beginPhase();
    ops.loadHeaders(state, headers);
    if (startsHere) state.shared.requestId = ops.headersOf(state).get("x-request-id") ?? crypto.randomUUID();
    if (phase === "request") this.#requestArrived(chain, state);
    const entries = ops.entries(chain);
    const bodyComing = ops.needsBody(chain) && !endOfStream;
    const to = bodyComing ? ops.headersCount(chain) : entries.length;
    this.#ran[phase] = to;
    return then(
      this.#run(phase, 0, to),
      (immediate) =>
        immediate
          ? this.#immediate(immediate)
          : this.#headersDecided(phase, chain, endOfStream, startsHere && bodyComing),
    );
  }

  /** The answer to request or response headers whose policies ran without an immediate response. */
  #headersDecided(
    phase: Phase,
    chain: Chain,
    endOfStream: boolean,
    overrideHere: boolean,
  ): ProcessingResponse {
    const ops = PHASES[phase];
    const state = this.#state;
    if (phase === "response") this.#responseDecided(chain, state);
    const streams = !endOfStream && ops.streaming(chain).length > 0;
    if (streams) this.#startStreaming(phase, chain);
    // The request answer sets the modes of the whole exchange; a stream that starts at the
    // response headers sets them only if a response body is to come. A streamed response
    // body is asked for at the response headers, once there is one.
    const mode = phase === "request"
      ? modeOverrideFor(chain)
      : streams
      ? streamedResponseMode(chain)
      : overrideHere
      ? modeOverrideFor(chain)
      : undefined;
    return reply(
      ops.headersReply,
      commonResponse(state, { phase, bodyPhase: false }),
      mode,
      this.#metadata(state),
    );
  }

  /**
   * What the request headers bring before any policy runs: the request as Envoy sent it
   * (for auditing policies), and the trace context the upstream gets (policies see it and
   * may change it).
   */
  #requestArrived(chain: Chain, state: ExchangeState): void {
    if (chain.audits.length > 0) {
      state.received = { path: state.path, headers: [...state.requestHeaders], at: Date.now() };
    }
    if (!this.#trace) return;
    for (const [name, value] of this.#trace.upstreamHeaders()) {
      state.requestHeaders.set(name, value);
      state.changes.headers.add(name);
    }
  }

  /** The response headers' policies have run: the status is final, and Server-Timing can go out. */
  #responseDecided(chain: Chain, state: ExchangeState): void {
    state.finalStatus = state.status;
    if (!chain.serverTiming) return;
    state.responseHeaders.append("server-timing", serverTimingValue(state.trace));
    state.changes.headers.add("server-timing");
  }

  /**
   * Prepares a streamed body: its pipeline; no `content-length` (a policy may change the
   * size, and Envoy keeps the header when STREAMED is switched on by an override); for a
   * compressed response, a decompressor and no `content-encoding` (what goes on is plain).
   */
  #startStreaming(phase: Phase, chain: Chain): void {
    const state = this.#state;
    const { limits } = this.#binding;
    const chunkLimits = {
      maxAccumulatedBytes: limits.maxAccumulatedBytes,
      defaultTimeoutMs: limits.policyTimeoutMs,
    };
    this.#pipelines[phase] = new ChunkPipeline(
      PHASES[phase].streaming(chain),
      phase,
      state,
      chunkLimits,
      this.observer,
    );
    const headers = phase === "request" ? state.requestHeaders : state.responseHeaders;
    if (headers.delete("content-length")) state.changes.headers.add("content-length");
    if (phase !== "response") return;
    const coding = decodable(headers.get("content-encoding"));
    if (!coding) return;
    // Made at the first chunk: a zlib stream costs native memory, and many streams end first.
    this.#compression = coding;
    headers.delete("content-encoding");
    state.changes.headers.add("content-encoding");
  }

  /** One chunk of a streamed body: one answer, carrying what the pipeline forwards. */
  async #onChunk(
    phase: Phase,
    pipeline: ChunkPipeline,
    bytes: Uint8Array,
    endOfStream: boolean,
  ): Promise<ProcessingResponse> {
    const ops = PHASES[phase];
    const { maxChunkBytes } = this.#binding.limits;
    // After the response headers went out, an immediate response makes Envoy end the stream.
    if (bytes.byteLength > maxChunkBytes) return this.#ended(tooLarge(maxChunkBytes));
    const decompressor = phase === "response" ? this.#decompressorFor() : undefined;
    const input = decompressor ? await decompressor.push(bytes, endOfStream) : bytes;
    const step = await pipeline.push(input, endOfStream);
    if ("end" in step) return this.#ended(step.end);
    if (step.data === bytes) return reply(ops.bodyReply, undefined);
    return reply(ops.bodyReply, chunkResponse(step.data));
  }

  #decompressorFor(): ChunkDecompressor | undefined {
    if (this.#compression && !this.#decompressor) {
      this.#decompressor = new ChunkDecompressor(this.#compression);
    }
    return this.#decompressor;
  }

  #ended(outcome: ImmediateOutcome): ProcessingResponse {
    this.#answeredWith(outcome);
    return immediateReply(outcome, this.#metadata(this.#state));
  }

  #onBody(
    phase: Phase,
    bytes: Uint8Array,
    endOfStream: boolean,
  ): Settled<ProcessingResponse> {
    const pipeline = this.#pipelines[phase];
    if (pipeline) return this.#onChunk(phase, pipeline, bytes, endOfStream);
    return this.#onBufferedBody(phase, bytes, endOfStream);
  }

  #onBufferedBody(phase: Phase, bytes: Uint8Array, endOfStream: boolean): Settled<ProcessingResponse> {
    const ops = PHASES[phase];
    const entries = ops.entries(this.#binding.chain);
    const ran = this.#ran[phase];
    if (ran >= entries.length) return reply(ops.bodyReply, undefined);
    const { maxBodyBytes } = this.#binding.limits;
    if (bytes.byteLength > maxBodyBytes) return this.#ended(tooLarge(maxBodyBytes));
    const state = this.#state;
    state.beginPhase();
    if (phase === "request" && state.received) state.received.body = bytes.slice();
    ops.setBody(state, new Body(bytes, endOfStream));
    this.#ran[phase] = entries.length;
    return then(
      this.#run(phase, ran, entries.length),
      (immediate) =>
        immediate ? this.#immediate(immediate) : reply(
          ops.bodyReply,
          commonResponse(state, { phase, bodyPhase: true }),
          undefined,
          this.#metadata(state),
        ),
    );
  }
}

/** A value now, or later. */
type Settled<T> = T | Promise<T>;

/** `next(value)` now if `value` is ready, else once it settles: no promise hop for what never waited. */
function then<T, R>(value: Settled<T>, next: (value: T) => R): Settled<R> {
  return value instanceof Promise ? value.then(next) : next(value);
}
