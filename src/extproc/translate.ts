/**
 * Translation between Envoy's ext_proc messages and the exchange state, following the
 * rules in docs/envoy.md: headers arrive and leave as `raw_value` only; a set is an
 * overwrite (`append` unset) and extra values of the same header are appends; a body change
 * in a body phase rewrites `content-length`; a path or authority change asks Envoy to re-route.
 */
import { create, type JsonObject } from "@bufbuild/protobuf";
import type {
  HeaderMap as ProtoHeaderMap,
  HeaderValueOption,
} from "../gen/proto/envoy/config/core/v3/base_pb.ts";
import {
  type CommonResponse,
  CommonResponse_ResponseStatus,
  CommonResponseSchema,
  type HeaderMutation,
  HeaderMutationSchema,
  type ImmediateResponse,
  ImmediateResponseSchema,
} from "../gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import type { ImmediateOutcome } from "../chain/run.ts";
import type { ExchangeState } from "../chain/state.ts";
import { type DecisionEntry, formatTrace, TRACE_METADATA_KEY } from "../observe/decision_trace.ts";
import type { HeaderMap } from "../sdk/headers.ts";
import { asciiText } from "./ascii.ts";

const utf8 = new TextDecoder();
const encoder = new TextEncoder();

/** A header's value as Envoy sent it (`raw_value`, or `value` from older Envoys). */
export function valueOf(header: { value: string; rawValue: Uint8Array }): string {
  const raw = header.rawValue;
  if (raw.length === 0) return header.value;
  return asciiText(raw) ?? utf8.decode(raw);
}

/** Loads request headers: pseudo-headers into their fields, the rest into the header map. */
export function loadRequestHeaders(state: ExchangeState, headers: ProtoHeaderMap | undefined): void {
  for (const header of headers?.headers ?? []) {
    const value = valueOf(header);
    switch (header.key) {
      case ":path":
        state.path = value;
        break;
      case ":method":
        state.method = value;
        break;
      case ":authority":
        state.authority = value;
        break;
      case ":scheme":
        state.scheme = value;
        break;
      default:
        if (!header.key.startsWith(":")) state.requestHeaders.append(header.key, value);
    }
  }
}

/** Loads response headers: `:status` into the status, the rest into the header map. */
export function loadResponseHeaders(state: ExchangeState, headers: ProtoHeaderMap | undefined): void {
  for (const header of headers?.headers ?? []) {
    const value = valueOf(header);
    if (header.key === ":status") state.status = Number(value);
    else if (!header.key.startsWith(":")) state.responseHeaders.append(header.key, value);
  }
}

function option(key: string, value: string, append: boolean): HeaderValueOption {
  return {
    $typeName: "envoy.config.core.v3.HeaderValueOption",
    header: {
      $typeName: "envoy.config.core.v3.HeaderValue",
      key,
      value: "",
      rawValue: encoder.encode(value),
    },
    append: append ? true : undefined,
    appendAction: 0,
    keepEmptyValue: false,
  };
}

/**
 * The net header changes of the current phase: each touched header is overwritten with its
 * final values (first value overwrites, the rest append) or removed if none remain.
 */
function headerMutation(
  headers: HeaderMap,
  touched: ReadonlySet<string>,
  pseudo: readonly [string, string][],
): HeaderMutation | undefined {
  if (touched.size === 0 && pseudo.length === 0) return undefined;
  const mutation = create(HeaderMutationSchema);
  for (const [key, value] of pseudo) mutation.setHeaders.push(option(key, value, false));
  for (const name of touched) {
    const values = headers.getAll(name);
    if (values.length === 0) mutation.removeHeaders.push(name);
    else values.forEach((value, index) => mutation.setHeaders.push(option(name, value, index > 0)));
  }
  return mutation;
}

/** A CommonResponse that only sets `headers` (each value overwrites the header). */
export function setHeadersResponse(headers: readonly [string, string][]): CommonResponse {
  const mutation = create(HeaderMutationSchema);
  for (const [key, value] of headers) mutation.setHeaders.push(option(key, value, false));
  return create(CommonResponseSchema, { headerMutation: mutation });
}

/** Where in an exchange a response is being built. */
export interface PhaseSpot {
  readonly phase: "request" | "response";
  /** True in a body phase (the body is buffered and headers are held with it). */
  readonly bodyPhase: boolean;
}

/**
 * The CommonResponse for the current phase's changes, or undefined if nothing changed.
 * In a headers phase a new body is sent with CONTINUE_AND_REPLACE (Envoy then drops the
 * original body and content-length); in a body phase it is a plain body mutation with
 * `content-length` rewritten, since Envoy rejects a mismatch with a 500.
 */
export function commonResponse(state: ExchangeState, spot: PhaseSpot): CommonResponse | undefined {
  const { changes } = state;
  if (!changes.any) return undefined;
  const isRequest = spot.phase === "request";
  const headers = isRequest ? state.requestHeaders : state.responseHeaders;
  const body = isRequest ? state.requestBody : state.responseBody;
  const pseudo: [string, string][] = [];
  if (isRequest && changes.path) pseudo.push([":path", state.path]);
  if (isRequest && changes.method) pseudo.push([":method", state.method]);
  if (isRequest && changes.authority) pseudo.push([":authority", state.authority]);
  if (!isRequest && changes.status) pseudo.push([":status", String(state.status)]);
  if (changes.body && spot.bodyPhase && body) {
    headers.set("content-length", String(body.content.byteLength));
    changes.headers.add("content-length");
  }
  const response = create(CommonResponseSchema);
  response.headerMutation = headerMutation(headers, changes.headers, pseudo);
  if (changes.body && body) {
    response.bodyMutation = {
      $typeName: "envoy.service.ext_proc.v3.BodyMutation",
      mutation: { case: "body", value: body.content },
    };
    if (!spot.bodyPhase) response.status = CommonResponse_ResponseStatus.CONTINUE_AND_REPLACE;
  }
  // Envoy honours clear_route_cache only with a header mutation in the same response.
  response.clearRouteCache = isRequest && (changes.path || changes.authority) &&
    response.headerMutation !== undefined;
  return response;
}

/** The answer to a streamed chunk that forwards `data` instead (empty: nothing, for now). */
export function chunkResponse(data: Uint8Array): CommonResponse {
  const response = create(CommonResponseSchema);
  response.bodyMutation = {
    $typeName: "envoy.service.ext_proc.v3.BodyMutation",
    mutation: data.length > 0 ? { case: "body", value: data } : { case: "clearBody", value: true },
  };
  return response;
}

/**
 * The dynamic metadata (namespace `tollgate`) for the phase: the policies' analytics values,
 * and the decision trace so far when `withTrace` (Envoy merges each answer's keys into the
 * namespace, so the last trace sent is the whole one).
 */
export function phaseMetadata(state: ExchangeState, withTrace: boolean): JsonObject | undefined {
  const analytics = state.changes.analytics;
  if (!withTrace) return analytics ? { tollgate: analytics as JsonObject } : undefined;
  return { tollgate: { ...analytics as JsonObject, [TRACE_METADATA_KEY]: formatTrace(state.trace) } };
}

/** The metadata of a pass-through answer that still has a trace to tell (disabled policies). */
export function traceMetadata(entries: readonly DecisionEntry[]): JsonObject {
  return { tollgate: { [TRACE_METADATA_KEY]: formatTrace(entries) } };
}

/** An ext_proc ImmediateResponse for a policy's decision. */
export function immediateResponse(outcome: ImmediateOutcome): ImmediateResponse {
  const headers = create(HeaderMutationSchema);
  for (const [name, value] of outcome.headers) {
    headers.setHeaders.push(option(name, value, headers.setHeaders.some((h) => h.header?.key === name)));
  }
  return create(ImmediateResponseSchema, {
    status: { code: outcome.statusCode },
    headers,
    body: outcome.body,
    details: `tollgate_${outcome.policy.replace(/[^\w-]/g, "_")}`,
  });
}
