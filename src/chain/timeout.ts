/** A deadline on a policy's promise, shared by the chain runner and the auditing queue. */
import { PolicyFailure } from "./failure.ts";

/**
 * `promise`, or a `timeout` PolicyFailure naming `label` after `ms` (none when `ms` is
 * undefined); `onTimeout` then tells the call (its `ctx.signal` fires).
 */
export function withTimeout<T>(
  promise: Promise<T>,
  ms: number | undefined,
  label: string,
  onTimeout?: (message: string) => void,
): Promise<T> {
  if (ms === undefined) return promise;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const message = `${label} exceeded its ${ms}ms timeout`;
      // Rejected before the signal fires: a policy that settles when told to stop must not
      // win the race and have its late result applied instead of the timeout.
      reject(new PolicyFailure("timeout", message));
      onTimeout?.(message);
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
