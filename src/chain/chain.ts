/**
 * A route's chain, ready to run: its policy instances and, computed once when the chain is
 * built, which of them take part in each phase and which need a buffered body.
 */
import type { FailureRule } from "../config/types.ts";
import type { ImmediateResponseInit, RequestAction, ResponseAction } from "../sdk/actions.ts";
import type { StreamingOptions } from "../sdk/chunk.ts";
import type { RouteInfo } from "../sdk/context.ts";
import type { ProcessingMode } from "../sdk/mode.ts";
import type { Params, Policy } from "../sdk/policy.ts";
import type { DecisionEntry } from "../observe/decision_trace.ts";
import type { AuditEntry } from "./audit.ts";
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

/** The chunk runner of a batch runner that has one. */
export function chunkRunnerOf(batch: BatchRunner | undefined): ChunkBatchRunner | undefined {
  const candidate = batch as Partial<ChunkBatchRunner> | undefined;
  return typeof candidate?.runChunk === "function" ? candidate as ChunkBatchRunner : undefined;
}

/** A policy instance that is run by a batch runner (see {@link ChainEntry.batch}). */
export interface Batched {
  readonly batchRunner: BatchRunner;
}

/** One policy instance in a chain. */
export interface ChainEntry {
  /** `name:vMAJOR`, used in logs, metrics and error bodies. */
  readonly label: string;
  /** The policy's name and its definition's full version (`v1.2.3`), for metrics and traces. */
  readonly name: string;
  readonly version: string;
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
  /** How a streamed body is cut before this policy sees it (its definition's `streaming`). */
  readonly streaming: StreamingOptions;
}

const takesRequest = (m: ProcessingMode) => m.requestHeaderMode === "PROCESS" || m.requestBodyMode !== "SKIP";
const takesResponse = (m: ProcessingMode) =>
  m.responseHeaderMode === "PROCESS" || m.responseBodyMode !== "SKIP";
const readsRequestBody = (m: ProcessingMode) => m.requestBodyMode !== "SKIP";
const readsResponseBody = (m: ProcessingMode) => m.responseBodyMode !== "SKIP";

/**
 * The entries that see a direction's body chunk by chunk: every body reader, when all of
 * them stream. One buffering policy makes the whole direction buffered (its streaming
 * policies then get the whole body as one chunk), so none are returned.
 */
function streamingEntries(
  entries: readonly ChainEntry[],
  bodyMode: (m: ProcessingMode) => ProcessingMode["requestBodyMode"],
): readonly ChainEntry[] {
  const readers = entries.filter((e) => bodyMode(e.mode) !== "SKIP");
  return readers.every((e) => bodyMode(e.mode) === "STREAM") ? readers : [];
}

/** How many leading entries can run before the body is needed (all of them if none needs it). */
function headerPrefix(entries: readonly ChainEntry[], needsBody: (m: ProcessingMode) => boolean): number {
  const first = entries.findIndex((e) => needsBody(e.mode));
  return first === -1 ? entries.length : first;
}

/** What a chain records beyond its running policies. */
export interface ChainExtras {
  /** Entries of policies configured with `enabled: false`, as the trace shows them. */
  readonly disabled?: readonly DecisionEntry[];
  /** Auditing policies: run off the request path once the exchange is over (./audit.ts). */
  readonly audits?: readonly AuditEntry[];
  /** Send a `Server-Timing` response header with the policies' durations (route `serverTiming`). */
  readonly serverTiming?: boolean;
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
  /** A buffered request body is needed. */
  readonly needsRequestBody: boolean;
  readonly needsResponse: boolean;
  /** A buffered response body is needed. */
  readonly needsResponseBody: boolean;
  readonly disabled: readonly DecisionEntry[];
  readonly audits: readonly AuditEntry[];
  readonly serverTiming: boolean;
  /**
   * Request entries that see the body chunk by chunk, in chain order; empty unless every
   * request body reader streams. All request header handlers then run on the headers.
   */
  readonly requestStreaming: readonly ChainEntry[];
  /** Response entries that see the body chunk by chunk, in response order (see above). */
  readonly responseStreaming: readonly ChainEntry[];

  constructor(
    readonly route: RouteInfo,
    readonly entries: readonly ChainEntry[],
    extras: ChainExtras = {},
  ) {
    this.disabled = extras.disabled ?? [];
    this.audits = extras.audits ?? [];
    this.serverTiming = extras.serverTiming ?? false;
    this.request = entries.filter((e) => takesRequest(e.mode));
    this.response = entries.filter((e) => takesResponse(e.mode)).reverse();
    this.requestStreaming = streamingEntries(this.request, (m) => m.requestBodyMode);
    this.responseStreaming = streamingEntries(this.response, (m) => m.responseBodyMode);
    this.requestHeadersCount = this.requestStreaming.length > 0
      ? this.request.length
      : headerPrefix(this.request, readsRequestBody);
    this.responseHeadersCount = this.responseStreaming.length > 0
      ? this.response.length
      : headerPrefix(this.response, readsResponseBody);
    this.needsRequestBody = this.requestHeadersCount < this.request.length;
    // Auditing needs the response's status, Server-Timing a response to carry it.
    this.needsResponse = this.response.length > 0 || this.audits.length > 0 ||
      (this.serverTiming && entries.length > 0);
    this.needsResponseBody = this.responseHeadersCount < this.response.length;
  }

  /** True when no policy takes part in any phase: the route passes through. */
  get isEmpty(): boolean {
    return this.request.length === 0 && this.response.length === 0 && this.audits.length === 0;
  }
}
