/**
 * The state of one HTTP exchange as its chain runs: request and response data, the shared
 * context, and what changed in the current phase (so the ext_proc layer can send Envoy
 * only the net difference).
 */
import type { Body, RequestContext, ResponseContext, RouteInfo } from "../sdk/context.ts";
import { HeaderMap } from "../sdk/headers.ts";
import { queryOf, type ReadonlyQuery } from "../sdk/query.ts";
import type { DecisionEntry } from "../observe/decision_trace.ts";

const NO_ATTRIBUTES: Readonly<Record<string, unknown>> = Object.freeze({});

/** What policies changed during one phase; reset when a phase starts. */
export class PhaseChanges {
  /** Lower-case names of regular headers whose values changed. */
  readonly headers = new Set<string>();
  body = false;
  path = false;
  method = false;
  authority = false;
  status = false;
  /** Key/values for Envoy's dynamic metadata (namespace `tollgate`). */
  analytics: Record<string, unknown> | undefined;

  get any(): boolean {
    return this.headers.size > 0 || this.body || this.path || this.method || this.authority ||
      this.status ||
      this.analytics !== undefined;
  }
}

/** The request as Envoy sent it (for auditing). */
export interface ReceivedRequest {
  readonly path: string;
  readonly headers: readonly (readonly [string, string])[];
  body?: Uint8Array;
  /** `Date.now()` when the request headers arrived. */
  readonly at: number;
}

/** How a recorded decision came about, beyond its entry. */
export interface DecisionDetail {
  /** Settled from a batch runner's results (a Python batch): it belongs to the last batch recorded. */
  readonly batched: boolean;
  /** A failure's message, secrets scrubbed. */
  readonly error?: string;
}

/**
 * Sees one exchange's policy decisions and Python batches as they happen (tracing, which
 * turns them into spans when a phase ends). Set only on exchanges something records.
 */
export interface ExchangeRecorder {
  decided(decision: DecisionEntry, detail: DecisionDetail): void;
  /** One round trip of a batch runner, `performance.now()` times; `error` when the call failed. */
  batchRan(startMs: number, endMs: number, error?: string): void;
}

export class ExchangeState {
  requestHeaders = new HeaderMap();
  requestBody: Body | undefined;
  path = "";
  method = "";
  authority = "";
  scheme = "";
  /** Envoy's request attributes (`request_attributes`), by name. */
  attributes: Readonly<Record<string, unknown>> = NO_ATTRIBUTES;
  /** The downstream IP from the `source.address` attribute. */
  clientAddress: string | undefined;
  #queryPath: string | undefined;
  #query: ReadonlyQuery | undefined;

  responseHeaders = new HeaderMap();
  responseBody: Body | undefined;
  status = 0;

  changes = new PhaseChanges();
  /** What each policy of the chain did so far, in order (src/observe/decision_trace.ts). */
  readonly trace: DecisionEntry[] = [];
  /**
   * The request as Envoy sent it, before any policy changed it: kept only for chains with
   * auditing policies (./audit.ts).
   */
  received: ReceivedRequest | undefined;
  /** The status the client got (an immediate response's, or the response's after its policies); 0 until known. */
  finalStatus = 0;
  /** Set when the exchange is traced (src/observe/tracing.ts); undefined costs nothing. */
  recorder: ExchangeRecorder | undefined;
  readonly shared: {
    requestId: string;
    readonly route: RouteInfo;
    readonly metadata: Record<string, unknown>;
  };

  /** Set once Envoy cancelled the exchange. */
  #cancelled = false;
  #cancel: AbortController | undefined;

  constructor(route: RouteInfo) {
    this.shared = { requestId: "", route, metadata: {} };
  }

  /** Fires when Envoy cancels the exchange (see {@link cancel}); made when first asked for. */
  get cancelSignal(): AbortSignal {
    if (!this.#cancel) {
      this.#cancel = new AbortController();
      if (this.#cancelled) this.#cancel.abort(cancelledReason());
    }
    return this.#cancel.signal;
  }

  /**
   * Envoy ended the exchange's stream (a client that went away, a reset): tell running
   * policies. The transport calls this when every stream closes, so the reason (a
   * DOMException, which captures a stack) is made only for a signal someone holds.
   */
  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#cancel?.abort(cancelledReason());
  }

  /** The view one policy call's `onRequest` receives: live, with the call's own signal. */
  requestViewFor(call: PolicyCall): RequestContext {
    return new RequestView(this, call);
  }

  /** The view one policy call's `onResponse` receives. */
  responseViewFor(call: PolicyCall): ResponseContext {
    return new ResponseView(this, call);
  }

  /** The query of the current path, parsed when first asked for after each path change. */
  get query(): ReadonlyQuery {
    if (this.#queryPath !== this.path || !this.#query) {
      this.#query = queryOf(this.path);
      this.#queryPath = this.path;
    }
    return this.#query;
  }

  /** Starts tracking the changes of a new phase. */
  beginPhase(): void {
    this.changes = new PhaseChanges();
  }

  /** A view of the request phase outside any policy call (live: reflects policies' changes). */
  readonly requestView: RequestContext = new RequestView(this, undefined);
  /** A view of the response phase outside any policy call (live). */
  readonly responseView: ResponseContext = new ResponseView(this, undefined);
}

/**
 * One policy call's lifetime: its signal fires when the call times out or Envoy cancels the
 * exchange. Nothing is allocated for a call whose policy never reads `ctx.signal`.
 */
export class PolicyCall {
  #timeout: AbortController | undefined;
  #timedOut: DOMException | undefined;
  #signal: AbortSignal | undefined;

  constructor(private readonly exchange: ExchangeState) {}

  get signal(): AbortSignal {
    if (!this.#signal) {
      this.#timeout = new AbortController();
      if (this.#timedOut) this.#timeout.abort(this.#timedOut);
      this.#signal = AbortSignal.any([this.exchange.cancelSignal, this.#timeout.signal]);
    }
    return this.#signal;
  }

  /** The call ran out of time: its signal fires (now, or when first read). */
  timedOut(message: string): void {
    this.#timedOut ??= new DOMException(message, "TimeoutError");
    this.#timeout?.abort(this.#timedOut);
  }
}

/** What a cancelled exchange's signal fires with. */
function cancelledReason(): DOMException {
  return new DOMException("Envoy cancelled the request", "AbortError");
}

/**
 * The live views policies get: classes with their getters on the prototype, so a call's view
 * costs one small object (an object literal per call with its own getters costs several
 * times more). The exchange is held privately: a policy cannot reach the engine's state.
 */
class RequestView implements RequestContext {
  readonly #state: ExchangeState;
  readonly #call: PolicyCall | undefined;

  constructor(state: ExchangeState, call: PolicyCall | undefined) {
    this.#state = state;
    this.#call = call;
  }

  get signal(): AbortSignal {
    return this.#call?.signal ?? this.#state.cancelSignal;
  }
  get shared() {
    return this.#state.shared;
  }
  get headers() {
    return this.#state.requestHeaders;
  }
  get body() {
    return this.#state.requestBody;
  }
  get path() {
    return this.#state.path;
  }
  get query() {
    return this.#state.query;
  }
  get method() {
    return this.#state.method;
  }
  get authority() {
    return this.#state.authority;
  }
  get scheme() {
    return this.#state.scheme;
  }
  get clientAddress() {
    return this.#state.clientAddress;
  }
  get attributes() {
    return this.#state.attributes;
  }
}

class ResponseView implements ResponseContext {
  readonly #state: ExchangeState;
  readonly #call: PolicyCall | undefined;

  constructor(state: ExchangeState, call: PolicyCall | undefined) {
    this.#state = state;
    this.#call = call;
  }

  get signal(): AbortSignal {
    return this.#call?.signal ?? this.#state.cancelSignal;
  }
  get shared() {
    return this.#state.shared;
  }
  get requestHeaders() {
    return this.#state.requestHeaders;
  }
  get requestBody() {
    return this.#state.requestBody;
  }
  get requestPath() {
    return this.#state.path;
  }
  get requestQuery() {
    return this.#state.query;
  }
  get clientAddress() {
    return this.#state.clientAddress;
  }
  get attributes() {
    return this.#state.attributes;
  }
  get requestMethod() {
    return this.#state.method;
  }
  get responseHeaders() {
    return this.#state.responseHeaders;
  }
  get responseBody() {
    return this.#state.responseBody;
  }
  get responseStatus() {
    return this.#state.status;
  }
}
