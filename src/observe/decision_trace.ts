/**
 * The decision trace: one entry per policy of a request's chain saying whether it ran and
 * what it decided, with a reason code and its duration. Recorded by src/chain/run.ts (one
 * call site per policy). This branch holds only the shared record type of issue 13's
 * observers (decision trace, metrics, tracing) and reads it for tracing.
 */

/** What happened to one policy of the chain. */
export type DecisionOutcome = "passed" | "modified" | "denied" | "failed" | "skipped";

/** One policy's part in one phase of a request. */
export interface DecisionEntry {
  /** The policy's name, e.g. `jwt-auth`. */
  readonly policy: string;
  /** `vMAJOR.MINOR.PATCH` of its definition. */
  readonly version: string;
  readonly phase: "request" | "response";
  readonly outcome: DecisionOutcome;
  /**
   * A short code: for `skipped` why (`condition_false`); for `failed` the failure kind
   * (`error`, `timeout`, `unavailable`); for `denied` the status code it answered with.
   */
  readonly reason?: string;
  /** When it started, in nanoseconds since the Unix epoch (0 when it did not run). */
  readonly startNs: bigint | number;
  /** How long it ran (0 when it did not; a Python batch's time is shared evenly). */
  readonly durationMs: number;
}

/** A time from `performance.now()` as nanoseconds since the Unix epoch (sub-microsecond precision is lost). */
export function epochNs(performanceMs: number): number {
  return Math.round((performance.timeOrigin + performanceMs) * 1e6);
}
