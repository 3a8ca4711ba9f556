/**
 * A worker's side of the Python hop: its own client of every executor process's socket and
 * the bridge turning Python policies into chain entries, each call going to the healthy
 * process with the fewest calls in flight. The control plane supervises the executors and
 * tells the worker when one becomes healthy, stops being healthy, or a recycled one's
 * successor took over.
 */
import { pythonSockets } from "../config/python_sockets.ts";
import type { EngineConfig } from "../config/types.ts";
import { type ClientObserver, ExecutorClient } from "../python/client.ts";
import { type BatchObserver, PythonBridge } from "../python/bridge.ts";
import { combinedObserver, leastBusy } from "../python/processes.ts";
import { messageLimit } from "../python/runtime.ts";
import type { SupervisorObserver } from "../python/supervisor.ts";
import type { RegisteredPolicy } from "../registry/registry.ts";
import type { PolicyFactory } from "../sdk/policy.ts";

export class WorkerPython {
  readonly #sockets: string[];
  readonly #clients: ExecutorClient[];
  readonly #healthy: boolean[];
  readonly #observerOf: (index: number) => ClientObserver | undefined;
  readonly #bridge: PythonBridge;
  /** Registry key → why the executor failed to load it, as of the last build. */
  failed: ReadonlyMap<string, string> = new Map();

  /** `healthy`: which processes the control plane saw healthy when this worker started. */
  constructor(
    private readonly config: EngineConfig,
    observer: ClientObserver & SupervisorObserver & BatchObserver,
    healthy: readonly boolean[],
  ) {
    this.#sockets = pythonSockets(config.python.socket, config.python.processes);
    // The in-flight gauge sums this worker's clients of every process.
    this.#observerOf = combinedObserver(observer, this.#sockets.length);
    this.#clients = this.#sockets.map((_, i) => this.#connect(i));
    this.#healthy = this.#sockets.map((_, i) => healthy[i] ?? false);
    this.#bridge = new PythonBridge(
      () => leastBusy(this.#clients, this.#healthy),
      config.python.timeoutMs,
      observer,
    );
  }

  #connect(index: number): ExecutorClient {
    return new ExecutorClient({
      socket: this.#sockets[index],
      maxInFlight: this.config.python.maxInFlight,
      maxMessageBytes: messageLimit(this.config),
      observer: this.#observerOf(index),
    });
  }

  /**
   * The factory of a registered Python policy. It refuses a policy the executor failed to
   * load, so a chain using one is rejected when it is built (at startup or reload).
   */
  factoryFor(policy: RegisteredPolicy): PolicyFactory {
    const factory = this.#bridge.factoryFor(policy);
    return (metadata, params) => {
      const reason = this.failed.get(policy.key);
      if (reason !== undefined) throw new Error(`the Python executor failed to load it: ${reason}`);
      return factory(metadata, params);
    };
  }

  /** Process `index` is healthy again: choose it again, and retry at once. */
  ready(index: number): void {
    this.#healthy[index] = true;
    this.#clients[index]?.reconnectNow();
  }

  /** Process `index` is not healthy: calls go to the others while any is. */
  down(index: number): void {
    this.#healthy[index] = false;
  }

  /**
   * A successor owns process `index`'s socket: new calls go to it on a new connection; the
   * old one is closed once every call on it is answered (by its deadline at the latest).
   */
  async replaced(index: number): Promise<void> {
    const old = this.#clients[index];
    if (!old) return;
    this.#clients[index] = this.#connect(index);
    await old.drained();
    old.close();
  }

  close(): void {
    for (const client of this.#clients) client.close();
  }
}
