/**
 * The route table: Envoy route name → chain. The kernel holds the current table and swaps
 * it atomically on reload; a request keeps the chain it looked up at its first message,
 * so in-flight requests finish on the configuration they started with. A table that was
 * swapped out closes its policy instances once the last request using it has finished.
 */
import { getLogger } from "@logtape/logtape";
import type { EngineConfig } from "../config/types.ts";
import { Chain } from "../chain/chain.ts";
import type { RouteInfo } from "../sdk/context.ts";
import { type UnmatchedAction, UnmatchedRoutes } from "./unmatched.ts";

const log = getLogger(["tollgate", "kernel"]);

/** How long a closing auditing policy's queued records may take to be written. */
const AUDIT_DRAIN_MS = 2000;

/** What a policy instance (inline or auditing) may release when its chain is dropped. */
interface Releasable {
  close?(): unknown;
  [Symbol.asyncDispose]?(): unknown;
}

/** How a policy instance releases what it holds: `[Symbol.asyncDispose]()`, else `close()`. */
function disposer(policy: Releasable): (() => unknown) | undefined {
  const dispose = policy[Symbol.asyncDispose];
  if (typeof dispose === "function") return () => dispose.call(policy);
  return policy.close && (() => policy.close!());
}

/**
 * Releases every policy instance of `chains` (`[Symbol.asyncDispose]()` or `close()`; an
 * auditing policy's once its queue is empty, or after AUDIT_DRAIN_MS); failures are logged,
 * never thrown.
 */
export async function closeChains(chains: Iterable<Chain>): Promise<void> {
  const closing: Promise<void>[] = [];
  const close = (chain: Chain, label: string, before: Promise<void>, policy: Releasable) => {
    const dispose = disposer(policy);
    if (!dispose) return;
    closing.push(
      before.then(dispose).then(() => {}, (error) => {
        log.error("policy {policy} of route {route} failed to close: {error}", {
          policy: label,
          route: chain.route.name,
          error: error instanceof Error ? error.message : String(error),
        });
      }),
    );
  };
  for (const chain of chains) {
    for (const entry of chain.entries) close(chain, entry.label, Promise.resolve(), entry.policy);
    for (const audit of chain.audits) {
      close(chain, audit.label, audit.queue.drain(AUDIT_DRAIN_MS), audit.policy);
    }
  }
  await Promise.all(closing);
}

export class RouteTable {
  #users = 0;
  #retired = false;
  #closing = false;
  readonly #closed = Promise.withResolvers<void>();

  constructor(
    readonly config: EngineConfig,
    readonly chains: ReadonlyMap<string, Chain>,
    /** Run for requests whose route has no chain (`defaultPolicies`); undefined when none. */
    readonly defaultChain: Chain | undefined = undefined,
  ) {}

  /** Every chain of the table, the default chain included. */
  *allChains(): IterableIterator<Chain> {
    yield* this.chains.values();
    if (this.defaultChain) yield this.defaultChain;
  }

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
    closeChains(this.allChains()).then(this.#closed.resolve);
  }
}

/** What a request's route name resolves to in the current table. */
export interface Resolution {
  readonly table: RouteTable;
  /** The chain to run; undefined passes the request through (or denies it, see `unmatched`). */
  readonly chain: Chain | undefined;
  /** Set when the route has no chain of its own: what is done instead. */
  readonly unmatched?: UnmatchedAction;
}

/** The engine limits an exchange runs under: those of the table it is bound to. */
export type ExchangeLimits = EngineConfig["limits"];

/**
 * Which chain serves one exchange, under which route name and limits. A binding that runs
 * policies holds its table until {@link Binding.release}, so a reload closes the old
 * policies only once the exchange has finished with them.
 */
export interface Binding {
  /** The chain to run: {@link PASS_THROUGH_CHAIN} when nothing runs. */
  readonly chain: Chain;
  /**
   * The chain the route resolved to even when nothing runs (an empty or all-disabled one):
   * what metrics count the exchange under, and whose disabled policies the trace lists.
   */
  readonly resolved: Chain | undefined;
  /** The route the chain's policies see (for the default chain: the name Envoy sent). */
  readonly route: RouteInfo;
  readonly limits: ExchangeLimits;
  /** Set when the route has no chain of its own: what is done instead. */
  readonly unmatched?: UnmatchedAction;
  /** The exchange has ended. Idempotent. */
  release(): void;
}

/** A chain without policies: every phase passes through. */
export const PASS_THROUGH_CHAIN: Chain = new Chain({ name: "" }, []);

const noRelease = () => {};

function passThrough(
  table: RouteTable,
  unmatched: UnmatchedAction | undefined,
  resolved: Chain | undefined,
): Binding {
  return {
    chain: PASS_THROUGH_CHAIN,
    resolved,
    route: PASS_THROUGH_CHAIN.route,
    limits: table.config.limits,
    unmatched,
    release: noRelease,
  };
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

  /**
   * Binds an exchange to the chain serving its route (undefined: Envoy sent no name). The
   * binding keeps its table's configuration for the exchange's whole life.
   */
  bind(routeName: string | undefined): Binding {
    const { table, chain, unmatched } = this.resolve(routeName);
    if (unmatched === "deny" || !chain || chain.isEmpty) return passThrough(table, unmatched, chain);
    table.acquire();
    let held = true;
    return {
      chain,
      resolved: chain,
      route: unmatched ? { name: routeName ?? "" } : chain.route,
      limits: table.config.limits,
      unmatched,
      release: () => {
        if (!held) return;
        held = false;
        table.release();
      },
    };
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
