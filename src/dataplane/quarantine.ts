/**
 * Which policies the watchdog caught holding a worker repeatedly: a policy whose worker was
 * replaced `STRIKES` times within `WINDOW_MS` is quarantined for `QUARANTINE_MS`, during
 * which its chain entries fail fast under their onFailure rule instead of running.
 */
export const STRIKES = 2;
export const WINDOW_MS = 60_000;
export const QUARANTINE_MS = 10 * 60_000;

/** Policy label → until when (ms since the epoch) it is quarantined. */
export type QuarantineList = readonly (readonly [string, number])[];

export class Quarantine {
  readonly #strikes = new Map<string, number[]>();
  readonly #until = new Map<string, number>();

  /** Records that `label` held a worker past the watchdog; true when that quarantines it. */
  strike(label: string, now = Date.now()): boolean {
    const recent = (this.#strikes.get(label) ?? []).filter((at) => now - at < WINDOW_MS);
    recent.push(now);
    this.#strikes.set(label, recent);
    if (recent.length < STRIKES) return false;
    this.#until.set(label, now + QUARANTINE_MS);
    this.#strikes.delete(label);
    return true;
  }

  /** The policies quarantined now, for the workers. */
  list(now = Date.now()): QuarantineList {
    return [...this.#until].filter(([, until]) => until > now);
  }
}

/** Why a worker refuses to run `label`, or undefined when it may run. */
export function quarantineReason(
  list: ReadonlyMap<string, number>,
  label: string,
  now?: number,
): string | undefined {
  if (list.size === 0) return undefined;
  const until = list.get(label);
  return until !== undefined && until > (now ?? Date.now())
    ? `${label} is quarantined until ${
      new Date(until).toISOString()
    }: it held a data-plane worker past the watchdog ${STRIKES} times within ${WINDOW_MS / 1000}s`
    : undefined;
}
