/**
 * What a policy asks the engine to do. Return one of these from `onRequest` or
 * `onResponse`, or nothing to let the request pass unchanged.
 *
 * Within one action, changes apply in this order: `removeHeaders`, then `setHeaders`,
 * then `appendHeaders`, then body, path, method or status.
 *
 * @module
 */
import type { HeaderValues } from "./headers.ts";
import type { QueryChanges } from "./query.ts";

/** Header names (case-insensitive) to values. An array sets or appends several field lines. */
export type HeaderRecord = Readonly<Record<string, HeaderValues>>;

/** A body to send: bytes, or a string sent as UTF-8. */
export type BodyInput = Uint8Array | string;

/** Changes shared by request and response modifications. */
export interface HeaderChanges {
  /** Replace these headers (every existing value) with the given value(s). */
  readonly setHeaders?: HeaderRecord;
  /** Remove these headers entirely. */
  readonly removeHeaders?: readonly string[];
  /** Add these values after any existing ones. */
  readonly appendHeaders?: HeaderRecord;
  /**
   * Key/values for Envoy's access log: sent as dynamic metadata in the `tollgate` namespace
   * (readable as `%DYNAMIC_METADATA(tollgate:key)%` when Envoy lists `tollgate` in
   * `metadata_options.receiving_namespaces`).
   */
  readonly analyticsMetadata?: Readonly<Record<string, unknown>>;
}

/** Fields of {@link UpstreamRequestModifications}. */
export interface UpstreamRequestModificationsInit extends HeaderChanges {
  /** Replace the request body; `content-length` is rewritten to match. */
  readonly body?: BodyInput;
  /** Replace `:path` (path and query). Envoy re-selects the route (clear_route_cache). */
  readonly path?: string;
  /** Replace the method (needs `mutation_rules.allow_all_routing` in Envoy). */
  readonly method?: string;
  /** Change query parameters (applied after `path` when both are given). Envoy re-selects the route. */
  readonly query?: QueryChanges;
  /**
   * Replace `:authority` (the Host), e.g. `api.internal:8443`. Envoy re-selects the route
   * (needs `mutation_rules.allow_all_routing`).
   */
  readonly authority?: string;
}

/** Continue to the upstream, with changes to the request. */
export class UpstreamRequestModifications implements UpstreamRequestModificationsInit {
  readonly kind = "upstream-request" as const;
  readonly setHeaders?: HeaderRecord;
  readonly removeHeaders?: readonly string[];
  readonly appendHeaders?: HeaderRecord;
  readonly analyticsMetadata?: Readonly<Record<string, unknown>>;
  readonly body?: BodyInput;
  readonly path?: string;
  readonly method?: string;
  readonly query?: QueryChanges;
  readonly authority?: string;

  constructor(init: UpstreamRequestModificationsInit = {}) {
    Object.assign(this, init);
  }
}

/** Fields of {@link UpstreamResponseModifications}. */
export interface UpstreamResponseModificationsInit extends HeaderChanges {
  /** Replace the response body; `content-length` is rewritten to match. */
  readonly body?: BodyInput;
  /** Replace the response status code (200–599). */
  readonly statusCode?: number;
}

/** Continue to the client, with changes to the upstream's response. */
export class UpstreamResponseModifications implements UpstreamResponseModificationsInit {
  readonly kind = "upstream-response" as const;
  readonly setHeaders?: HeaderRecord;
  readonly removeHeaders?: readonly string[];
  readonly appendHeaders?: HeaderRecord;
  readonly analyticsMetadata?: Readonly<Record<string, unknown>>;
  readonly body?: BodyInput;
  readonly statusCode?: number;

  constructor(init: UpstreamResponseModificationsInit = {}) {
    Object.assign(this, init);
  }
}

/** The status of an immediate response that names none (the same default as the Python SDK's). */
export const DEFAULT_IMMEDIATE_STATUS = 500;

/** Fields of {@link ImmediateResponse}. */
export interface ImmediateResponseInit {
  /** HTTP status (200–599); {@link DEFAULT_IMMEDIATE_STATUS} when absent. */
  readonly statusCode?: number;
  readonly headers?: HeaderRecord;
  readonly body?: BodyInput;
  readonly analyticsMetadata?: Readonly<Record<string, unknown>>;
}

/**
 * Answer the client now: the rest of the chain is skipped and, in the request phase, the
 * upstream is never called. Allowed in every phase.
 */
export class ImmediateResponse implements ImmediateResponseInit {
  readonly kind = "immediate-response" as const;
  readonly statusCode: number;
  readonly headers?: HeaderRecord;
  readonly body?: BodyInput;
  readonly analyticsMetadata?: Readonly<Record<string, unknown>>;

  constructor(init: ImmediateResponseInit = {}) {
    Object.assign(this, init);
    this.statusCode = init.statusCode ?? DEFAULT_IMMEDIATE_STATUS;
  }
}

/** What `onRequest` may return: nothing means "continue unchanged". */
export type RequestAction = UpstreamRequestModifications | ImmediateResponse | undefined | null | void;

/** What `onResponse` may return: nothing means "continue unchanged". */
export type ResponseAction = UpstreamResponseModifications | ImmediateResponse | undefined | null | void;
