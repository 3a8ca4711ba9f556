/** A deadline on a policy's promise, shared by the chain runner and the auditing queue. */
import { PolicyFailure } from "./failure.ts";

/** `promise`, or a `timeout` PolicyFailure naming `label` after `ms` (none when `ms` is undefined). */
export function withTimeout<T>(promise: Promise<T>, ms: number | undefined, label: string): Promise<T> {
  if (ms === undefined) return promise;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new PolicyFailure("timeout", `${label} exceeded its ${ms}ms timeout`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
