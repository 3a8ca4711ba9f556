/**
 * The rate-limit fields of draft-ietf-httpapi-ratelimit-headers-06 (`RateLimit-Limit`,
 * `RateLimit-Remaining`, `RateLimit-Reset`, `RateLimit-Policy`), `Retry-After` (RFC 9110),
 * and the 429 answer.
 */
import type { HeaderRecord, ImmediateResponse } from "@tollgate/sdk";
import { reject } from "../shared/reject.ts";
import type { Decision } from "./algorithms.ts";
import type { Limit } from "./limits.ts";

const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/** `RateLimit-Policy`: every limit as `<limit>;w=<window seconds>` (and `burst=` for a larger bucket). */
export function policyField(limits: readonly Limit[], tokenBucket: boolean): string {
  return limits.map((l) =>
    `${l.limit};w=${seconds(l.windowMs)}${tokenBucket && l.burst !== l.limit ? `;burst=${l.burst}` : ""}`
  ).join(", ");
}

/**
 * The RateLimit fields for a decision. With several limits they describe the one closest to
 * running out (fewest remaining; on a tie, the one that resets last), as the draft advises.
 */
export function rateLimitHeaders(limits: readonly Limit[], decision: Decision, policy: string): HeaderRecord {
  let closest = 0;
  decision.limits.forEach((status, i) => {
    const best = decision.limits[closest];
    if (
      status.remaining < best.remaining ||
      (status.remaining === best.remaining && status.resetMs > best.resetMs)
    ) {
      closest = i;
    }
  });
  const status = decision.limits[closest];
  return {
    "ratelimit-limit": String(limits[closest].limit),
    "ratelimit-remaining": String(status.remaining),
    "ratelimit-reset": String(seconds(status.resetMs)),
    "ratelimit-policy": policy,
  };
}

/** The 429 answer: a JSON body, `Retry-After` (at least one second) and, if enabled, the RateLimit fields. */
export function limitedResponse(
  limits: readonly Limit[],
  decision: Decision,
  rateLimitFields: HeaderRecord | undefined,
): ImmediateResponse {
  const retryAfter = Math.max(1, seconds(decision.retryAfterMs));
  const exceeded = limits.filter((_, i) => decision.limits[i].remaining === 0)
    .map((l) => `${l.limit} per ${l.duration}`).join(" and ");
  return reject(
    429,
    "rate_limited",
    `rate limit exceeded (${exceeded || "limit reached"}); retry after ${retryAfter} s`,
    { ...rateLimitFields, "retry-after": String(retryAfter) },
  );
}
