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
import { type DecisionEntry, type DecisionOutcome, epochNs } from "../observe/decision_trace.ts";
import { scrubSecrets } from "../observe/scrub.ts";
import type { AnyAction, ChainEntry, PolicyOutcome } from "./chain.ts";
import { asFailure, failureResponse, PolicyFailure } from "./failure.ts";
import type { ExchangeState } from "./state.ts";
import { withTimeout } from "./timeout.ts";

const log = getLogger(["tollgate", "executor"]);

export type Phase = "request" | "response";

/** An immediate response decided by a policy (or by a failure under `deny`). */
export interface ImmediateOutcome {
  readonly statusCode: number;
  readonly headers: readonly [string, string][];
  readonly body: Uint8Array;
  /** The policy that answered, e.g. `respond:v1`. */
  readonly policy: string;
  /** Set when a policy failure under `deny` decided the response (not the policy itself). */
  readonly failed?: boolean;
}

/** Observes every policy execution (metrics, the failure quarantine, traces). */
export interface RunObserver {
  /**
   * The one call site per policy execution, skip or failure: what `entry` did in this
   * exchange and how long it took (the same record the decision trace keeps).
   */
  policyDecided?(entry: ChainEntry, decision: DecisionEntry, state: ExchangeState): void;
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

async function invoke(
  entry: ChainEntry,
  phase: Phase,
  state: ExchangeState,
  defaultTimeoutMs: number | undefined,
  guard: PolicyGuard | undefined,
): Promise<PolicyOutcome> {
  try {
    const refused = guard?.enter(entry.label);
    if (refused !== undefined) return { error: new PolicyFailure("unavailable", refused) };
    let result: AnyAction | Promise<AnyAction>;
    try {
      result = phase === "request"
        ? entry.policy.onRequest?.(state.requestView, entry.params)
        : entry.policy.onResponse?.(state.responseView, entry.params);
    } finally {
      guard?.leave();
    }
    if (!isPromise(result)) return { action: result };
    return { action: await withTimeout(result, entry.timeoutMs ?? defaultTimeoutMs, entry.label) };
  } catch (error) {
    return { error };
  }
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
type Stop = {
  readonly stop: true;
  /** The trace's reason for the policies left out. */
  readonly cause: "short_circuit" | "skip_remaining";
  readonly immediate?: ImmediateOutcome;
};
type Step = { readonly stop: false } | Stop;
const NEXT: Step = { stop: false };
/** When a policy ran (`performance.now()`) and for how long; a batch's time is shared evenly. */
interface Timing {
  readonly startedMs: number;
  readonly durationMs: number;
  /** Settled from a batch runner's results. */
  readonly batched: boolean;
}
/** The timing of a policy that never started (skipped, or its condition failed). */
const NOT_RUN: Timing = { startedMs: 0, durationMs: 0, batched: false };

/** How one policy run went: its trace outcome and reason (and a failure's scrubbed message). */
interface Verdict {
  readonly outcome: DecisionOutcome;
  readonly reason?: string;
  readonly error?: string;
}

/**
 * The one place a policy's part in the exchange is recorded: the decision trace, the
 * observer (metrics, the failure quarantine) and the exchange's recorder when it has one
 * (tracing).
 */
function decide(
  entry: ChainEntry,
  phase: Phase,
  state: ExchangeState,
  verdict: Verdict,
  observer: RunObserver | undefined,
  timing: Timing = NOT_RUN,
): void {
  const decision: DecisionEntry = {
    policy: entry.name,
    version: entry.version,
    phase,
    outcome: verdict.outcome,
    reason: verdict.reason,
    startNs: timing.startedMs === 0 ? 0 : epochNs(timing.startedMs),
    durationMs: timing.durationMs,
  };
  state.trace.push(decision);
  observer?.policyDecided?.(entry, decision, state);
  state.recorder?.decided(decision, { batched: timing.batched, error: verdict.error });
}

function settle(
  entry: ChainEntry,
  outcome: PolicyOutcome,
  phase: Phase,
  state: ExchangeState,
  timing: Timing,
  observer: RunObserver | undefined,
): Step {
  let immediate: ImmediateOutcome | undefined;
  let action: AnyAction | undefined;
  try {
    if ("error" in outcome) throw outcome.error;
    action = outcome.action;
    immediate = applyAction(entry, phase, action, state) ?? undefined;
  } catch (error) {
    const failure = asFailure(error);
    const reason = scrubSecrets(failure.message, entry.secrets);
    decide(entry, phase, state, { outcome: "failed", reason: failure.kind, error: reason }, observer, timing);
    // `reason`, not `message`: a property named `message` would replace the JSON line's message.
    log.warn("policy {policy} failed in {phase} phase ({kind}): {reason}; rule {rule}", {
      policy: entry.label,
      phase,
      kind: failure.kind,
      reason,
      rule: entry.onFailure,
      requestId: state.shared.requestId,
      route: state.shared.route.name,
    });
    if (entry.onFailure === "continue") return NEXT;
    if (entry.onFailure === "skipRemaining") return { stop: true, cause: "skip_remaining" };
    const response = toImmediate(failureResponse(failure, entry.label, state.shared.requestId), entry.label);
    return { stop: true, cause: "short_circuit", immediate: { ...response, failed: true } };
  }
  const verdict: Verdict = immediate
    ? { outcome: "denied", reason: String(immediate.statusCode) }
    : { outcome: modifies(action) ? "modified" : "passed" };
  decide(entry, phase, state, verdict, observer, timing);
  return immediate ? { stop: true, cause: "short_circuit", immediate } : NEXT;
}

/**
 * Whether an action asks for a change to the exchange (what the trace calls `modified`):
 * analytics values alone, or a modifications object with nothing in it, leave it as it was.
 */
function modifies(action: AnyAction | undefined): boolean {
  if (action === undefined || action === null) return false;
  for (const [key, value] of Object.entries(action)) {
    if (key === "kind" || key === "analyticsMetadata" || value === undefined) continue;
    if (
      Array.isArray(value) ? value.length > 0 : typeof value !== "object" || Object.keys(value).length > 0
    ) {
      return true;
    }
  }
  return false;
}

/** Records the entries a stop left out as skipped, with what stopped the chain. */
function skipRest(
  entries: readonly ChainEntry[],
  from: number,
  to: number,
  phase: Phase,
  state: ExchangeState,
  reason: string,
  observer: RunObserver | undefined,
): void {
  for (let k = from; k < to; k++) decide(entries[k], phase, state, { outcome: "skipped", reason }, observer);
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
export async function runPolicies(
  entries: readonly ChainEntry[],
  from: number,
  to: number,
  phase: Phase,
  state: ExchangeState,
  observer?: RunObserver,
  defaultTimeoutMs?: number,
): Promise<ImmediateOutcome | undefined> {
  // After an immediate response Envoy sends nothing more: the rest of the phase never runs.
  const finish = (step: Stop, at: number) => {
    skipRest(entries, at + 1, step.immediate ? entries.length : to, phase, state, step.cause, observer);
    return step.immediate;
  };
  let i = from;
  while (i < to) {
    const entry = entries[i];
    const runs = conditionHolds(entry, phase, state);
    if (runs !== true) {
      // A condition that cannot be evaluated is a failure of its policy, never a skip.
      if (runs === false) {
        decide(entry, phase, state, { outcome: "skipped", reason: "condition_false" }, observer);
      } else {
        const step = settle(entry, runs, phase, state, NOT_RUN, observer);
        if (step.stop) return finish(step, i);
      }
      i++;
      continue;
    }
    const end = entry.batch ? batchEnd(entries, i, to) : i + 1;
    const started = performance.now();
    const outcomes = entry.batch
      ? await entry.batch.run(entries.slice(i, end), phase, state)
      : [await invoke(entry, phase, state, defaultTimeoutMs, observer?.guard)];
    // A batch's time is shared evenly by the policies that ran in it.
    const share = (performance.now() - started) / Math.max(outcomes.length, 1);
    for (let k = i; k < end; k++) {
      const outcome = outcomes[k - i] ??
        { error: new PolicyFailure("error", "the runtime returned no result") };
      const timing = { startedMs: started + (k - i) * share, durationMs: share, batched: !!entry.batch };
      const step = settle(entries[k], outcome, phase, state, timing, observer);
      if (step.stop) return finish(step, k);
    }
    i = end;
  }
  return undefined;
}
