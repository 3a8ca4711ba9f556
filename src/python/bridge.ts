/**
 * Python policies as chain entries. Each Python policy instance is a small object carrying
 * its invocation (name, version, parameters and their hash); the bridge is the batch runner
 * the chain executor hands adjacent Python policies to, so they cost one round trip per
 * phase together. Results come back per policy and are settled by the executor exactly as
 * if each policy had run alone.
 */
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import type { FailureRule as FailureRuleName } from "../config/types.ts";
import type { BatchRunner, ChainEntry } from "../chain/chain.ts";
import { PolicyFailure } from "../chain/failure.ts";
import type { AnyAction, PolicyOutcome } from "../chain/chain.ts";
import type { ExchangeState } from "../chain/state.ts";
import {
  ErrorKind,
  type ExecuteResponse,
  FailureRule,
  type Header,
  type Modifications,
  Phase,
  type PolicyResult,
} from "../gen/proto/tollgate/executor/v1/executor_pb.ts";
import type { RegisteredPolicy } from "../registry/registry.ts";
import {
  ImmediateResponse,
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

/** A Python policy instance: it has no onRequest/onResponse of its own; the bridge runs it. */
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

function outcomeOf(result: PolicyResult, phase: Phase, label: string): PolicyOutcome {
  switch (result.outcome.case) {
    case "modifications":
      return { action: actionOf(result.outcome.value, phase) };
    case "immediateResponse": {
      const immediate = result.outcome.value;
      return {
        action: new ImmediateResponse({
          statusCode: immediate.statusCode,
          headers: grouped(immediate.headers),
          body: immediate.body,
          analyticsMetadata: immediate.analyticsMetadata,
        }),
      };
    }
    case "error": {
      const { kind, message } = result.outcome.value;
      return {
        error: new PolicyFailure(kind === ErrorKind.TIMEOUT ? "timeout" : "error", `${label}: ${message}`),
      };
    }
    default:
      return { error: new PolicyFailure("error", `${label}: the executor returned an empty result`) };
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

export class PythonBridge implements BatchRunner {
  /** `client` gives the client of the executor serving now (it changes when one is recycled). */
  constructor(private readonly client: () => ExecutorClient, private readonly defaultTimeoutMs: number) {}

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

  async run(
    entries: readonly ChainEntry[],
    side: "request" | "response",
    state: ExchangeState,
  ): Promise<PolicyOutcome[]> {
    const phase = side === "request" ? Phase.REQUEST : Phase.RESPONSE;
    const budgetMs = entries.reduce((sum, e) => sum + (e.timeoutMs ?? this.defaultTimeoutMs), 0);
    const metadata = (jsonOnly(state.shared.metadata) ?? {}) as JsonObject;
    let response: ExecuteResponse;
    try {
      response = await this.client().call({
        phase,
        policies: entries.map((entry) => ({
          ...(entry.policy as PythonPolicy).invocation,
          onFailure: RULES[entry.onFailure],
        })),
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
        response: side === "response"
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
      }, budgetMs);
    } catch (error) {
      return entries.map(() => ({ error }));
    }
    if (response.error) {
      const failure = new PolicyFailure("error", `python executor rejected the call: ${response.error}`);
      return entries.map(() => ({ error: failure }));
    }
    mergeMetadata(state.shared.metadata, metadata, response.metadata);
    return response.results.map((result, i) => outcomeOf(result, phase, entries[i].label));
  }
}
