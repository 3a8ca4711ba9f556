/**
 * A worker's side of the Python hop: its own client of the executor's socket and the bridge
 * turning Python policies into chain entries. The control plane supervises the executor and
 * tells the worker when a new one is healthy or a recycled one's successor took over.
 */
import type { EngineConfig } from "../config/types.ts";
import { type ClientObserver, ExecutorClient } from "../python/client.ts";
import { PythonBridge } from "../python/bridge.ts";
import { messageLimit } from "../python/runtime.ts";
import type { RegisteredPolicy } from "../registry/registry.ts";
import type { PolicyFactory } from "../sdk/policy.ts";

export class WorkerPython {
  #client: ExecutorClient;
  readonly #bridge: PythonBridge;
  /** Registry key → why the executor failed to load it, as of the last build. */
  failed: ReadonlyMap<string, string> = new Map();

  constructor(private readonly config: EngineConfig, private readonly observer: ClientObserver) {
    this.#client = this.#connect();
    this.#bridge = new PythonBridge(() => this.#client, config.python.timeoutMs);
  }

  #connect(): ExecutorClient {
    return new ExecutorClient({
      socket: this.config.python.socket,
      maxInFlight: this.config.python.maxInFlight,
      maxMessageBytes: messageLimit(this.config),
      observer: this.observer,
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

  /** The executor is healthy again: retry at once. */
  ready(): void {
    this.#client.reconnectNow();
  }

  /**
   * A successor owns the socket: new calls go to it on a new connection; the old one is
   * closed once every call on it is answered (by its deadline at the latest).
   */
  async replaced(): Promise<void> {
    const old = this.#client;
    this.#client = this.#connect();
    await old.drained();
    old.close();
  }

  close(): void {
    this.#client.close();
  }
}
