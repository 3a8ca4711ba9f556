/**
 * What one policy did for one exchange: the record every per-policy observer (metrics,
 * the failure quarantine, traces) receives from the chain's one call site (src/chain/run.ts).
 */

export type DecisionOutcome = "passed" | "modified" | "denied" | "failed" | "skipped";

export interface DecisionEntry {
  /** The policy's name. */
  readonly policy: string;
  /** vMAJOR.MINOR.PATCH of the definition. */
  readonly version: string;
  readonly phase: "request" | "response";
  readonly outcome: DecisionOutcome;
  /** A short code: "condition_false", "immediate_response", a failure kind ("error", "timeout", "unavailable"). */
  readonly reason?: string;
  /** When it started, in nanoseconds since the epoch. */
  readonly startNs: bigint | number;
  readonly durationMs: number;
}
