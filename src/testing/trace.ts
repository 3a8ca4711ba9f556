/**
 * The harness's decision trace: one record per policy the chain reached, built from the
 * engine's own per-policy observation ({@link RunObserver.policyRan}), so it reports what
 * the real run did. The record has the shape of the engine's decision trace entry
 * (`DecisionEntry`, src/observe/decision_trace.ts once that lands; this copy is replaced
 * by an import then).
 * @module
 */
import type { ChainEntry } from "../chain/chain.ts";
import type { Phase, RunObserver } from "../chain/run.ts";
import type { ExchangeState } from "../chain/state.ts";

/** How one policy's run ended. */
export type DecisionOutcome = "passed" | "modified" | "denied" | "failed" | "skipped";

/** What one policy did in one phase of the exchange. */
export interface DecisionEntry {
  /** The policy's name, e.g. `set-headers`. */
  readonly policy: string;
  /** The full version of its definition, e.g. `v1.0.0`. */
  readonly version: string;
  /** `request` or `response`. */
  readonly phase: Phase;
  /** What the policy did: passed unchanged, modified, answered (denied), failed, or was skipped. */
  readonly outcome: DecisionOutcome;
  /** Why, for outcomes that have a reason: `condition_false`, `immediate_response`, `skip_remaining`. */
  readonly reason?: string;
  /** When the policy started (`performance.now()` in nanoseconds). */
  readonly startNs: number;
  /** How long the call took, in milliseconds (a Python batch's time is shared by its policies). */
  readonly durationMs: number;
}

/** What a phase's policies may change, compared before and after each policy to tell "modified". */
function snapshot(state: ExchangeState, phase: Phase): readonly unknown[] {
  return phase === "request"
    ? [JSON.stringify(state.requestHeaders), state.path, state.method, state.authority, state.requestBody]
    : [JSON.stringify(state.responseHeaders), state.status, state.responseBody];
}

const same = (a: readonly unknown[], b: readonly unknown[]) => a.every((value, i) => Object.is(value, b[i]));

/**
 * Records the policies of one slice of a chain as `runPolicies` settles them. Policies it
 * passes over without a report had a false condition; the ones after a `skipRemaining`
 * failure were skipped by it; the ones after an immediate response were never reached.
 */
export class TraceRecorder implements RunObserver {
  readonly entries: DecisionEntry[] = [];
  #slice: readonly ChainEntry[] = [];
  #next = 0;
  #phase: Phase = "request";
  #state: ExchangeState | undefined;
  #before: readonly unknown[] = [];
  #sliceStarted = 0;

  constructor(private readonly versions: ReadonlyMap<string, string>) {}

  /** Starts recording `slice`, about to be run for `phase` on `state`. */
  begin(slice: readonly ChainEntry[], phase: Phase, state: ExchangeState): void {
    this.#slice = slice;
    this.#next = 0;
    this.#phase = phase;
    this.#state = state;
    this.#before = snapshot(state, phase);
    this.#sliceStarted = performance.now();
  }

  /** Ends the slice: `stopped` when an immediate response ended it. */
  end(stopped: boolean): void {
    const last = this.entries.at(-1);
    const skipRemaining = last?.outcome === "failed" &&
      this.#slice[this.#next - 1]?.onFailure === "skipRemaining";
    if (stopped) return;
    while (this.#next < this.#slice.length) {
      this.#skip(this.#slice[this.#next++], skipRemaining ? "skip_remaining" : "condition_false");
    }
  }

  policyRan(label: string, phase: Phase, outcome: "ok" | "immediate" | "failed", seconds: number): void {
    while (this.#next < this.#slice.length && this.#slice[this.#next].label !== label) {
      this.#skip(this.#slice[this.#next++], "condition_false");
    }
    this.#next++;
    const after = this.#state ? snapshot(this.#state, phase) : [];
    const changed = !same(this.#before, after);
    this.#before = after;
    const durationMs = seconds * 1000;
    this.entries.push({
      ...this.#identity(label),
      phase,
      outcome: outcome === "immediate"
        ? "denied"
        : outcome === "failed"
        ? "failed"
        : changed
        ? "modified"
        : "passed",
      ...(outcome === "immediate" ? { reason: "immediate_response" } : {}),
      startNs: Math.round((performance.now() - durationMs) * 1e6),
      durationMs,
    });
  }

  #skip(entry: ChainEntry, reason: string): void {
    this.entries.push({
      ...this.#identity(entry.label),
      phase: this.#phase,
      outcome: "skipped",
      reason,
      startNs: Math.round(this.#sliceStarted * 1e6),
      durationMs: 0,
    });
  }

  #identity(label: string): { policy: string; version: string } {
    const policy = label.slice(0, label.lastIndexOf(":"));
    return { policy, version: this.versions.get(label) ?? label.slice(policy.length + 1) };
  }
}
