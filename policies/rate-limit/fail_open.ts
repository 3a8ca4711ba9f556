/** The signal for requests `failOpen` let through unchecked: a counted, rate-limited warning. */
import { getLogger } from "@logtape/logtape";

const log = getLogger(["tollgate", "policy", "rate-limit"]);
const LOG_INTERVAL_MS = 10_000;

export class UncheckedRequests {
  #count = 0;
  #since = 0;

  constructor(private readonly routeName: string) {}

  /** Counts one request; logs the count at most once per interval. */
  note(reason: string): void {
    this.#count++;
    const now = Date.now();
    if (now - this.#since < LOG_INTERVAL_MS) return;
    log.warn("rate-limit on route {route}: {count} requests passed unchecked (failOpen): {reason}", {
      route: this.routeName,
      count: this.#count,
      reason,
    });
    this.#since = now;
    this.#count = 0;
  }
}
