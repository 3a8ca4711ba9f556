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
import type { Chain, ChainEntry } from "../chain/chain.ts";
import { type ImmediateOutcome, type Phase, type RunObserver, runPolicies } from "../chain/run.ts";
import { ExchangeState } from "../chain/state.ts";
import { type Binding, type Kernel, PASS_THROUGH_CHAIN } from "../kernel/routes.ts";
import type { UnmatchedAction, UnmatchedReason } from "../kernel/unmatched.ts";
import { Body } from "../sdk/context.ts";
import { clientAddressOf } from "./address.ts";
import { ChunkPipeline } from "../chain/chunks.ts";
import { ChunkDecompressor, decodable } from "./decompress.ts";
import { modeOverrideFor, PASS_THROUGH_MODE, streamedResponseMode } from "./mode.ts";
import {
  analyticsMetadata,
  chunkResponse,
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
type HeaderMessage = Parameters<typeof loadRequestHeaders>[1];

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
  route: PASS_THROUGH_CHAIN.route,
  limits: { maxBodyBytes: 0, maxChunkBytes: 0, maxAccumulatedBytes: 0, policyTimeoutMs: 0 },
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

/** Counts what the stream does, for metrics. */
export interface StreamObserver extends RunObserver {
  immediateResponse(policy: string, status: number): void;
  unmatchedRequest(reason: UnmatchedReason, action: UnmatchedAction): void;
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

  constructor(private readonly kernel: Kernel, private readonly observer?: StreamObserver) {}

  /** The stream has ended: its chain's table may close its policies once no stream uses it. */
  release(): void {
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
    if (binding.unmatched) {
      this.observer?.unmatchedRequest(
        route === undefined ? "no_route_name" : "unknown_route",
        binding.unmatched,
      );
    }
    if (binding.unmatched === "deny") return "deny";
    if (binding.chain.isEmpty) return "pass";
    this.#binding = binding;
    this.#state = new ExchangeState(binding.route);
    loadAttributes(this.#state, request);
    return "run";
  }

  #refuse(route: string | undefined, requestId: string | undefined): ProcessingResponse {
    const outcome = routeNotConfigured(route, requestId);
    this.observer?.immediateResponse(outcome.policy, outcome.statusCode);
    return immediateReply(outcome);
  }

  async #run(phase: Phase, from: number, to: number): Promise<ImmediateOutcome | undefined> {
    const { chain, limits } = this.#binding;
    const outcome = await runPolicies(
      PHASES[phase].entries(chain),
      from,
      to,
      phase,
      this.#state,
      this.observer,
      // The table the stream is bound to: a request keeps the config it started with.
      limits.policyTimeoutMs,
    );
    if (outcome) this.observer?.immediateResponse(outcome.policy, outcome.statusCode);
    return outcome;
  }

  /**
   * Request or response headers. A stream normally binds at the request headers; one that
   * starts at the response headers is an Envoy local reply, bound there, and no mode
   * override was sent for it yet.
   */
  async #onHeaders(
    phase: Phase,
    request: ProcessingRequest,
    headers: HeaderMessage,
    endOfStream: boolean,
  ): Promise<ProcessingResponse> {
    const ops = PHASES[phase];
    const startsHere = phase === "request" || this.#binding === UNBOUND;
    if (startsHere) {
      const route = routeNameOf(request);
      const bound = this.#bind(request, route);
      if (bound === "deny") return this.#refuse(route, headerValue(headers, "x-request-id"));
      if (bound === "pass") {
        return reply(ops.headersReply, undefined, phase === "request" ? PASS_THROUGH_MODE : undefined);
      }
    }
    const { chain } = this.#binding;
    const state = this.#state;
    if (phase === "response" && !chain.needsResponse) return reply(ops.headersReply, undefined);
    state.beginPhase();
    ops.loadHeaders(state, headers);
    if (startsHere) state.shared.requestId = ops.headersOf(state).get("x-request-id") ?? crypto.randomUUID();
    const entries = ops.entries(chain);
    const bodyComing = ops.needsBody(chain) && !endOfStream;
    const to = bodyComing ? ops.headersCount(chain) : entries.length;
    this.#ran[phase] = to;
    const immediate = await this.#run(phase, 0, to);
    if (immediate) return immediateReply(immediate, analyticsMetadata(state));
    const streams = !endOfStream && ops.streaming(chain).length > 0;
    if (streams) this.#startStreaming(phase, chain);
    // The request answer sets the modes of the whole exchange; a stream that starts at the
    // response headers sets them only if a response body is to come. A streamed response
    // body is asked for at the response headers, once there is one.
    const mode = phase === "request"
      ? modeOverrideFor(chain)
      : streams
      ? streamedResponseMode(chain)
      : startsHere && bodyComing
      ? modeOverrideFor(chain)
      : undefined;
    return reply(
      ops.headersReply,
      commonResponse(state, { phase, bodyPhase: false }),
      mode,
      analyticsMetadata(state),
    );
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
    this.observer?.immediateResponse(outcome.policy, outcome.statusCode);
    return immediateReply(outcome);
  }

  #onBody(
    phase: Phase,
    bytes: Uint8Array,
    endOfStream: boolean,
  ): Promise<ProcessingResponse> | ProcessingResponse {
    const pipeline = this.#pipelines[phase];
    if (pipeline) return this.#onChunk(phase, pipeline, bytes, endOfStream);
    return this.#onBufferedBody(phase, bytes, endOfStream);
  }

  async #onBufferedBody(phase: Phase, bytes: Uint8Array, endOfStream: boolean): Promise<ProcessingResponse> {
    const ops = PHASES[phase];
    const entries = ops.entries(this.#binding.chain);
    const ran = this.#ran[phase];
    if (ran >= entries.length) return reply(ops.bodyReply, undefined);
    const { maxBodyBytes } = this.#binding.limits;
    if (bytes.byteLength > maxBodyBytes) return immediateReply(tooLarge(maxBodyBytes));
    const state = this.#state;
    state.beginPhase();
    ops.setBody(state, new Body(bytes, endOfStream));
    this.#ran[phase] = entries.length;
    const immediate = await this.#run(phase, ran, entries.length);
    if (immediate) return immediateReply(immediate, analyticsMetadata(state));
    return reply(
      ops.bodyReply,
      commonResponse(state, { phase, bodyPhase: true }),
      undefined,
      analyticsMetadata(state),
    );
  }
}
