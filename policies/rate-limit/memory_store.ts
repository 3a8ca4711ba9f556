/**
 * The `memory` store: counters of one policy instance in this engine process. Memory is
 * bounded: past `maxEntries` keys, the least recently used key is dropped (an idle key's
 * state is the same as no state, so dropping it changes nothing; dropping a busy one
 * forgets its count, which errs on the side of letting requests pass).
 */
import { type Algorithm, decide, type Decision, type LimitState } from "./algorithms.ts";
import type { Limit } from "./limits.ts";

/** Where decisions are made and counts kept (memory here, Redis in redis_store.ts). */
export interface LimitStore {
  /** Decides and counts one request for `key`; rejects with {@link StoreUnavailable} when it cannot. */
  take(key: string): Promise<Decision>;
  close(): Promise<void>;
}

/** The store could not be reached in time: the policy's `failOpen` decides what happens. */
export class StoreUnavailable extends Error {
  override name = "StoreUnavailable";
}

export class MemoryStore implements LimitStore {
  readonly #entries = new Map<string, LimitState[]>();

  constructor(
    private readonly algorithm: Algorithm,
    private readonly limits: readonly Limit[],
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Keys currently held (for tests of the bound). */
  get size(): number {
    return this.#entries.size;
  }

  take(key: string): Promise<Decision> {
    return Promise.resolve(this.takeNow(key));
  }

  /** The synchronous decision (the memory store never waits). */
  takeNow(key: string): Decision {
    const previous = this.#entries.get(key);
    const { decision, states } = decide(this.algorithm, this.limits, previous ?? [], this.now());
    // Re-inserting moves the key to the end: Map order is least recently used first.
    if (previous) this.#entries.delete(key);
    else if (this.#entries.size >= this.maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#entries.set(key, states);
    return decision;
  }

  close(): Promise<void> {
    this.#entries.clear();
    return Promise.resolve();
  }
}
