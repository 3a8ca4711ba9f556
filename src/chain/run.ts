/**
 * Runs a slice of a chain for one phase: request policies in chain order, response policies
 * in reverse order, each seeing the changes of the ones before. An immediate response stops
 * the chain; a failure follows the policy's rule (deny, continue, skipRemaining).
 */
import { getLogger } from "@logtape/logtape";
import type { ImmediateResponseInit } from "../sdk/actions.ts";
import {
  applyRequestModifications,
  applyResponseModifications,
  bodyBytes,
  checkStatus,
  immediateHeaderLines,
  InvalidActionError,
} from "./apply.ts";
import { scrubSecrets } from "../observe/scrub.ts";
import type { AnyAction, ChainEntry, PolicyOutcome } from "./chain.ts";
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
  /** Sees each policy call's synchronous part (the data plane's watchdog) and may refuse it. */
  readonly guard?: PolicyGuard;
}

/**
 * Brackets the synchronous part of every policy call: the data plane names the running
 * policy in its watchdog slot, and refuses a quarantined policy (src/dataplane/).
 */
export interface PolicyGuard {
  /** Called just before `label` runs; a returned reason fails the call without running it. */
  enter(label: string): string | undefined;
  /** Called once the call returned (or returned its promise). */
  leave(): void;
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

/**
 * Calls one policy. A policy that answers synchronously gets its outcome back synchronously:
 * most policies never wait, and a promise per call is a microtask and a few allocations on
 * every request.
 */
function invoke(
  entry: ChainEntry,
  phase: Phase,
  state: ExchangeState,
  defaultTimeoutMs: number | undefined,
  guard: PolicyGuard | undefined,
): PolicyOutcome | Promise<PolicyOutcome> {
  let result: AnyAction | Promise<AnyAction>;
  try {
    const refused = guard?.enter(entry.label);
    if (refused !== undefined) return { error: new PolicyFailure("unavailable", refused) };
    try {
      result = phase === "request"
        ? entry.policy.onRequest?.(state.requestView, entry.params)
        : entry.policy.onResponse?.(state.responseView, entry.params);
    } finally {
      guard?.leave();
    }
  } catch (error) {
    return { error };
  }
  if (!isPromise(result)) return { action: result };
  return withTimeout(result, entry.timeoutMs ?? defaultTimeoutMs, entry.label).then(
    (action) => ({ action }),
    (error) => ({ error }),
  );
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

/** The end of the batch starting at `i`: adjacent entries of the same runner without conditions. */
function batchEnd(entries: readonly ChainEntry[], i: number, to: number): number {
  let end = i + 1;
  while (end < to && entries[end].batch === entries[i].batch && !entries[end].condition) end++;
  return end;
}

/** How the chain goes on after one policy: on to the next, or stop (with a response or not). */
type Step = { readonly stop: false } | { readonly stop: true; readonly immediate?: ImmediateOutcome };
const NEXT: Step = { stop: false };

function settle(
  entry: ChainEntry,
  outcome: PolicyOutcome,
  phase: Phase,
  state: ExchangeState,
  seconds: number,
  observer: RunObserver | undefined,
): Step {
  let immediate: ImmediateOutcome | undefined;
  try {
    if ("error" in outcome) throw outcome.error;
    immediate = applyAction(entry, phase, outcome.action, state) ?? undefined;
  } catch (error) {
    observer?.policyRan(entry.label, phase, "failed", seconds);
    const failure = asFailure(error);
    // `reason`, not `message`: a property named `message` would replace the JSON line's message.
    log.warn("policy {policy} failed in {phase} phase ({kind}): {reason}; rule {rule}", {
      policy: entry.label,
      phase,
      kind: failure.kind,
      reason: scrubSecrets(failure.message, entry.secrets),
      rule: entry.onFailure,
      requestId: state.shared.requestId,
      route: state.shared.route.name,
    });
    if (entry.onFailure === "continue") return NEXT;
    if (entry.onFailure === "skipRemaining") return { stop: true };
    return {
      stop: true,
      immediate: toImmediate(failureResponse(failure, entry.label, state.shared.requestId), entry.label),
    };
  }
  observer?.policyRan(entry.label, phase, immediate ? "immediate" : "ok", seconds);
  return immediate ? { stop: true, immediate } : NEXT;
}

/** Whether the entry's condition (if any) lets it run, or the error evaluating it failed with. */
function conditionHolds(entry: ChainEntry, phase: Phase, state: ExchangeState): boolean | { error: unknown } {
  if (!entry.condition) return true;
  try {
    return entry.condition(state, phase);
  } catch (error) {
    return { error };
  }
}

/**
 * Runs `entries[from, to)` for `phase`. Returns the immediate response that stopped the
 * chain, if any; otherwise the state holds the policies' changes. An asynchronous policy
 * without its own timeout gets `defaultTimeoutMs` (`limits.policyTimeout`); a synchronous
 * one cannot be interrupted (docs/architecture.md, known limitations).
 *
 * Adjacent entries sharing a batch runner (Python policies) go to it in one call; it
 * returns one outcome per policy, which are settled here exactly as if each policy had run
 * alone, so batching never changes results.
 */
export function runPolicies(
  entries: readonly ChainEntry[],
  from: number,
  to: number,
  phase: Phase,
  state: ExchangeState,
  observer?: RunObserver,
  defaultTimeoutMs?: number,
): ImmediateOutcome | undefined | Promise<ImmediateOutcome | undefined> {
  let i = from;
  while (i < to) {
    const entry = entries[i];
    const runs = conditionHolds(entry, phase, state);
    if (runs !== true) {
      // A condition that cannot be evaluated is a failure of its policy, never a skip.
      const step = runs === false ? NEXT : settle(entry, runs, phase, state, 0, observer);
      if (step.stop) return step.immediate;
      i++;
      continue;
    }
    const start = i;
    const end = entry.batch ? batchEnd(entries, i, to) : i + 1;
    const started = performance.now();
    const outcomes: Ran | Promise<Ran> = entry.batch
      ? entry.batch.run(entries.slice(i, end), phase, state)
      : invoke(entry, phase, state, defaultTimeoutMs, observer?.guard);
    const next = (ran: Ran): Step =>
      settleRan(entries, start, end, Array.isArray(ran) ? ran : [ran], started, phase, state, observer);
    if (isPromise(outcomes)) {
      // Only a policy that waits makes the rest of the chain wait.
      return outcomes.then((ran) => {
        const step = next(ran);
        return step.stop
          ? step.immediate
          : runPolicies(entries, end, to, phase, state, observer, defaultTimeoutMs);
      });
    }
    const step = next(outcomes);
    if (step.stop) return step.immediate;
    i = end;
  }
  return undefined;
}

/** What one call ran: a batch's outcomes, or one policy's. */
type Ran = readonly PolicyOutcome[] | PolicyOutcome;

/** Settles the outcomes of `entries[from, end)`, which ran as one call started at `started`. */
function settleRan(
  entries: readonly ChainEntry[],
  from: number,
  end: number,
  outcomes: readonly PolicyOutcome[],
  started: number,
  phase: Phase,
  state: ExchangeState,
  observer: RunObserver | undefined,
): Step {
  // A batch's time is shared evenly by the policies that ran in it.
  const seconds = (performance.now() - started) / 1000 / Math.max(outcomes.length, 1);
  for (let k = from; k < end; k++) {
    const outcome = outcomes[k - from] ??
      { error: new PolicyFailure("error", "the runtime returned no result") };
    const step = settle(entries[k], outcome, phase, state, seconds, observer);
    if (step.stop) return step;
  }
  return NEXT;
}
