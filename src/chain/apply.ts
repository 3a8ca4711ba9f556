/**
 * Applies a policy's action to the exchange state, validating what Envoy would otherwise
 * reject with a 500 that ignores the policy's failure rule (bad header names or values,
 * out-of-range status codes), and refusing headers only Envoy may manage (framing,
 * hop-by-hop, `host`).
 */
import type {
  BodyInput,
  HeaderChanges,
  HeaderRecord,
  UpstreamRequestModificationsInit,
  UpstreamResponseModificationsInit,
} from "../sdk/actions.ts";
import { Body } from "../sdk/context.ts";
import type { HeaderMap } from "../sdk/headers.ts";
import { didYouMean } from "../config/suggest.ts";
import type { QueryChanges, QueryValues } from "../sdk/query.ts";
import { withQueryChanges } from "./query.ts";
import type { ExchangeState } from "./state.ts";

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
/**
 * Envoy's header value rule (nghttp2's): visible characters, space, tab and obs-text. Any
 * other control character (0x00-0x08, 0x0A-0x1F, 0x7F) fails the whole request in Envoy.
 */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
/**
 * Headers a policy may not set, append or remove: message framing and hop-by-hop headers
 * are Envoy's (a wrong `content-length` makes Envoy wait for bytes that never come), and
 * `host` is Envoy's `:authority` (Envoy never removes it; a set adds a second Host line).
 * The engine itself rewrites `content-length` when a policy replaces a body.
 */
const ENVOY_MANAGED = new Set([
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "proxy-connection",
  "upgrade",
  "te",
  "host",
]);
/** host or host:port, with a bracketed IPv6 literal allowed (RFC 3986 reg-name characters). */
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::\d{1,5})?$/;
const utf8 = new TextEncoder();

/** A policy returned something Envoy cannot apply; handled like a policy error. */
export class InvalidActionError extends Error {
  override name = "InvalidActionError";
}

const HEADER_FIELDS = ["kind", "setHeaders", "removeHeaders", "appendHeaders", "analyticsMetadata", "body"];
/** The fields each kind of action has: anything else is a typo that would silently do nothing. */
const ACTION_FIELDS: Readonly<Record<string, ReadonlySet<string>>> = {
  "upstream-request": new Set([...HEADER_FIELDS, "path", "method", "query", "authority"]),
  "upstream-response": new Set([...HEADER_FIELDS, "statusCode"]),
  "immediate-response": new Set(["kind", "statusCode", "headers", "body", "analyticsMetadata"]),
};

/**
 * Refuses an action with a field its kind does not have (`setHeader:` for `setHeaders:`):
 * the policy meant to change something, so ignoring the field would fail open.
 */
export function checkActionFields(action: object, kind: string): void {
  const known = ACTION_FIELDS[kind];
  if (!known) return;
  for (const field in action) {
    if (!known.has(field)) {
      throw new InvalidActionError(
        `returned a ${kind} action with an unknown field ${field}${didYouMean(field, known)}`,
      );
    }
  }
}

/** Bytes of a body given as bytes or text. */
export function bodyBytes(body: BodyInput): Uint8Array {
  return typeof body === "string" ? utf8.encode(body) : body;
}

function valuesOf(name: string, values: string | readonly string[]): readonly string[] {
  const list = typeof values === "string" ? [values] : values;
  for (const value of list) {
    if (typeof value !== "string") throw new InvalidActionError(`header ${name}: value must be a string`);
    if (BAD_VALUE.test(value)) {
      throw new InvalidActionError(`header ${name}: value contains a control character other than tab`);
    }
  }
  return list;
}

/**
 * Lower-cases and checks a header name a policy may change: pseudo-headers are handled by
 * dedicated fields, and the headers Envoy manages are refused.
 */
export function checkHeaderName(name: string): string {
  const lower = typeof name === "string" ? name.toLowerCase() : "";
  if (!TOKEN.test(lower)) {
    throw new InvalidActionError(
      lower.startsWith(":")
        ? `header ${name}: pseudo-headers are changed with path, method or statusCode, not as headers`
        : `header ${JSON.stringify(name)}: not a valid header name`,
    );
  }
  if (ENVOY_MANAGED.has(lower)) {
    throw new InvalidActionError(
      `header ${lower}: framing, hop-by-hop and host headers are managed by Envoy, not by policies` +
        (lower === "content-length" ? " (the engine rewrites it when a policy replaces the body)" : ""),
    );
  }
  return lower;
}

/** Header changes with names lower-cased and every name and value checked. */
interface CheckedHeaderChanges {
  readonly remove: readonly string[];
  readonly set: readonly [string, readonly string[]][];
  readonly append: readonly [string, readonly string[]][];
}

function checkRecord(record: HeaderRecord | undefined): [string, readonly string[]][] {
  return Object.entries(record ?? {}).map(([raw, values]) => {
    const name = checkHeaderName(raw);
    return [name, valuesOf(name, values)];
  });
}

function checkHeaderChanges(changes: HeaderChanges): CheckedHeaderChanges {
  return {
    remove: (changes.removeHeaders ?? []).map(checkHeaderName),
    set: checkRecord(changes.setHeaders),
    append: checkRecord(changes.appendHeaders),
  };
}

function applyHeaderChanges(headers: HeaderMap, changes: CheckedHeaderChanges, touched: Set<string>): void {
  for (const name of changes.remove) {
    headers.delete(name);
    touched.add(name);
  }
  for (const [name, values] of changes.set) {
    headers.set(name, values);
    touched.add(name);
  }
  for (const [name, values] of changes.append) {
    for (const value of values) headers.append(name, value);
    touched.add(name);
  }
}

function mergeAnalytics(
  state: ExchangeState,
  analytics: Readonly<Record<string, unknown>> | undefined,
): void {
  if (analytics) state.changes.analytics = { ...state.changes.analytics, ...analytics };
}

/**
 * Applies request modifications: headers, then body, path and method. Everything is checked
 * before anything changes, so a rejected action leaves the state as it was.
 */
export function applyRequestModifications(
  state: ExchangeState,
  action: UpstreamRequestModificationsInit,
): void {
  const headers = checkHeaderChanges(action);
  if (action.path !== undefined && (!action.path.startsWith("/") || BAD_VALUE.test(action.path))) {
    throw new InvalidActionError(
      `path ${JSON.stringify(action.path)}: must start with "/" and have no control characters`,
    );
  }
  if (action.method !== undefined && !TOKEN.test(action.method.toLowerCase())) {
    throw new InvalidActionError(`method ${JSON.stringify(action.method)}: not a valid method`);
  }
  if (action.authority !== undefined && !AUTHORITY.test(action.authority)) {
    throw new InvalidActionError(`authority ${JSON.stringify(action.authority)}: not a valid host[:port]`);
  }
  const query = action.query === undefined ? undefined : checkQueryChanges(action.query);
  applyHeaderChanges(state.requestHeaders, headers, state.changes.headers);
  if (action.body !== undefined) {
    state.requestBody = new Body(bodyBytes(action.body), state.requestBody?.endOfStream ?? true);
    state.changes.body = true;
  }
  if (action.path !== undefined) {
    state.path = action.path;
    state.changes.path = true;
  }
  if (query !== undefined) {
    const path = withQueryChanges(state.path, query);
    if (path !== state.path) {
      state.path = path;
      state.changes.path = true;
    }
  }
  if (action.method !== undefined) {
    state.method = action.method;
    state.changes.method = true;
  }
  if (action.authority !== undefined) {
    state.authority = action.authority;
    state.changes.authority = true;
  }
  mergeAnalytics(state, action.analyticsMetadata);
}

function checkQueryValues(name: string, values: QueryValues): void {
  for (const value of typeof values === "string" ? [values] : values) {
    if (typeof value !== "string") throw new InvalidActionError(`query ${name}: value must be a string`);
  }
}

/** Query changes whose names and values are all strings (they are percent-encoded when applied). */
function checkQueryChanges(changes: QueryChanges): QueryChanges {
  for (const name of changes.remove ?? []) {
    if (typeof name !== "string") throw new InvalidActionError("query remove: names must be strings");
  }
  for (const record of [changes.set, changes.add]) {
    for (const [name, values] of Object.entries(record ?? {})) checkQueryValues(name, values);
  }
  return changes;
}

/** Checks a status code is one Envoy will send (200–599 for ext_proc). */
export function checkStatus(status: unknown, what: string): number {
  if (!Number.isInteger(status) || (status as number) < 200 || (status as number) > 599) {
    throw new InvalidActionError(`${what} ${status}: must be an integer from 200 to 599`);
  }
  return status as number;
}

/** Applies response modifications: headers, then body and status (checked first, as above). */
export function applyResponseModifications(
  state: ExchangeState,
  action: UpstreamResponseModificationsInit,
): void {
  const headers = checkHeaderChanges(action);
  if (action.statusCode !== undefined) checkStatus(action.statusCode, "statusCode");
  applyHeaderChanges(state.responseHeaders, headers, state.changes.headers);
  if (action.body !== undefined) {
    state.responseBody = new Body(bodyBytes(action.body), state.responseBody?.endOfStream ?? true);
    state.changes.body = true;
  }
  if (action.statusCode !== undefined) {
    state.status = action.statusCode;
    state.changes.status = true;
  }
  mergeAnalytics(state, action.analyticsMetadata);
}

/** Validated headers of an immediate response, as [name, value] field lines. */
export function immediateHeaderLines(headers: HeaderRecord | undefined): [string, string][] {
  const lines: [string, string][] = [];
  for (const [raw, values] of Object.entries(headers ?? {})) {
    const name = checkHeaderName(raw);
    for (const value of valuesOf(name, values)) lines.push([name, value]);
  }
  return lines;
}
