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
import type { Chain } from "../chain/chain.ts";
import { type ImmediateOutcome, type Phase, type RunObserver, runPolicies } from "../chain/run.ts";
import { ExchangeState } from "../chain/state.ts";
import type { Kernel, RouteTable } from "../kernel/routes.ts";
import type { UnmatchedAction, UnmatchedReason } from "../kernel/unmatched.ts";
import { Body } from "../sdk/context.ts";
import { clientAddressOf } from "./address.ts";
import { modeOverrideFor, PASS_THROUGH_MODE } from "./mode.ts";
import {
  analyticsMetadata,
  commonResponse,
  immediateResponse,
  loadRequestHeaders,
  loadResponseHeaders,
  valueOf,
} from "./translate.ts";

/** The attribute namespace Envoy uses for `request_attributes`, whatever the filter's name. */
const ATTRIBUTES_KEY = "envoy.filters.http.ext_proc";
const ROUTE_ATTRIBUTE = "xds.route_name";
const SOURCE_ATTRIBUTE = "source.address";

type PhaseReply = "requestHeaders" | "requestBody" | "responseHeaders" | "responseBody";

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

/** Counts what the stream does, for metrics. */
export interface StreamObserver extends RunObserver {
  immediateResponse(policy: string, status: number): void;
  unmatchedRequest(reason: UnmatchedReason, action: UnmatchedAction): void;
}

export class ExchangeStream {
  #chain: Chain | undefined;
  #state: ExchangeState | undefined;
  /** The table whose chain this stream runs, held until {@link release}. */
  #table: RouteTable | undefined;
  #maxBodyBytes = 0;
  /** Request entries already run; the rest run when the body arrives. */
  #requestRan = 0;
  #responseRan = 0;
  /** Set once request or response headers arrived: request headers come first and once. */
  #headersSeen = false;

  constructor(private readonly kernel: Kernel, private readonly observer?: StreamObserver) {}

  /** The stream has ended: its chain's table may close its policies once no stream uses it. */
  release(): void {
    this.#table?.release();
    this.#table = undefined;
  }

  /** Handles one message; undefined means "send nothing" (observability mode, unknown message). */
  handle(
    request: ProcessingRequest,
  ): Promise<ProcessingResponse | undefined> | ProcessingResponse | undefined {
    if (request.observabilityMode) return undefined;
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
    if (unmatched) {
      this.observer?.unmatchedRequest(route === undefined ? "no_route_name" : "unknown_route", unmatched);
    }
    if (unmatched === "deny") return "deny";
    if (!chain || chain.isEmpty) return "pass";
    table.acquire();
    this.#table = table;
    this.#chain = chain;
    this.#maxBodyBytes = table.config.limits.maxBodyBytes;
    // The default chain runs for many routes: its policies see the name Envoy sent.
    this.#state = new ExchangeState(unmatched ? { name: route ?? "" } : chain.route);
    loadAttributes(this.#state, request);
    return "run";
  }

  #refuse(route: string | undefined, requestId: string | undefined): ProcessingResponse {
    const outcome = routeNotConfigured(route, requestId);
    this.observer?.immediateResponse(outcome.policy, outcome.statusCode);
    return immediateReply(outcome);
  }

  /** Runs the chain's `phase` policies `[from, to)`: synchronously when none of them waits. */
  #run(phase: Phase, from: number, to: number): Settled<ImmediateOutcome | undefined> {
    const chain = this.#chain!;
    const outcome = runPolicies(
      phase === "request" ? chain.request : chain.response,
      from,
      to,
      phase,
      this.#state!,
      this.observer,
      // The table the stream is bound to: a request keeps the config it started with.
      this.#table!.config.limits.policyTimeoutMs,
    );
    return then(outcome, (immediate) => {
      if (immediate) this.observer?.immediateResponse(immediate.policy, immediate.statusCode);
      return immediate;
    });
  }

  #onRequestHeaders(
    request: ProcessingRequest,
    headers: Parameters<typeof loadRequestHeaders>[1],
    endOfStream: boolean,
  ): Settled<ProcessingResponse> {
    const route = routeNameOf(request);
    const bound = this.#bind(request, route);
    if (bound === "deny") return this.#refuse(route, headerValue(headers, "x-request-id"));
    if (bound === "pass") return reply("requestHeaders", undefined, PASS_THROUGH_MODE);
    const chain = this.#chain!;
    const state = this.#state!;
    loadRequestHeaders(state, headers);
    state.shared.requestId = state.requestHeaders.get("x-request-id") ?? crypto.randomUUID();
    const bodyComing = chain.needsRequestBody && !endOfStream;
    const to = bodyComing ? chain.requestHeadersCount : chain.request.length;
    this.#requestRan = to;
    return then(
      this.#run("request", 0, to),
      (immediate) =>
        immediate ? immediateReply(immediate, analyticsMetadata(state)) : reply(
          "requestHeaders",
          commonResponse(state, { side: "request", bodyPhase: false }),
          modeOverrideFor(chain),
          analyticsMetadata(state),
        ),
    );
  }

  #onResponseHeaders(
    request: ProcessingRequest,
    headers: Parameters<typeof loadResponseHeaders>[1],
    endOfStream: boolean,
  ): Settled<ProcessingResponse> {
    // A stream that starts here is an Envoy local reply: no mode override was sent yet.
    const startsHere = this.#state === undefined;
    if (startsHere) {
      const route = routeNameOf(request);
      const bound = this.#bind(request, route);
      if (bound === "deny") return this.#refuse(route, headerValue(headers, "x-request-id"));
      if (bound === "pass") return reply("responseHeaders", undefined);
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
    return then(
      this.#run("response", 0, to),
      (immediate) =>
        immediate ? immediateReply(immediate, analyticsMetadata(state)) : reply(
          "responseHeaders",
          commonResponse(state, { side: "response", bodyPhase: false }),
          startsHere && bodyComing ? modeOverrideFor(chain) : undefined,
          analyticsMetadata(state),
        ),
    );
  }

  #onBody(side: Phase, bytes: Uint8Array, endOfStream: boolean): Settled<ProcessingResponse> {
    const kind: PhaseReply = side === "request" ? "requestBody" : "responseBody";
    const chain = this.#chain;
    const state = this.#state;
    const entries = side === "request" ? chain?.request : chain?.response;
    const ran = side === "request" ? this.#requestRan : this.#responseRan;
    if (!chain || !state || !entries || ran >= entries.length) return reply(kind, undefined);
    if (bytes.byteLength > this.#maxBodyBytes) return immediateReply(tooLarge(this.#maxBodyBytes));
    state.beginPhase();
    if (side === "request") {
      state.requestBody = new Body(bytes, endOfStream);
      this.#requestRan = entries.length;
    } else {
      state.responseBody = new Body(bytes, endOfStream);
      this.#responseRan = entries.length;
    }
    return then(
      this.#run(side, ran, entries.length),
      (immediate) =>
        immediate ? immediateReply(immediate, analyticsMetadata(state)) : reply(
          kind,
          commonResponse(state, { side, bodyPhase: true }),
          undefined,
          analyticsMetadata(state),
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
