/**
 * The decision trace: one entry per policy of a request's chain saying whether it ran and
 * what it decided, with a reason code and its duration. Recorded by src/chain/run.ts (one
 * call site per policy), sent to Envoy as dynamic metadata `tollgate.trace` (a compact
 * string the access log prints as is), optionally as a `Server-Timing` header, and handed
 * to auditing policies. Format and reason codes: docs/observability.md.
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
   * A short code: for `skipped` why (`condition_false`, `disabled`, `short_circuit`,
   * `skip_remaining`); for `failed` the failure kind (`error`, `timeout`, `unavailable`);
   * for `denied` the status code it answered with.
   */
  readonly reason?: string;
  /** When it started, in nanoseconds since the Unix epoch (0 when it did not run). */
  readonly startNs: bigint | number;
  /** How long it ran (0 when it did not; a Python batch's time is shared evenly). */
  readonly durationMs: number;
}

/** The dynamic metadata key (namespace `tollgate`) the trace is sent under. */
export const TRACE_METADATA_KEY = "trace";

/** `jwt-auth:v1` from a policy name and its full version. */
function labelOf(entry: DecisionEntry): string {
  const major = /^v(\d+)/.exec(entry.version)?.[1];
  return major === undefined ? `${entry.policy}:${entry.version}` : `${entry.policy}:v${major}`;
}

const ranWith = (entry: DecisionEntry) => entry.outcome !== "skipped";

/** Milliseconds with two decimals and no trailing zeros: `0.21`, `3`, `12.5`. */
function ms(value: number): string {
  return String(Math.round(value * 100) / 100);
}

/**
 * The compact text form: entries in the order they were decided, `;`-separated, each
 * `name:vMAJOR=outcome[(reason)][:<ms>ms]`, response-phase entries marked `@response`:
 * `jwt-auth:v1=passed:0.21ms;cors:v1=skipped(condition_false);cors:v1@response=passed:0.02ms`.
 */
export function formatTrace(entries: readonly DecisionEntry[]): string {
  let out = "";
  for (const entry of entries) {
    if (out) out += ";";
    out += labelOf(entry);
    if (entry.phase === "response") out += "@response";
    out += "=" + entry.outcome;
    if (entry.reason !== undefined) out += `(${entry.reason})`;
    if (ranWith(entry)) out += `:${ms(entry.durationMs)}ms`;
  }
  return out;
}

/**
 * A `Server-Timing` header value (W3C Server Timing) for the policies that ran:
 * `jwt-auth;dur=0.21;desc="request passed", respond;dur=0.05;desc="request denied"`.
 */
export function serverTimingValue(entries: readonly DecisionEntry[]): string {
  return entries.filter(ranWith).map((entry) =>
    `${entry.policy};dur=${ms(entry.durationMs)};desc="${entry.phase} ${entry.outcome}"`
  ).join(", ");
}

/** The request's overall result as its trace tells it (the strongest outcome wins). */
export function overallDecision(
  entries: readonly DecisionEntry[],
): "passed" | "modified" | "denied" | "failed" {
  let result: "passed" | "modified" | "denied" | "failed" = "passed";
  for (const { outcome } of entries) {
    if (outcome === "denied") return "denied";
    if (outcome === "failed") result = "failed";
    else if (outcome === "modified" && result === "passed") result = "modified";
  }
  return result;
}

/** A time from `performance.now()` as nanoseconds since the Unix epoch (sub-microsecond precision is lost). */
export function epochNs(performanceMs: number): number {
  return Math.round((performance.timeOrigin + performanceMs) * 1e6);
}
