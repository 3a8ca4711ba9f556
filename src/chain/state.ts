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

  constructor(route: RouteInfo) {
    this.shared = { requestId: "", route, metadata: {} };
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

  /** The view `onRequest` receives (live: reflects earlier policies' changes). */
  readonly requestView: RequestContext = createRequestView(this);
  /** The view `onResponse` receives (live). */
  readonly responseView: ResponseContext = createResponseView(this);
}

function createRequestView(state: ExchangeState): RequestContext {
  return {
    get shared() {
      return state.shared;
    },
    get headers() {
      return state.requestHeaders;
    },
    get body() {
      return state.requestBody;
    },
    get path() {
      return state.path;
    },
    get query() {
      return state.query;
    },
    get method() {
      return state.method;
    },
    get authority() {
      return state.authority;
    },
    get scheme() {
      return state.scheme;
    },
    get clientAddress() {
      return state.clientAddress;
    },
    get attributes() {
      return state.attributes;
    },
  };
}

function createResponseView(state: ExchangeState): ResponseContext {
  return {
    get shared() {
      return state.shared;
    },
    get requestHeaders() {
      return state.requestHeaders;
    },
    get requestBody() {
      return state.requestBody;
    },
    get requestPath() {
      return state.path;
    },
    get requestQuery() {
      return state.query;
    },
    get clientAddress() {
      return state.clientAddress;
    },
    get attributes() {
      return state.attributes;
    },
    get requestMethod() {
      return state.method;
    },
    get responseHeaders() {
      return state.responseHeaders;
    },
    get responseBody() {
      return state.responseBody;
    },
    get responseStatus() {
      return state.status;
    },
  };
}
