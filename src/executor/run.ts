/**
 * Runs a slice of a chain for one phase: request policies in chain order, response policies
 * in reverse order, each seeing the changes of the ones before. An immediate response stops
 * the chain; a failure follows the policy's rule (deny, continue, skipRemaining).
 */
import { getLogger } from "@logtape/logtape";
import type { ImmediateResponseInit, RequestAction, ResponseAction } from "../sdk/actions.ts";
import {
  applyRequestModifications,
  applyResponseModifications,
  bodyBytes,
  checkStatus,
  immediateHeaderLines,
  InvalidActionError,
} from "./apply.ts";
import type { ChainEntry } from "./chain.ts";
import { asFailure, failureResponse, PolicyFailure } from "./failure.ts";
import type { ExchangeState } from "./state.ts";

const log = getLogger(["tollgate", "executor"]);

export type Phase = "request" | "response";

/** An immediate response decided by a policy (or by a failure under `deny`). */
export interface ImmediateOutcome {
  readonly statusCode: number;
  readonly headers: readonly [string, string][];
  readonly body: Uint8Array;
  /** The policy that answered, e.g. `respond:v1`. */
  readonly policy: string;
}

/** Observes every policy run, for metrics. */
export interface RunObserver {
  policyRan(label: string, phase: Phase, outcome: "ok" | "immediate" | "failed", seconds: number): void;
}

function toImmediate(init: ImmediateResponseInit, policy: string): ImmediateOutcome {
  return {
    statusCode: checkStatus(init.statusCode, "immediate response statusCode"),
    headers: immediateHeaderLines(init.headers),
    body: init.body === undefined ? new Uint8Array() : bodyBytes(init.body),
    policy,
  };
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === "function";
}

function withTimeout<T>(promise: Promise<T>, ms: number | undefined, label: string): Promise<T> {
  if (ms === undefined) return promise;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new PolicyFailure("timeout", `${label} exceeded its ${ms}ms timeout`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

type AnyAction = RequestAction | ResponseAction;

async function invoke(entry: ChainEntry, phase: Phase, state: ExchangeState): Promise<AnyAction> {
  const result: AnyAction | Promise<AnyAction> = phase === "request"
    ? entry.policy.onRequest?.(state.requestView, entry.params)
    : entry.policy.onResponse?.(state.responseView, entry.params);
  return isPromise(result) ? await withTimeout(result, entry.timeoutMs, entry.label) : result;
}

function applyAction(entry: ChainEntry, phase: Phase, action: AnyAction, state: ExchangeState) {
  if (action === undefined || action === null) return undefined;
  if (action.kind === "immediate-response") return toImmediate(action, entry.label);
  if (phase === "request" && action.kind === "upstream-request") {
    return applyRequestModifications(state, action);
  }
  if (phase === "response" && action.kind === "upstream-response") {
    return applyResponseModifications(state, action);
  }
  throw new InvalidActionError(
    `returned a ${(action as { kind?: string }).kind ?? typeof action} action in the ${phase} phase`,
  );
}

/**
 * Runs `entries[from, to)` for `phase`. Returns the immediate response that stopped the
 * chain, if any; otherwise the state holds the policies' changes.
 */
export async function runPolicies(
  entries: readonly ChainEntry[],
  from: number,
  to: number,
  phase: Phase,
  state: ExchangeState,
  observer?: RunObserver,
): Promise<ImmediateOutcome | undefined> {
  for (let i = from; i < to; i++) {
    const entry = entries[i];
    if (entry.condition && !entry.condition(state, phase)) continue;
    const started = performance.now();
    let immediate: ImmediateOutcome | undefined;
    try {
      immediate = applyAction(entry, phase, await invoke(entry, phase, state), state) ?? undefined;
    } catch (error) {
      observer?.policyRan(entry.label, phase, "failed", (performance.now() - started) / 1000);
      const failure = asFailure(error);
      log.warn("policy {policy} failed in {phase} phase ({kind}): {message}; rule {rule}", {
        policy: entry.label,
        phase,
        kind: failure.kind,
        message: failure.message,
        rule: entry.onFailure,
        requestId: state.shared.requestId,
        route: state.shared.route.name,
      });
      if (entry.onFailure === "continue") continue;
      if (entry.onFailure === "skipRemaining") return undefined;
      return toImmediate(failureResponse(failure, entry.label, state.shared.requestId), entry.label);
    }
    observer?.policyRan(
      entry.label,
      phase,
      immediate ? "immediate" : "ok",
      (performance.now() - started) / 1000,
    );
    if (immediate) return immediate;
  }
  return undefined;
}
