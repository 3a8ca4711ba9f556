/**
 * "Did you mean": the known name closest to a mistyped one, when it is close enough to be a
 * typo rather than a different word.
 *
 * @module
 */
import { distance } from "fastest-levenshtein";

/** The candidate nearest to `given` (case-insensitive), if within a typo's distance. */
export function closestName(given: string, candidates: Iterable<string>): string | undefined {
  const lower = given.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(lower, candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best !== undefined && bestDistance > 0 && bestDistance <= Math.max(2, Math.floor(given.length / 3))
    ? best
    : undefined;
}

/** ` (did you mean X?)`, or nothing. */
export function didYouMean(given: string, candidates: Iterable<string>): string {
  const best = closestName(given, candidates);
  return best === undefined ? "" : ` (did you mean ${best}?)`;
}
