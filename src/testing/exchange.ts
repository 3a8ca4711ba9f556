/**
 * Runs one HTTP exchange through a built chain the way the ext_proc stream does (request
 * headers, then the buffered request body if a policy needs it; the same for the response),
 * with the engine's own chain runner, action checks (src/chain/apply.ts) and per-phase
 * translation (src/extproc/translate.ts), and reports what the upstream and the client see.
 * @module
 */
import type { Chain } from "../chain/chain.ts";
import { bodyBytes } from "../chain/apply.ts";
import { type ImmediateOutcome, type Phase, runPolicies } from "../chain/run.ts";
import { ExchangeState } from "../chain/state.ts";
import { commonResponse, phaseMetadata } from "../extproc/translate.ts";
import { CommonResponse_ResponseStatus } from "../gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import { Body } from "../sdk/context.ts";
import { HeaderMap, type ReadonlyHeaders } from "../sdk/headers.ts";
import { queryOf, type ReadonlyQuery } from "../sdk/query.ts";
import type { DecisionEntry } from "../observe/decision_trace.ts";

/** Header fields as a test writes them: a record (a list for repeated headers) or `[name, value]` pairs. */
export type HeadersInit =
  | Readonly<Record<string, string | readonly string[]>>
  | Iterable<readonly [string, string]>;

/** A body as a test writes it: bytes, text, or any other JSON value (sent as its JSON text). */
export type BodyInit =
  | Uint8Array
  | string
  | null
  | boolean
  | number
  | readonly unknown[]
  | Record<string, unknown>;

/** The request a client sends (every field optional). */
export interface TestRequest {
  /** Default `GET`. */
  readonly method?: string;
  /** `:path`, with the query. Default `/`. */
  readonly path?: string;
  /** `:authority`. Default `api.example.com`. */
  readonly authority?: string;
  /** Default `https`. */
  readonly scheme?: string;
  /** The client's headers; default none. */
  readonly headers?: HeadersInit;
  /** Absent: a request without a body (Envoy sends no body phase). */
  readonly body?: BodyInit;
  /** The downstream IP (`ctx.clientAddress`, from Envoy's `source.address` attribute). */
  readonly clientAddress?: string;
  /** Envoy request attributes (`ctx.attributes`), by name. */
  readonly attributes?: Readonly<Record<string, unknown>>;
  /** The request id; default the `x-request-id` header, else `test-request`. */
  readonly requestId?: string;
}

/** The upstream's response (every field optional). */
export interface TestResponse {
  /** Default 200. */
  readonly status?: number;
  /** The upstream's headers; default none. */
  readonly headers?: HeadersInit;
  /** Absent: a response without a body. */
  readonly body?: BodyInit;
}

/** A message's headers and body, with readers for the body. */
export interface MessageView {
  /** Header fields as received (names lower-case, every field line kept). */
  readonly headers: ReadonlyHeaders;
  /** The body bytes (empty when there is none). */
  readonly body: Uint8Array;
  /** The body as UTF-8 text. */
  text(): string;
  /** The body parsed as JSON. */
  json<T = unknown>(): T;
}

/** The request as the upstream receives it, after every request policy's changes. */
export interface UpstreamRequest extends MessageView {
  /** The method, after any change (`method` action). */
  readonly method: string;
  /** `:path` with the query, after rewrites. */
  readonly path: string;
  /** The query of {@link UpstreamRequest.path}. */
  readonly query: ReadonlyQuery;
  /** `:authority`, after any change. */
  readonly authority: string;
  /** The scheme (`http` or `https`). */
  readonly scheme: string;
}

/** The response as the client receives it. */
export interface ClientResponse extends MessageView {
  /** The HTTP status. */
  readonly status: number;
}

/** An answer a policy (or a failure under `onFailure: deny`) gave instead of the upstream's. */
export interface ImmediateResult extends ClientResponse {
  /** The policy that answered, e.g. `respond:v1`. */
  readonly policy: string;
  /** The phase it answered in: `request` (the upstream was never called) or `response`. */
  readonly phase: Phase;
}

/** Everything one exchange produced, to assert on. */
export interface ExchangeResult {
  /** The request as the upstream receives it; undefined when a request policy answered. */
  readonly upstream: UpstreamRequest | undefined;
  /** The response as the client receives it (an immediate response, or the upstream's, changed). */
  readonly response: ClientResponse;
  /** The immediate response that ended the chain, if one did. */
  readonly immediate: ImmediateResult | undefined;
  /** The shared metadata as the last policy left it. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** What policies sent Envoy as dynamic metadata (namespace `tollgate`), merged over the phases. */
  readonly analytics: Readonly<Record<string, unknown>>;
  /** One entry per policy the chain reached, in the order they ran. */
  readonly trace: readonly DecisionEntry[];
}

/** What the exchange needs of the configuration. */
export interface ExchangeLimits {
  /** The default deadline of an asynchronous TypeScript policy (`limits.policyTimeout`). */
  readonly policyTimeoutMs: number;
}

const utf8 = new TextDecoder();

/** Fields of a header init, in order. */
export function headerMap(init: HeadersInit | undefined): HeaderMap {
  const map = new HeaderMap();
  if (!init) return map;
  const pairs = Symbol.iterator in init
    ? init as Iterable<readonly [string, string]>
    : Object.entries(init).flatMap(([name, values]) =>
      (typeof values === "string" ? [values] : values as readonly string[]).map((value) =>
        [name, value] as const
      )
    );
  for (const [name, value] of pairs) map.append(name, value);
  return map;
}

/** The bytes of a test body; JSON values other than strings are sent as their JSON text. */
export function bodyOf(body: BodyInit): Uint8Array {
  return body instanceof Uint8Array || typeof body === "string"
    ? bodyBytes(body)
    : bodyBytes(JSON.stringify(body));
}

function view(headers: ReadonlyHeaders, body: Uint8Array): MessageView {
  return {
    headers,
    body,
    text: () => utf8.decode(body),
    json: <T>() => JSON.parse(utf8.decode(body)) as T,
  };
}

/**
 * Runs one phase's slice as the stream does, then lets the translation finish the phase
 * (a body change in a body phase rewrites `content-length`; one in a headers phase is sent
 * with CONTINUE_AND_REPLACE, for which Envoy drops `content-length` and streams the body).
 */
class PhaseRunner {
  readonly analytics: Record<string, unknown> = {};

  constructor(
    private readonly chain: Chain,
    private readonly state: ExchangeState,
    private readonly limits: ExchangeLimits,
  ) {}

  async run(
    phase: Phase,
    from: number,
    to: number,
    bodyPhase: boolean,
  ): Promise<ImmediateOutcome | undefined> {
    const entries = phase === "request" ? this.chain.request : this.chain.response;
    this.state.beginPhase();
    const immediate = await runPolicies(
      entries,
      from,
      to,
      phase,
      this.state,
      undefined,
      this.limits.policyTimeoutMs,
    );
    Object.assign(this.analytics, phaseMetadata(this.state, false)?.tollgate);
    if (immediate) return immediate;
    const common = commonResponse(this.state, { phase, bodyPhase });
    if (common?.status === CommonResponse_ResponseStatus.CONTINUE_AND_REPLACE) {
      (phase === "request" ? this.state.requestHeaders : this.state.responseHeaders).delete("content-length");
    }
    return undefined;
  }
}

function immediateResult(outcome: ImmediateOutcome, phase: Phase): ImmediateResult {
  return {
    ...view(new HeaderMap(outcome.headers), outcome.body),
    status: outcome.statusCode,
    policy: outcome.policy,
    phase,
  };
}

/** Runs `request` (and the upstream's `response`) through `chain`. */
export async function runExchange(
  chain: Chain,
  request: TestRequest,
  response: TestResponse,
  limits: ExchangeLimits,
): Promise<ExchangeResult> {
  const state = new ExchangeState(chain.route);
  const phases = new PhaseRunner(chain, state, limits);
  // The engine's own decision trace: disabled policies first, as the stream records them.
  state.trace.push(...chain.disabled);
  state.method = request.method ?? "GET";
  state.path = request.path ?? "/";
  state.authority = request.authority ?? "api.example.com";
  state.scheme = request.scheme ?? "https";
  state.requestHeaders = headerMap(request.headers);
  state.clientAddress = request.clientAddress;
  if (request.attributes) state.attributes = request.attributes;
  state.shared.requestId = request.requestId ?? state.requestHeaders.get("x-request-id") ?? "test-request";
  const finish = (immediate: ImmediateOutcome | undefined, phase: Phase, upstream?: UpstreamRequest) => {
    const answered = immediate && immediateResult(immediate, phase);
    return {
      upstream,
      response: answered ??
        {
          ...view(state.responseHeaders, state.responseBody?.content ?? new Uint8Array()),
          status: state.status,
        },
      immediate: answered,
      metadata: state.shared.metadata,
      analytics: phases.analytics,
      trace: state.trace,
    };
  };

  const requestBody = request.body === undefined ? undefined : bodyOf(request.body);
  const requestBodyComing = chain.needsRequestBody && requestBody !== undefined;
  const requestSplit = requestBodyComing ? chain.requestHeadersCount : chain.request.length;
  let immediate = await phases.run("request", 0, requestSplit, false);
  if (!immediate && requestBodyComing) {
    state.requestBody = new Body(requestBody);
    immediate = await phases.run("request", requestSplit, chain.request.length, true);
  }
  if (immediate) return finish(immediate, "request");
  const sentBody = state.requestBody?.content ?? requestBody ?? new Uint8Array();
  const upstream: UpstreamRequest = {
    ...view(state.requestHeaders, sentBody),
    method: state.method,
    path: state.path,
    query: queryOf(state.path),
    authority: state.authority,
    scheme: state.scheme,
  };

  state.status = response.status ?? 200;
  state.responseHeaders = headerMap(response.headers);
  const responseBody = response.body === undefined ? undefined : bodyOf(response.body);
  const responseBodyComing = chain.needsResponseBody && responseBody !== undefined;
  const responseSplit = responseBodyComing ? chain.responseHeadersCount : chain.response.length;
  if (chain.needsResponse) immediate = await phases.run("response", 0, responseSplit, false);
  if (!immediate && responseBodyComing) {
    state.responseBody = new Body(responseBody);
    immediate = await phases.run("response", responseSplit, chain.response.length, true);
  }
  if (!immediate && !state.responseBody && responseBody) state.responseBody = new Body(responseBody);
  return finish(immediate, "response", upstream);
}
