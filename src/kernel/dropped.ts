/**
 * What a new route table no longer protects that the running one did: routes gone, policies
 * gone from a route's chain (removed or disabled), the default chain's policies, and a
 * switch of unmatched routes from deny to pass. A reload logs it, so a config cut short
 * (or a mistaken edit) that leaves requests with fewer policies is never silent.
 */
import type { Chain } from "../chain/chain.ts";
import type { RouteTable } from "./routes.ts";

function labelCounts(chain: Chain | undefined): Map<string, number> {
  const counts = new Map<string, number>();
  for (const entry of chain?.entries ?? []) counts.set(entry.label, (counts.get(entry.label) ?? 0) + 1);
  return counts;
}

/** Policies of `before` missing (or fewer times present) in `after`. */
function missingPolicies(before: Chain | undefined, after: Chain | undefined): string[] {
  const remaining = labelCounts(after);
  const missing: string[] = [];
  for (const [label, count] of labelCounts(before)) {
    const lost = count - (remaining.get(label) ?? 0);
    for (let i = 0; i < lost; i++) missing.push(label);
  }
  return missing;
}

/** One sentence per thing dropped; empty when `next` keeps everything `previous` ran. */
export function droppedProtection(previous: RouteTable, next: RouteTable): string[] {
  const dropped: string[] = [];
  for (const [name, chain] of previous.chains) {
    const after = next.chains.get(name);
    if (!after) {
      const had = chain.entries.map((e) => e.label);
      dropped.push(`route "${name}" (removed${had.length > 0 ? `; it ran ${had.join(", ")}` : ""})`);
      continue;
    }
    const missing = missingPolicies(chain, after);
    if (missing.length > 0) dropped.push(`route "${name}": ${missing.join(", ")}`);
  }
  const fallback = missingPolicies(previous.defaultChain, next.defaultChain);
  if (fallback.length > 0) dropped.push(`defaultPolicies: ${fallback.join(", ")}`);
  if (previous.config.unmatchedRoutes === "deny" && next.config.unmatchedRoutes === "pass") {
    dropped.push("unmatchedRoutes: deny → pass");
  }
  return dropped;
}
