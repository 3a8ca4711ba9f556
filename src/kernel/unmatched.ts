/**
 * Requests whose route has no chain: counted, and each route name logged once, so a route
 * named differently in Envoy and in the config is never silently unprotected. Memory is
 * bounded: at most {@link MAX_NAMES} names are remembered; requests for further names are
 * summed up in a log line at most once a minute.
 */
import { getLogger } from "@logtape/logtape";

const log = getLogger(["tollgate", "kernel", "unmatched"]);

/** Route names remembered (and logged one by one) between reloads. */
export const MAX_NAMES = 1000;
const SUMMARY_INTERVAL_MS = 60_000;

/** What was done with an unmatched request. */
export type UnmatchedAction = "pass" | "deny" | "default";

/** Why a request is unmatched: a name the config lacks, or no route name attribute at all. */
export type UnmatchedReason = "unknown_route" | "no_route_name";

const EFFECT: Record<UnmatchedAction, string> = {
  pass: "passed through with no policy (unmatchedRoutes: pass)",
  deny: "denied with 404 (unmatchedRoutes: deny)",
  default: "ran the default chain (defaultPolicies)",
};

/** Counts for the admin /routes endpoint. */
export interface UnmatchedSnapshot {
  readonly requests: number;
  readonly withoutRouteName: number;
  /** Requests per remembered route name since the last reload. */
  readonly routes: Readonly<Record<string, number>>;
  /** Requests for names beyond the remembered ones since the last reload. */
  readonly otherRoutes: number;
}

export class UnmatchedRoutes {
  #names = new Map<string, number>();
  #requests = 0;
  #withoutName = 0;
  #loggedWithoutName = false;
  #overflow = 0;
  #overflowSinceSummary = 0;
  #lastSummary = -Infinity;

  /** Counts one request (`name` undefined: no route name attribute) and logs what is new. */
  record(name: string | undefined, action: UnmatchedAction, source: string): void {
    this.#requests++;
    if (name === undefined) {
      this.#withoutName++;
      if (this.#loggedWithoutName) return;
      this.#loggedWithoutName = true;
      log.warn(
        "a request came without a route name (no Envoy route matched it, or Envoy's ext_proc filter lacks " +
          "request_attributes: [xds.route_name]): {effect}; further ones are counted in " +
          "tollgate_unmatched_requests_total",
        { effect: EFFECT[action], action },
      );
      return;
    }
    const seen = this.#names.get(name);
    if (seen !== undefined) {
      this.#names.set(name, seen + 1);
      return;
    }
    if (this.#names.size < MAX_NAMES) {
      this.#names.set(name, 1);
      log.warn("route {route} sent by Envoy has no chain in {source}: {effect}", {
        route: name,
        source,
        effect: EFFECT[action],
        action,
      });
      return;
    }
    this.#overflow++;
    this.#overflowSinceSummary++;
    const now = performance.now();
    if (now - this.#lastSummary < SUMMARY_INTERVAL_MS) return;
    log.warn(
      "{requests} more requests for route names with no chain beyond the {max} already logged: {effect}",
      {
        requests: this.#overflowSinceSummary,
        max: MAX_NAMES,
        effect: EFFECT[action],
        action,
      },
    );
    this.#lastSummary = now;
    this.#overflowSinceSummary = 0;
  }

  /** A new config: names are logged anew (they may still be unmatched, or matched now). */
  reset(): void {
    this.#names.clear();
    this.#overflow = 0;
    this.#loggedWithoutName = false;
  }

  snapshot(): UnmatchedSnapshot {
    return {
      requests: this.#requests,
      withoutRouteName: this.#withoutName,
      routes: Object.fromEntries(this.#names),
      otherRoutes: this.#overflow,
    };
  }
}
