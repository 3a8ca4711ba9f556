/**
 * What running a policy can end in, shared by the buffered and the streamed paths: the
 * immediate-response outcome, the one place a policy's decision is recorded, and failure
 * handling under `onFailure`.
 */
import { getLogger } from "@logtape/logtape";
import { DEFAULT_IMMEDIATE_STATUS, type ImmediateResponseInit } from "../sdk/actions.ts";
import { bodyBytes, checkStatus, immediateHeaderLines } from "./apply.ts";
import { type DecisionEntry, type DecisionOutcome, epochNs } from "../observe/decision_trace.ts";
import { scrubSecrets } from "../observe/scrub.ts";
import type { ChainEntry } from "./chain.ts";
import { asFailure, failureResponse } from "./failure.ts";
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

export function toImmediate(init: ImmediateResponseInit, policy: string): ImmediateOutcome {
  return {
    statusCode: checkStatus(init.statusCode ?? DEFAULT_IMMEDIATE_STATUS, "immediate response statusCode"),
    headers: immediateHeaderLines(init.headers),
    body: init.body === undefined ? new Uint8Array() : bodyBytes(init.body),
    policy,
  };
}

/** How the chain goes on after one policy: on to the next, or stop (with a response or not). */
export type Stop = {
  readonly stop: true;
  /** The trace's reason for the policies left out. */
  readonly cause: "short_circuit" | "skip_remaining";
  readonly immediate?: ImmediateOutcome;
};
export type Step = { readonly stop: false } | Stop;
export const NEXT: Step = { stop: false };

/** When a policy ran (`performance.now()`) and for how long; a batch's time is shared evenly. */
export interface Timing {
  readonly startedMs: number;
  readonly durationMs: number;
  /** Settled from a batch runner's results. */
  readonly batched: boolean;
}
/** The timing of a policy that never started (skipped, or its condition failed). */
export const NOT_RUN: Timing = { startedMs: 0, durationMs: 0, batched: false };

/** How one policy run went: its trace outcome and reason (and a failure's scrubbed message). */
export interface Verdict {
  readonly outcome: DecisionOutcome;
  readonly reason?: string;
  readonly error?: string;
}

/**
 * The one place a policy's part in the exchange is recorded: the decision trace, the
 * observer (metrics, the failure quarantine) and the exchange's recorder when it has one
 * (tracing).
 */
export function decide(
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

/** Records, logs and counts a policy's failure; returns what its `onFailure` rule does next. */
export function settleFailure(
  entry: ChainEntry,
  error: unknown,
  phase: Phase,
  state: ExchangeState,
  timing: Timing,
  observer: RunObserver | undefined,
): Step {
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
