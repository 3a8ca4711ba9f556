/** Durations as users write them: `250ms`, `30s`, `1.5s`, `2m`, `1h`. */
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** The regular expression source, for JSON schemas. */
export const DURATION_PATTERN: string = DURATION.source;

/** Milliseconds for a duration string; throws on anything else. */
export function parseDuration(text: string): number {
  const match = DURATION.exec(text);
  if (!match) throw new Error(`invalid duration "${text}" (expected e.g. 250ms, 30s, 2m)`);
  return Math.round(Number(match[1]) * UNIT_MS[match[2]]);
}
