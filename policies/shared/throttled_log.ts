/**
 * A warning that client traffic can trigger at any rate (a refused request, a bad header),
 * logged at most once per interval per policy instance, with how many were left out since.
 */
import type { Logger } from "@logtape/logtape";

/** Logs `message` with `properties`, at most once per `intervalMs`. */
export type ThrottledWarning = (message: string, properties: Record<string, unknown>) => void;

export function throttledWarning(log: Logger, intervalMs = 10_000): ThrottledWarning {
  let next = 0;
  let suppressed = 0;
  return (message, properties) => {
    const now = Date.now();
    if (now < next) {
      suppressed++;
      return;
    }
    log.warn(message, { ...properties, suppressed });
    next = now + intervalMs;
    suppressed = 0;
  };
}
