/** The `limits` parameter: "N requests per duration" entries, parsed once per chain. */

/** One limit: at most `limit` requests per `windowMs`; a token bucket holds up to `burst`. */
export interface Limit {
  readonly limit: number;
  readonly windowMs: number;
  /** Token-bucket capacity (the other algorithms ignore it); defaults to `limit`. */
  readonly burst: number;
  /** The duration as the user wrote it, for messages. */
  readonly duration: string;
}

/** A duration as the schema allows it: one or more `<integer><unit>` parts, e.g. `1s`, `1h30m`, `500ms`. */
export const DURATION_PATTERN = "^([0-9]+(ms|s|m|h|d))+$";
const PART = /([0-9]+)(ms|s|m|h|d)/g;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration that matches {@link DURATION_PATTERN}; throws on zero or bad text. */
export function durationMs(text: string): number {
  if (!new RegExp(DURATION_PATTERN).test(text)) throw new Error(`invalid duration "${text}"`);
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART)) total += Number(amount) * UNIT_MS[unit];
  if (total <= 0) throw new Error(`duration "${text}" must be longer than 0`);
  return total;
}

/** The validated parameter entries as limits (throws with the entry's index on a bad one). */
export function parseLimits(
  entries: readonly { limit: number; duration: string; burst?: number }[],
): Limit[] {
  return entries.map((entry, index) => {
    try {
      return {
        limit: entry.limit,
        windowMs: durationMs(entry.duration),
        burst: entry.burst ?? entry.limit,
        duration: entry.duration,
      };
    } catch (error) {
      throw new Error(`limits[${index}]: ${(error as Error).message}`);
    }
  });
}
