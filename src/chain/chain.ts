/**
 * A route's chain, ready to run: its policy instances and, computed once when the chain is
 * built, which of them take part in each phase and which need a buffered body.
 */
import type { FailureRule } from "../config/types.ts";
import type { ImmediateResponseInit, RequestAction, ResponseAction } from "../sdk/actions.ts";
import type { RouteInfo } from "../sdk/context.ts";
import type { ProcessingMode } from "../sdk/mode.ts";
import type { Params, Policy } from "../sdk/policy.ts";
import type { ExchangeState } from "./state.ts";

/** What a policy can return in either phase. */
export type AnyAction = RequestAction | ResponseAction;

/** What one policy produced: an action to apply, or the error it failed with. */
export type PolicyOutcome = { readonly action: AnyAction } | { readonly error: unknown };

/**
 * A compiled execution condition: whether the policy runs for this exchange. Throws a
 * PolicyFailure when it cannot be evaluated (handled under the policy's `onFailure` rule).
 */
export type Condition = (state: ExchangeState, phase: "request" | "response") => boolean;

/**
 * Runs several adjacent policies of one runtime in one round trip (the Python bridge).
 * Returns one outcome per policy that ran, in order; it stops where the engine would stop
 * (an immediate response, or a failure whose rule is not `continue`).
 */
export interface BatchRunner {
  run(
    entries: readonly ChainEntry[],
    phase: "request" | "response",
    state: ExchangeState,
  ): Promise<readonly PolicyOutcome[]>;
}

/** What one policy did with a chunk (run by a {@link ChunkBatchRunner}). */
export type ChunkOutcome =
  | { readonly kind: "forwarded" }
  | { readonly kind: "replaced" }
  | { readonly kind: "ended"; readonly response?: ImmediateResponseInit }
  | { readonly error: unknown };

/** A batch's chunk results: one outcome per policy that ran, and what to forward after them. */
export interface ChunkBatchResult {
  readonly outcomes: readonly ChunkOutcome[];
  readonly data: Uint8Array;
}

/**
 * Runs the chunk handlers of adjacent policies of one runtime (the Python bridge) on one
 * chunk, each on the previous one's output, stopping where the engine would stop (an end,
 * or a failure whose rule is not `continue`). Shared metadata is merged back into `state`.
 */
export interface ChunkBatchRunner {
  runChunk(
    entries: readonly ChainEntry[],
    phase: "request" | "response",
    chunk: Uint8Array,
    endOfStream: boolean,
    chunkIndex: number,
    state: ExchangeState,
  ): Promise<ChunkBatchResult>;
}

/** A policy instance that is run by a batch runner (see {@link ChainEntry.batch}). */
export interface Batched {
  readonly batchRunner: BatchRunner;
}

/** One policy instance in a chain. */
export interface ChainEntry {
  /** `name:vMAJOR`, used in logs, metrics and error bodies. */
  readonly label: string;
  readonly policy: Policy;
  readonly params: Params;
  /** The parameters with secrets redacted: what may be shown (/routes). */
  readonly shownParams: Params;
  /** The secret parameter values, scrubbed from the policy's logged error messages. */
  readonly secrets: readonly string[];
  readonly mode: ProcessingMode;
  readonly onFailure: FailureRule;
  readonly timeoutMs: number | undefined;
  readonly condition: Condition | undefined;
  /** Set for policies run by a batch runner instead of their onRequest/onResponse. */
  readonly batch?: BatchRunner;
}

const takesRequest = (m: ProcessingMode) =>
  m.requestHeaderMode === "PROCESS" || m.requestBodyMode === "BUFFER";
const takesResponse = (m: ProcessingMode) =>
  m.responseHeaderMode === "PROCESS" || m.responseBodyMode === "BUFFER";

/** How many leading entries can run before the body is needed (all of them if none needs it). */
function headerPrefix(entries: readonly ChainEntry[], needsBody: (m: ProcessingMode) => boolean): number {
  const first = entries.findIndex((e) => needsBody(e.mode));
  return first === -1 ? entries.length : first;
}

export class Chain {
  /** Entries taking part in the request phase, in chain order. */
  readonly request: readonly ChainEntry[];
  /** Entries taking part in the response phase, in reverse chain order. */
  readonly response: readonly ChainEntry[];
  /**
   * Leading request entries that run when the request headers arrive. The rest run when
   * the buffered body arrives, so a body policy sees the changes of the ones before it,
   * and a path rewrite before any body policy still re-routes (Envoy only re-routes on a
   * headers response).
   */
  readonly requestHeadersCount: number;
  /** Leading response entries (in response order) that run on the response headers. */
  readonly responseHeadersCount: number;
  readonly needsRequestBody: boolean;
  readonly needsResponse: boolean;
  readonly needsResponseBody: boolean;

  constructor(readonly route: RouteInfo, readonly entries: readonly ChainEntry[]) {
    this.request = entries.filter((e) => takesRequest(e.mode));
    this.response = entries.filter((e) => takesResponse(e.mode)).reverse();
    this.requestHeadersCount = headerPrefix(this.request, (m) => m.requestBodyMode === "BUFFER");
    this.responseHeadersCount = headerPrefix(this.response, (m) => m.responseBodyMode === "BUFFER");
    this.needsRequestBody = this.requestHeadersCount < this.request.length;
    this.needsResponse = this.response.length > 0;
    this.needsResponseBody = this.responseHeadersCount < this.response.length;
  }

  /** True when no policy takes part in any phase: the route passes through. */
  get isEmpty(): boolean {
    return this.request.length === 0 && this.response.length === 0;
  }
}
