/**
 * The Python runtime as the engine sees it: the supervised executor, the client holding the
 * stream to it, and the bridge that turns Python policies into chain entries. Started only
 * when the build has Python policies.
 */
import type { EngineConfig } from "../config/types.ts";
import type { RegisteredPolicy } from "../registry/registry.ts";
import type { PolicyFactory } from "../sdk/policy.ts";
import { type ClientObserver, ExecutorClient } from "./client.ts";
import { PythonBridge } from "./bridge.ts";
import { ExecutorStartError, PythonSupervisor, type SupervisorObserver } from "./supervisor.ts";

/** Largest message on the executor stream: a buffered body plus headers and framing. */
const messageLimit = (config: EngineConfig) =>
  Math.max(4 * 1024 * 1024, 2 * config.limits.maxBodyBytes + 1024 * 1024);

export class PythonRuntime {
  private constructor(
    private readonly bridge: PythonBridge,
    private readonly supervisor: PythonSupervisor,
  ) {}

  /** Starts the executor and waits until it is ready (throws ExecutorStartError if it is not). */
  static async start(
    config: EngineConfig,
    registryFile: string,
    observer?: ClientObserver & SupervisorObserver,
  ): Promise<PythonRuntime> {
    if (!config.python.home) {
      throw new ExecutorStartError(
        "python.home is not set: set it (or TOLLGATE_PYTHON_HOME) to the directory holding python/ and src/gen/python/",
      );
    }
    const maxMessageBytes = messageLimit(config);
    const supervisor = new PythonSupervisor({
      python: config.python,
      registryFile,
      logLevel: config.log.level,
      maxMessageBytes,
      connect: () =>
        new ExecutorClient({
          socket: config.python.socket,
          maxInFlight: config.python.maxInFlight,
          maxMessageBytes,
          observer,
        }),
      observer,
    });
    try {
      await supervisor.start();
    } catch (error) {
      supervisor.client.close();
      throw error;
    }
    const bridge = new PythonBridge(() => supervisor.client, config.python.timeoutMs);
    return new PythonRuntime(bridge, supervisor);
  }

  /**
   * The factory of a registered Python policy. It refuses a policy the executor failed to
   * load, so a chain using one is rejected when it is built (at startup or reload).
   */
  factoryFor(policy: RegisteredPolicy): PolicyFactory {
    const factory = this.bridge.factoryFor(policy);
    return (metadata, params) => {
      const reason = this.supervisor.failedPolicies.get(policy.key);
      if (reason !== undefined) throw new Error(`the Python executor failed to load it: ${reason}`);
      return factory(metadata, params);
    };
  }

  /** Python policies the executor failed to load (registry key → reason). */
  get failedPolicies(): ReadonlyMap<string, string> {
    return this.supervisor.failedPolicies;
  }

  /** Why the runtime cannot serve all its policies right now (empty when it can). */
  unreadyReasons(): string[] {
    const state = this.supervisor.state;
    return [
      ...(state === "healthy" ? [] : [`python executor ${state}`]),
      ...[...this.failedPolicies].map(([key, reason]) => `python policy ${key} failed to load: ${reason}`),
    ];
  }

  /**
   * Stops the executor after in-flight calls had their chance (call after the server
   * drained). The client closes its connection first: there is nothing left to send, and
   * the executor going away under an open connection only causes reconnect attempts.
   */
  async stop(graceMs: number): Promise<void> {
    await this.supervisor.stop(graceMs);
  }
}
