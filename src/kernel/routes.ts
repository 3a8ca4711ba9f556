/**
 * The route table: Envoy route name → chain. The kernel holds the current table and swaps
 * it atomically on reload; a request keeps the chain it looked up at its first message,
 * so in-flight requests finish on the configuration they started with.
 */
import type { EngineConfig } from "../config/types.ts";
import type { Chain } from "../executor/chain.ts";
import { type UnmatchedAction, UnmatchedRoutes } from "./unmatched.ts";

export class RouteTable {
  constructor(
    readonly config: EngineConfig,
    readonly chains: ReadonlyMap<string, Chain>,
    /** Run for requests whose route has no chain (`defaultPolicies`); undefined when none. */
    readonly defaultChain: Chain | undefined = undefined,
  ) {}
}

/** What a request's route name resolves to in the current table. */
export interface Resolution {
  readonly table: RouteTable;
  /** The chain to run; undefined passes the request through (or denies it, see `unmatched`). */
  readonly chain: Chain | undefined;
  /** Set when the route has no chain of its own: what is done instead. */
  readonly unmatched?: UnmatchedAction;
}

interface Served {
  readonly chain: Chain;
  requests: number;
}

export class Kernel {
  #table: RouteTable;
  /** The current table's chains with their request counts (kept across reloads per name). */
  #served: Map<string, Served>;
  /** Requests whose route has no chain. */
  readonly unmatched = new UnmatchedRoutes();

  constructor(table: RouteTable) {
    this.#table = table;
    this.#served = Kernel.#serve(table, new Map());
  }

  static #serve(table: RouteTable, before: ReadonlyMap<string, Served>): Map<string, Served> {
    const served = new Map<string, Served>();
    for (const [name, chain] of table.chains) {
      served.set(name, { chain, requests: before.get(name)?.requests ?? 0 });
    }
    return served;
  }

  get table(): RouteTable {
    return this.#table;
  }

  /** Resolves a request's route name (undefined: Envoy sent none) and counts the request. */
  resolve(routeName: string | undefined): Resolution {
    const table = this.#table;
    const served = routeName === undefined ? undefined : this.#served.get(routeName);
    if (served) {
      served.requests++;
      return { table, chain: served.chain };
    }
    const action: UnmatchedAction = table.config.unmatchedRoutes === "deny"
      ? "deny"
      : table.defaultChain
      ? "default"
      : "pass";
    this.unmatched.record(routeName, action, table.config.source);
    return { table, chain: action === "default" ? table.defaultChain : undefined, unmatched: action };
  }

  /** Requests served per configured route (since start, or since the route was added). */
  requestCounts(): ReadonlyMap<string, number> {
    return new Map([...this.#served].map(([name, served]) => [name, served.requests]));
  }

  /** Replaces the table; returns the previous one. */
  swap(table: RouteTable): RouteTable {
    const previous = this.#table;
    this.#table = table;
    this.#served = Kernel.#serve(table, this.#served);
    this.unmatched.reset();
    return previous;
  }
}
