/**
 * What a policy sees of the request it runs for. The engine keeps these views up to date
 * as a chain runs: each policy sees the changes of the policies before it.
 *
 * @module
 */
import type { ReadonlyHeaders } from "./headers.ts";
import type { ReadonlyQuery } from "./query.ts";

const utf8 = new TextDecoder();

/** A whole (buffered) HTTP body. */
export class Body {
  /**
   * @param content the body bytes
   * @param endOfStream false when trailers follow the body
   */
  constructor(readonly content: Uint8Array, readonly endOfStream = true) {}

  /** The body decoded as UTF-8. */
  text(): string {
    return utf8.decode(this.content);
  }

  /** The body parsed as JSON; throws a `SyntaxError` if it is not JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T;
  }

  /** Size in bytes. */
  get length(): number {
    return this.content.byteLength;
  }
}

/** Optional API identity of a route, from the route's `api` block in the engine config. */
export interface ApiInfo {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly context: string;
}

/** The Envoy route a request matched (its `name`, which selects the chain). */
export interface RouteInfo {
  readonly name: string;
  readonly api?: ApiInfo;
}

/** State shared by every policy of one request, from the request phase to the response phase. */
export interface SharedContext {
  /** Envoy's `x-request-id`, or an id the engine made up if the header is absent. */
  readonly requestId: string;
  readonly route: RouteInfo;
  /**
   * A map policies use to pass values to later policies of the same request (including the
   * response phase). Values must be JSON values to be visible to Python policies.
   */
  readonly metadata: Record<string, unknown>;
}

/** Facts about the downstream connection, the same in every phase of a request. */
export interface ConnectionInfo {
  /**
   * The downstream client's IP address (IPv6 without brackets, no port), from Envoy's
   * `source.address` request attribute; `undefined` when Envoy does not send it (add
   * `source.address` to the filter's `request_attributes`, as docs/examples/envoy.yaml does).
   * This is the address of the peer Envoy sees: behind a load balancer, read
   * `x-forwarded-for` with a known number of trusted hops instead.
   */
  readonly clientAddress: string | undefined;
  /**
   * Every request attribute Envoy sent (its `request_attributes`), by attribute name, e.g.
   * `attributes["source.address"]` is `"203.0.113.7:51234"`.
   */
  readonly attributes: Readonly<Record<string, unknown>>;
}

/** The lifetime of one policy call. */
export interface CallInfo {
  /**
   * Fires when the result of this call is no longer wanted: the policy's timeout passed
   * (reason: a `TimeoutError` DOMException), or Envoy cancelled the request because the client
   * went away or the stream was reset (reason: an `AbortError` DOMException). Hand it to
   * `fetch()` and other cancellable work so it stops instead of running on.
   */
  readonly signal: AbortSignal;
}

/** The request as a policy sees it in `onRequest`. */
export interface RequestContext extends ConnectionInfo, CallInfo {
  readonly shared: SharedContext;
  readonly headers: ReadonlyHeaders;
  /**
   * The whole body, when Envoy buffered it: always for a policy whose definition declares
   * `processingMode.requestBodyMode: BUFFER` (for this instance's parameters); otherwise only
   * if an earlier policy of the chain needed it.
   */
  readonly body: Body | undefined;
  /** The `:path` pseudo-header: path and query. */
  readonly path: string;
  /** The query parameters of {@link RequestContext.path}. */
  readonly query: ReadonlyQuery;
  readonly method: string;
  readonly authority: string;
  readonly scheme: string;
}

/** The response (and the request it answers) as a policy sees it in `onResponse`. */
export interface ResponseContext extends ConnectionInfo, CallInfo {
  readonly shared: SharedContext;
  readonly requestHeaders: ReadonlyHeaders;
  /** The request body, when some policy of the chain had it buffered (see {@link RequestContext.body}). */
  readonly requestBody: Body | undefined;
  readonly requestPath: string;
  /** The query parameters of {@link ResponseContext.requestPath}. */
  readonly requestQuery: ReadonlyQuery;
  readonly requestMethod: string;
  readonly responseHeaders: ReadonlyHeaders;
  /**
   * The whole body, when Envoy buffered it: always for a policy whose definition declares
   * `processingMode.responseBodyMode: BUFFER` (for this instance's parameters); otherwise only
   * if an earlier policy of the chain needed it.
   */
  readonly responseBody: Body | undefined;
  readonly responseStatus: number;
}

/** Where a policy instance is attached; given to its factory once, when the chain is built. */
export interface PolicyMetadata {
  readonly routeName: string;
  readonly policyName: string;
  /** Full version of the policy definition, e.g. `v1.0.0`. */
  readonly policyVersion: string;
  readonly api?: ApiInfo;
  /** Always `"route"` for now: chains are configured per route. */
  readonly attachedTo: "route";
}
