/**
 * GET /routes: what a worker runs, and the control plane's combination of every worker's
 * view (the same table everywhere; request counts summed).
 */
import type { Chain } from "../chain/chain.ts";
import type { Kernel } from "../kernel/routes.ts";
import type { RoutesView } from "./messages.ts";

function describeChain(chain: Chain) {
  return {
    policies: chain.entries.map((e) => ({
      policy: e.label,
      parameters: e.shownParams,
      mode: e.mode,
      onFailure: e.onFailure,
    })),
    phases: {
      requestHeaders: chain.request.slice(0, chain.requestHeadersCount).map((e) => e.label),
      requestBody: chain.request.slice(chain.requestHeadersCount).map((e) => e.label),
      responseHeaders: chain.response.slice(0, chain.responseHeadersCount).map((e) => e.label),
      responseBody: chain.response.slice(chain.responseHeadersCount).map((e) => e.label),
    },
  };
}

/** GET /routes: the running table, requests per route, and the requests no route matched. */
export function describeRoutes(kernel: Kernel): RoutesView {
  const table = kernel.table;
  const requests = kernel.requestCounts();
  return {
    source: table.config.source,
    routes: [...table.chains.values()].map((chain) => ({
      name: chain.route.name,
      requests: requests.get(chain.route.name) ?? 0,
      ...describeChain(chain),
    })),
    unmatchedRoutes: table.config.unmatchedRoutes,
    defaultChain: table.defaultChain ? describeChain(table.defaultChain) : null,
    unmatched: kernel.unmatched.snapshot(),
  };
}

/** One view of the table with every worker's counts added up (the first worker's otherwise). */
export function combineRoutes(views: readonly RoutesView[]): RoutesView {
  const [first, ...others] = views;
  if (others.length === 0) return first;
  const unmatched = first.unmatched as Record<string, unknown> & { requests: number };
  return {
    ...first,
    routes: first.routes.map((route, index) => ({
      ...route,
      requests: views.reduce((sum, view) => sum + (view.routes[index]?.requests ?? 0), 0),
    })),
    unmatched: { ...unmatched, requests: views.reduce((sum, view) => sum + view.unmatched.requests, 0) },
  };
}
