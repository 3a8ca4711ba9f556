/** Duration parameters of the built-in policies: `250ms`, `30s`, `1.5s`, `2m`, `1h`. */
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds for a duration the schema has already checked (its `pattern` is the one above). */
export function durationMs(text: string): number {
  const match = DURATION.exec(text);
  if (!match) throw new Error(`invalid duration "${text}" (expected e.g. 250ms, 30s, 2m)`);
  return Math.round(Number(match[1]) * UNIT_MS[match[2]]);
}
