/**
 * The route table: Envoy route name → chain. The kernel holds the current table and swaps
 * it atomically on reload; a request keeps the chain it looked up at its first message,
 * so in-flight requests finish on the configuration they started with. A table that was
 * swapped out closes its policy instances once the last request using it has finished.
 */
import { getLogger } from "@logtape/logtape";
import type { EngineConfig } from "../config/types.ts";
import type { Chain } from "../executor/chain.ts";

const log = getLogger(["tollgate", "kernel"]);

/** Calls `close()` on every policy instance of `chains`; failures are logged, never thrown. */
export async function closeChains(chains: Iterable<Chain>): Promise<void> {
  const closing: Promise<void>[] = [];
  for (const chain of chains) {
    for (const entry of chain.entries) {
      if (!entry.policy.close) continue;
      closing.push(
        Promise.resolve().then(() => entry.policy.close!()).catch((error) => {
          log.error("policy {policy} of route {route} failed to close: {error}", {
            policy: entry.label,
            route: chain.route.name,
            error: error instanceof Error ? error.message : String(error),
          });
        }),
      );
    }
  }
  await Promise.all(closing);
}

export class RouteTable {
  #users = 0;
  #retired = false;
  #closing = false;
  readonly #closed = Promise.withResolvers<void>();

  constructor(readonly config: EngineConfig, readonly chains: ReadonlyMap<string, Chain>) {}

  /** A request starts using this table's chains. */
  acquire(): void {
    this.#users++;
  }

  /** A request that called {@link acquire} has finished. */
  release(): void {
    this.#users--;
    if (this.#retired && this.#users === 0) this.#close();
  }

  /**
   * Marks the table as replaced: its policy instances are closed once no request uses it
   * (at once if none does). Resolves when they are closed.
   */
  retire(): Promise<void> {
    this.#retired = true;
    if (this.#users === 0) this.#close();
    return this.#closed.promise;
  }

  #close(): void {
    if (this.#closing) return;
    this.#closing = true;
    closeChains(this.chains.values()).then(this.#closed.resolve);
  }
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
