/**
 * Python policies as chain entries. Each Python policy instance is a small object carrying
 * its invocation (name, version, parameters and their hash); the bridge is the batch runner
 * the chain executor hands adjacent Python policies to, so they cost one round trip per
 * phase together. Results come back per policy and are settled by the executor exactly as
 * if each policy had run alone. For streamed bodies it is also the chunk batch runner: one
 * round trip per chunk for adjacent streaming Python policies.
 *
 * Calls of one exchange are sent one after another, in the order they were made: the
 * shared metadata travels with each call and is merged back from its answer, so a call
 * must start from what the previous one left (and a policy sees chunk n+1 after chunk n).
 */
import { create, type JsonObject, type JsonValue, toBinary } from "@bufbuild/protobuf";
import type { FailureRule as FailureRuleName } from "../config/types.ts";
import type {
  AnyAction,
  BatchRunner,
  ChainEntry,
  ChunkBatchResult,
  ChunkBatchRunner,
  ChunkOutcome,
  PolicyOutcome,
} from "../chain/chain.ts";
import { PolicyFailure } from "../chain/failure.ts";
import type { ExchangeState } from "../chain/state.ts";
import {
  type ChunkResponse,
  type ChunkResult,
  ErrorKind,
  ExecuteRequestSchema,
  type ExecuteResponse,
  FailureRule,
  type Header,
  type ImmediateResponse as ImmediateResponseMessage,
  type Modifications,
  Phase,
  type PolicyResult,
} from "../gen/proto/tollgate/executor/v1/executor_pb.ts";
import type { RegisteredPolicy } from "../registry/registry.ts";
import {
  ImmediateResponse,
  type ImmediateResponseInit,
  UpstreamRequestModifications,
  UpstreamResponseModifications,
} from "../sdk/actions.ts";
import type { HeaderMap } from "../sdk/headers.ts";
import type { Policy, PolicyFactory } from "../sdk/policy.ts";
import type { ExecutorClient } from "./client.ts";

const RULES: Record<FailureRuleName, FailureRule> = {
  deny: FailureRule.DENY,
  continue: FailureRule.CONTINUE,
  skipRemaining: FailureRule.SKIP_REMAINING,
};

/** The per-instance part of an invocation, computed once when the chain is built. */
interface Invocation {
  readonly name: string;
  readonly version: string;
  readonly params: JsonObject;
  readonly paramsHash: string;
  readonly metadata: {
    routeName: string;
    apiId: string;
    apiName: string;
    apiVersion: string;
    attachedTo: string;
  };
}

/** A Python policy instance: it has no handlers of its own; the bridge runs it. */
interface PythonPolicy extends Policy {
  readonly batchRunner: BatchRunner;
  readonly invocation: Invocation;
}

/** Keeps only JSON values (what the executor can receive), dropping anything else. */
function jsonOnly(value: unknown): JsonValue | undefined {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (Array.isArray(value)) return value.map((v) => jsonOnly(v) ?? null);
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) {
      const json = jsonOnly(v);
      if (json !== undefined) out[k] = json;
    }
    return out;
  }
  return undefined;
}

/** A stable hash of the parameters: the executor's instance cache key. */
async function hashParams(params: JsonObject): Promise<string> {
  const stable = (v: JsonValue): string =>
    Array.isArray(v)
      ? `[${v.map(stable).join(",")}]`
      : v && typeof v === "object"
      ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stable(v[k])}`).join(",")}}`
      : JSON.stringify(v);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(stable(params)));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

const headerLines = (headers: HeaderMap) => Array.from(headers, ([name, value]) => ({ name, value }));

/** Header lines grouped by name, in order: repeated names become several values. */
function grouped(lines: readonly Header[]): Record<string, string[]> | undefined {
  if (lines.length === 0) return undefined;
  const out: Record<string, string[]> = {};
  for (const { name, value } of lines) (out[name] ??= []).push(value);
  return out;
}

function actionOf(result: Modifications, phase: Phase): AnyAction {
  const common = {
    setHeaders: grouped(result.setHeaders),
    removeHeaders: result.removeHeaders.length > 0 ? result.removeHeaders : undefined,
    appendHeaders: grouped(result.appendHeaders),
    analyticsMetadata: result.analyticsMetadata,
    body: result.body,
  };
  return phase === Phase.REQUEST
    ? new UpstreamRequestModifications({ ...common, path: result.path, method: result.method })
    : new UpstreamResponseModifications({ ...common, statusCode: result.statusCode });
}

function immediateOf(immediate: ImmediateResponseMessage): ImmediateResponseInit {
  return {
    statusCode: immediate.statusCode,
    headers: grouped(immediate.headers),
    body: immediate.body,
    analyticsMetadata: immediate.analyticsMetadata,
  };
}

function policyError(kind: ErrorKind, message: string, label: string): PolicyFailure {
  return new PolicyFailure(kind === ErrorKind.TIMEOUT ? "timeout" : "error", `${label}: ${message}`);
}

const emptyResult = (label: string) =>
  new PolicyFailure("error", `${label}: the executor returned an empty result`);

function outcomeOf(result: PolicyResult, phase: Phase, label: string): PolicyOutcome {
  switch (result.outcome.case) {
    case "modifications":
      return { action: actionOf(result.outcome.value, phase) };
    case "immediateResponse":
      return { action: new ImmediateResponse(immediateOf(result.outcome.value)) };
    case "error":
      return { error: policyError(result.outcome.value.kind, result.outcome.value.message, label) };
    default:
      return { error: emptyResult(label) };
  }
}

const FORWARDED: ChunkOutcome = Object.freeze({ kind: "forwarded" });
const REPLACED: ChunkOutcome = Object.freeze({ kind: "replaced" });

function chunkOutcomeOf(result: ChunkResult, label: string): ChunkOutcome {
  switch (result.outcome.case) {
    case "forwarded":
      return FORWARDED;
    case "replaced":
      return REPLACED;
    case "ended": {
      const response = result.outcome.value.response;
      return response ? { kind: "ended", response: immediateOf(response) } : { kind: "ended" };
    }
    case "error":
      return { error: policyError(result.outcome.value.kind, result.outcome.value.message, label) };
    default:
      return { error: emptyResult(label) };
  }
}

/** Writes the executor's view of the metadata back: changed and new keys set, removed keys deleted. */
function mergeMetadata(
  target: Record<string, unknown>,
  sent: JsonObject,
  received: JsonObject | undefined,
): void {
  if (!received) return;
  for (const key of Object.keys(sent)) if (!(key in received)) delete target[key];
  Object.assign(target, received);
}

/** Sees every call to the executor once, with the route whose batch it carried. */
export interface BatchObserver {
  pythonBatch(route: string, phase: "request" | "response", seconds: number): void;
}

const errorText = (error: unknown) => error instanceof Error ? error.message : String(error);

export class PythonBridge implements BatchRunner, ChunkBatchRunner {
  /** The last call made for each exchange: the next one is sent once it is settled. */
  readonly #tails = new WeakMap<ExchangeState, Promise<void>>();
  /** Each entry's invocation, encoded once: it is the same on every call. */
  readonly #invocations = new WeakMap<ChainEntry, Uint8Array>();

  /** `client` gives the client of the executor serving now (it changes when one is recycled). */
  constructor(
    private readonly client: () => ExecutorClient,
    private readonly defaultTimeoutMs: number,
    private readonly observer?: BatchObserver,
  ) {}

  /** Runs `work` once the exchange's previous call is settled (at once when there is none). */
  #inOrder<T>(state: ExchangeState, work: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(state);
    const result = previous ? previous.then(work) : work();
    const tail = result.then(() => {}, () => {});
    this.#tails.set(state, tail);
    tail.then(() => {
      if (this.#tails.get(state) === tail) this.#tails.delete(state);
    });
    return result;
  }

  /**
   * The `policies` field of a call of `entries`, encoded. Field 3 in both ExecuteRequest and
   * ChunkRequest, so the same bytes serve both; a message's fields may be encoded apart.
   */
  #policies(entries: readonly ChainEntry[]): Uint8Array {
    if (entries.length === 1) return this.#invocation(entries[0]);
    const parts = entries.map((entry) => this.#invocation(entry));
    const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
    let at = 0;
    for (const part of parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  #invocation(entry: ChainEntry): Uint8Array {
    let encoded = this.#invocations.get(entry);
    if (!encoded) {
      const invocation = { ...(entry.policy as PythonPolicy).invocation, onFailure: RULES[entry.onFailure] };
      encoded = toBinary(ExecuteRequestSchema, create(ExecuteRequestSchema, { policies: [invocation] }));
      this.#invocations.set(entry, encoded);
    }
    return encoded;
  }

  /** The call's budget and deadline: the sum of its policies' timeouts. */
  #budgetMs(entries: readonly ChainEntry[]): number {
    return entries.reduce((sum, e) => sum + (e.timeoutMs ?? this.defaultTimeoutMs), 0);
  }

  /** The factory of a registered Python policy: instances carry their invocation. */
  factoryFor(policy: RegisteredPolicy): PolicyFactory {
    const { definition } = policy;
    return async (metadata, params) => {
      const json = (jsonOnly(params) ?? {}) as JsonObject;
      const instance: PythonPolicy = {
        batchRunner: this,
        invocation: {
          name: definition.name,
          version: definition.version,
          params: json,
          paramsHash: await hashParams(json),
          metadata: {
            routeName: metadata.routeName,
            apiId: metadata.api?.id ?? "",
            apiName: metadata.api?.name ?? "",
            apiVersion: metadata.api?.version ?? "",
            attachedTo: metadata.attachedTo,
          },
        },
      };
      return instance;
    };
  }

  run(
    entries: readonly ChainEntry[],
    phase: "request" | "response",
    state: ExchangeState,
  ): Promise<PolicyOutcome[]> {
    return this.#inOrder(state, () => this.#run(entries, phase, state));
  }

  async #run(
    entries: readonly ChainEntry[],
    phase: "request" | "response",
    state: ExchangeState,
  ): Promise<PolicyOutcome[]> {
    const started = state.recorder ? performance.now() : 0;
    const result = await this.#call(entries, phase, state);
    // The batch's one record: its round trip (tracing shows it as its policies' parent span).
    state.recorder?.batchRan(
      started,
      performance.now(),
      "failed" in result ? errorText(result.failed) : undefined,
    );
    return "failed" in result ? entries.map(() => ({ error: result.failed })) : result.outcomes;
  }

  /** One round trip: the policies' outcomes, or the error the whole call failed with. */
  async #call(
    entries: readonly ChainEntry[],
    phase: "request" | "response",
    state: ExchangeState,
  ): Promise<{ outcomes: PolicyOutcome[] } | { failed: unknown }> {
    const wirePhase = phase === "request" ? Phase.REQUEST : Phase.RESPONSE;
    const budgetMs = this.#budgetMs(entries);
    const metadata = (jsonOnly(state.shared.metadata) ?? {}) as JsonObject;
    // The configured route (the default chain's is `(default)`), never a name Envoy made up.
    const route = (entries[0].policy as PythonPolicy).invocation.metadata.routeName;
    const started = performance.now();
    let response: ExecuteResponse;
    try {
      response = await this.client().call(
        {
          phase: wirePhase,
          request: {
            headers: headerLines(state.requestHeaders),
            body: state.requestBody?.content,
            bodyPresent: state.requestBody !== undefined,
            endOfStream: state.requestBody?.endOfStream ?? true,
            path: state.path,
            method: state.method,
            authority: state.authority,
            scheme: state.scheme,
          },
          response: phase === "response"
            ? {
              headers: headerLines(state.responseHeaders),
              body: state.responseBody?.content,
              bodyPresent: state.responseBody !== undefined,
              status: state.status,
              endOfStream: state.responseBody?.endOfStream ?? true,
            }
            : undefined,
          metadata,
          info: { requestId: state.shared.requestId, routeName: state.shared.route.name },
          budgetMs,
        },
        budgetMs,
        this.#policies(entries),
      );
    } catch (error) {
      return { failed: error };
    } finally {
      this.observer?.pythonBatch(route, phase, (performance.now() - started) / 1000);
    }
    if (response.error) {
      return { failed: new PolicyFailure("error", `python executor rejected the call: ${response.error}`) };
    }
    mergeMetadata(state.shared.metadata, metadata, response.metadata);
    return { outcomes: response.results.map((result, i) => outcomeOf(result, wirePhase, entries[i].label)) };
  }

  /**
   * Runs one body chunk through adjacent streaming Python policies in one round trip; see
   * {@link ChunkBatchRunner}. A call that fails as a whole (unavailable, past its deadline,
   * rejected) fails every policy of the batch, and the chunk is left as it was.
   */
  runChunk(
    entries: readonly ChainEntry[],
    phase: "request" | "response",
    chunk: Uint8Array,
    endOfStream: boolean,
    chunkIndex: number,
    state: ExchangeState,
  ): Promise<ChunkBatchResult> {
    return this.#inOrder(state, () => this.#runChunk(entries, phase, chunk, endOfStream, chunkIndex, state));
  }

  async #runChunk(
    entries: readonly ChainEntry[],
    phase: "request" | "response",
    chunk: Uint8Array,
    endOfStream: boolean,
    chunkIndex: number,
    state: ExchangeState,
  ): Promise<ChunkBatchResult> {
    const budgetMs = this.#budgetMs(entries);
    const metadata = (jsonOnly(state.shared.metadata) ?? {}) as JsonObject;
    let response: ChunkResponse;
    try {
      response = await this.client().callChunk(
        {
          phase: phase === "request" ? Phase.REQUEST : Phase.RESPONSE,
          data: chunk,
          endOfStream,
          chunkIndex,
          request: {
            headers: headerLines(state.requestHeaders),
            path: state.path,
            method: state.method,
            authority: state.authority,
            scheme: state.scheme,
          },
          response: phase === "response"
            ? { headers: headerLines(state.responseHeaders), status: state.status }
            : undefined,
          metadata,
          info: { requestId: state.shared.requestId, routeName: state.shared.route.name },
          budgetMs,
        },
        budgetMs,
        this.#policies(entries),
      );
    } catch (error) {
      return { outcomes: entries.map(() => ({ error })), data: chunk };
    }
    if (response.error) {
      const failure = new PolicyFailure("error", `python executor rejected the call: ${response.error}`);
      return { outcomes: entries.map(() => ({ error: failure })), data: chunk };
    }
    mergeMetadata(state.shared.metadata, metadata, response.metadata);
    const outcomes = response.results.map((result, i) => chunkOutcomeOf(result, entries[i].label));
    // The executor sends data back only when a policy replaced it.
    const replaced = outcomes.includes(REPLACED);
    return { outcomes, data: replaced ? response.data : chunk };
  }
}
