/**
 * The failure quarantine (config `quarantine`): a route's policy that fails more than
 * `failures` times within `window` is quarantined, and leaves the state once a whole window
 * has passed without it exceeding the threshold again. It is a report, not a switch: the
 * policy keeps running under its onFailure rule, and operators see it in /readyz detail,
 * in `tollgate_policy_quarantined` and in one log line per change, before users report it.
 * Each worker counts its own failures (a cross-thread message per failure would cost the
 * request path); with several workers the threshold applies per worker.
 */
import { getLogger } from "@logtape/logtape";
import type { QuarantineConfig } from "../config/types.ts";

const log = getLogger(["tollgate", "dataplane", "quarantine"]);

/** A quarantined policy as /readyz shows it. */
export interface QuarantinedPolicy {
  /** The route, or absent when the policy is quarantined on every route (the watchdog's). */
  readonly route?: string;
  /** `name:vMAJOR`. */
  readonly policy: string;
  readonly cause: "failures" | "watchdog";
  /** ISO time it entered the state. */
  readonly since?: string;
  /** ISO time it leaves the state, when known in advance (the watchdog's). */
  readonly until?: string;
  readonly reason: string;
}

interface Tracked {
  readonly route: string;
  readonly policy: string;
  /** Times of the most recent failures (at most `failures + 1`). */
  times: number[];
  /** Set while quarantined: when it entered, and when it last exceeded the threshold. */
  since?: number;
  lastExceeded?: number;
}

export class FailureQuarantine {
  readonly #tracked = new Map<string, Tracked>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly settings: () => QuarantineConfig,
    private readonly clock: () => number = Date.now,
  ) {}

  /** `policy` (`name:vMAJOR`) of `route` failed once. */
  failed(route: string, policy: string): void {
    const { failures, windowMs } = this.settings();
    const now = this.clock();
    const key = `${route}\0${policy}`;
    let tracked = this.#tracked.get(key);
    if (!tracked) this.#tracked.set(key, tracked = { route, policy, times: [] });
    tracked.times.push(now);
    while (tracked.times.length > 0 && now - tracked.times[0] >= windowMs) tracked.times.shift();
    if (tracked.times.length > failures + 1) tracked.times.shift();
    if (tracked.times.length <= failures) return;
    tracked.lastExceeded = now;
    if (tracked.since !== undefined) return;
    tracked.since = now;
    log.error(
      "policy {policy} of route {route} entered quarantine: more than {failures} failures within {windowMs}ms",
      { policy, route, failures, windowMs },
    );
    this.#timer ??= setInterval(() => this.sweep(), Math.max(50, Math.min(1000, windowMs / 10)));
  }

  /** Lets out every policy whose last window passed without exceeding the threshold. */
  sweep(): void {
    const { failures, windowMs } = this.settings();
    const now = this.clock();
    let remaining = 0;
    for (const [key, tracked] of this.#tracked) {
      if (tracked.since === undefined) {
        if (tracked.times.every((at) => now - at >= windowMs)) this.#tracked.delete(key);
        continue;
      }
      if (now - tracked.lastExceeded! < windowMs) {
        remaining++;
        continue;
      }
      log.info(
        "policy {policy} of route {route} left quarantine: at most {failures} failures within {windowMs}ms",
        {
          policy: tracked.policy,
          route: tracked.route,
          failures,
          windowMs,
          quarantinedMs: now - tracked.since,
        },
      );
      this.#tracked.delete(key);
    }
    if (remaining === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Whether `policy` of `route` is quarantined now. */
  has(route: string, policy: string): boolean {
    return this.#tracked.get(`${route}\0${policy}`)?.since !== undefined;
  }

  list(): QuarantinedPolicy[] {
    const { failures, windowMs } = this.settings();
    return [...this.#tracked.values()].flatMap((t) =>
      t.since === undefined ? [] : [{
        route: t.route,
        policy: t.policy,
        cause: "failures" as const,
        since: new Date(t.since).toISOString(),
        reason: `more than ${failures} failures within ${windowMs / 1000}s`,
      }]
    );
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
