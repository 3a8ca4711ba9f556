/**
 * What running a policy can end in, shared by the buffered and the streamed paths: the
 * immediate-response outcome, failure handling under `onFailure`, and call deadlines.
 */
import { getLogger } from "@logtape/logtape";
import type { ImmediateResponseInit } from "../sdk/actions.ts";
import { bodyBytes, checkStatus, immediateHeaderLines } from "./apply.ts";
import { scrubSecrets } from "../observe/scrub.ts";
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
    statusCode: checkStatus(init.statusCode, "immediate response statusCode"),
    headers: immediateHeaderLines(init.headers),
    body: init.body === undefined ? new Uint8Array() : bodyBytes(init.body),
    policy,
  };
}

export function withTimeout<T>(promise: Promise<T>, ms: number | undefined, label: string): Promise<T> {
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

/** How the chain goes on after one policy: on to the next, or stop (with a response or not). */
export type Step = { readonly stop: false } | { readonly stop: true; readonly immediate?: ImmediateOutcome };
export const NEXT: Step = { stop: false };

/** Logs and counts a policy's failure; returns what its `onFailure` rule does next. */
export function settleFailure(
  entry: ChainEntry,
  error: unknown,
  phase: Phase,
  state: ExchangeState,
  seconds: number,
  observer: RunObserver | undefined,
): Step {
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
