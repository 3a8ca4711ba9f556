/**
 * The route table: Envoy route name → chain. The kernel holds the current table and swaps
 * it atomically on reload; a request keeps the chain it looked up at its first message,
 * so in-flight requests finish on the configuration they started with.
 */
import type { EngineConfig } from "../config/types.ts";
import type { Chain } from "../executor/chain.ts";

export class RouteTable {
  constructor(readonly config: EngineConfig, readonly chains: ReadonlyMap<string, Chain>) {}
}

export class Kernel {
  #table: RouteTable;

  constructor(table: RouteTable) {
    this.#table = table;
  }

  get table(): RouteTable {
    return this.#table;
  }

  /** The chain of a route in the current table; undefined means pass through. */
  chainFor(routeName: string): Chain | undefined {
    return this.#table.chains.get(routeName);
  }

  /** Replaces the table; returns the previous one. */
  swap(table: RouteTable): RouteTable {
    const previous = this.#table;
    this.#table = table;
    return previous;
  }
}
