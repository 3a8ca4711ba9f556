/**
 * The state of one HTTP exchange as its chain runs: request and response data, the shared
 * context, and what changed in the current phase (so the ext_proc layer can send Envoy
 * only the net difference).
 */
import type { Body, RequestContext, ResponseContext, RouteInfo } from "../sdk/context.ts";
import { HeaderMap } from "../sdk/headers.ts";
import { queryOf, type ReadonlyQuery } from "../sdk/query.ts";

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
  readonly requestView: RequestContext = new RequestView(this);
  /** The view `onResponse` receives (live). */
  readonly responseView: ResponseContext = new ResponseView(this);
}

/**
 * What `onRequest` sees: live getters over the exchange's state, on the prototype (an object
 * literal with getters would allocate a closure per getter for every request).
 */
class RequestView implements RequestContext {
  readonly #state: ExchangeState;

  constructor(state: ExchangeState) {
    this.#state = state;
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

/** What `onResponse` sees (live, like {@link RequestView}). */
class ResponseView implements ResponseContext {
  readonly #state: ExchangeState;

  constructor(state: ExchangeState) {
    this.#state = state;
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
