/**
 * The three rate-limit algorithms as pure functions of a stored state and the time, for the
 * memory store (the Redis store runs the same rules in Lua: redis_script.ts). A request
 * passes only if every limit allows it, and only then is it counted against all of them,
 * so a denied request uses up nothing.
 */
import type { Limit } from "./limits.ts";

export type Algorithm = "token-bucket" | "fixed-window" | "sliding-window";

/**
 * What is stored per key and limit: token bucket `[tokens, updatedAt]`; fixed window
 * `[windowStart, count]`; sliding window `[windowStart, count, previousCount]`.
 */
export type LimitState = readonly number[];

/** The outcome for one limit, as the response headers report it. */
export interface LimitStatus {
  /** Requests still allowed now (after this one, if it passed). */
  readonly remaining: number;
  /** Milliseconds until the quota is back to full (token bucket) or the window ends. */
  readonly resetMs: number;
}

export interface Decision {
  readonly allowed: boolean;
  /** Milliseconds until a request could pass; 0 when allowed. */
  readonly retryAfterMs: number;
  /** One entry per limit, in the order of the parameters. */
  readonly limits: readonly LimitStatus[];
}

/** One limit's view before counting: can one more pass, and the state after counting it. */
interface Probe {
  readonly allows: boolean;
  /** State without counting this request (kept for a denied request). */
  readonly current: LimitState;
  /** State with this request counted. */
  readonly counted: LimitState;
  /** Status if the request is counted / if it is not. */
  readonly ifCounted: LimitStatus;
  readonly ifNot: LimitStatus;
  readonly retryAfterMs: number;
}

function tokenBucket(state: LimitState | undefined, now: number, limit: Limit): Probe {
  const ratePerMs = limit.limit / limit.windowMs;
  const [stored, at] = state ?? [limit.burst, now];
  const tokens = Math.min(limit.burst, stored + Math.max(0, now - at) * ratePerMs);
  const refillMs = (level: number) => Math.ceil((limit.burst - level) / ratePerMs);
  const allows = tokens >= 1;
  return {
    allows,
    current: [tokens, now],
    counted: [tokens - 1, now],
    ifCounted: { remaining: Math.floor(tokens - 1), resetMs: refillMs(tokens - 1) },
    ifNot: { remaining: Math.floor(tokens), resetMs: refillMs(tokens) },
    retryAfterMs: allows ? 0 : Math.ceil((1 - tokens) / ratePerMs),
  };
}

function fixedWindow(state: LimitState | undefined, now: number, limit: Limit): Probe {
  const start = now - (now % limit.windowMs);
  const count = state && state[0] === start ? state[1] : 0;
  const resetMs = start + limit.windowMs - now;
  const allows = count < limit.limit;
  return {
    allows,
    current: [start, count],
    counted: [start, count + 1],
    ifCounted: { remaining: limit.limit - count - 1, resetMs },
    ifNot: { remaining: Math.max(0, limit.limit - count), resetMs },
    retryAfterMs: allows ? 0 : resetMs,
  };
}

/**
 * Sliding window counter: the previous window's count weighted by how much of it still
 * overlaps the sliding window, plus the current window's count.
 */
function slidingWindow(state: LimitState | undefined, now: number, limit: Limit): Probe {
  const w = limit.windowMs;
  const start = now - (now % w);
  let count = 0;
  let previous = 0;
  if (state && state[0] === start) [, count, previous] = state;
  else if (state && state[0] === start - w) previous = state[1];
  const elapsed = now - start;
  const estimate = previous * (w - elapsed) / w + count;
  const allows = estimate + 1 <= limit.limit;
  const resetMs = w - elapsed;
  let retryAfterMs = 0;
  if (!allows) {
    // When the weighted estimate (which falls as the window slides) leaves room for one.
    retryAfterMs = count + 1 > limit.limit
      ? resetMs + Math.ceil(w * (1 - (limit.limit - 1) / count))
      : Math.max(1, Math.ceil(w * (1 - (limit.limit - 1 - count) / previous)) - elapsed);
  }
  return {
    allows,
    current: [start, count, previous],
    counted: [start, count + 1, previous],
    ifCounted: { remaining: Math.max(0, Math.floor(limit.limit - estimate - 1)), resetMs },
    ifNot: { remaining: Math.max(0, Math.floor(limit.limit - estimate)), resetMs },
    retryAfterMs,
  };
}

const PROBES = { "token-bucket": tokenBucket, "fixed-window": fixedWindow, "sliding-window": slidingWindow };

/**
 * Decides one request against every limit of a key. Returns the decision and the states to
 * store (one per limit).
 */
export function decide(
  algorithm: Algorithm,
  limits: readonly Limit[],
  states: readonly (LimitState | undefined)[],
  now: number,
): { decision: Decision; states: LimitState[] } {
  const probes = limits.map((limit, i) => PROBES[algorithm](states[i], now, limit));
  const allowed = probes.every((p) => p.allows);
  return {
    decision: {
      allowed,
      retryAfterMs: allowed ? 0 : Math.max(...probes.map((p) => p.retryAfterMs)),
      limits: probes.map((p) => allowed ? p.ifCounted : p.ifNot),
    },
    states: probes.map((p) => allowed ? p.counted : p.current),
  };
}
