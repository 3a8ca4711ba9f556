/**
 * The Python runtime as the engine sees it: the supervised executor processes, the clients
 * holding a connection to each, and the bridge that turns Python policies into chain
 * entries. Started only when the build has Python policies.
 */
import type { EngineConfig } from "../config/types.ts";
import type { RegisteredPolicy } from "../registry/registry.ts";
import type { PolicyFactory } from "../sdk/policy.ts";
import { type ClientObserver, ExecutorClient } from "./client.ts";
import { PythonBridge } from "./bridge.ts";
import { combinedObserver, ExecutorProcesses } from "./processes.ts";
import { ExecutorStartError, PythonSupervisor, type SupervisorObserver } from "./supervisor.ts";
import { pythonSockets } from "../config/python_sockets.ts";

/** Largest message on the executor stream: a buffered body plus headers and framing. */
const messageLimit = (config: EngineConfig) =>
  Math.max(4 * 1024 * 1024, 2 * config.limits.maxBodyBytes + 1024 * 1024);

export class PythonRuntime {
  private constructor(
    private readonly bridge: PythonBridge,
    private readonly processes: ExecutorProcesses,
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
    const observerOf = combinedObserver(observer, config.python.processes);
    const processes = new ExecutorProcesses(
      pythonSockets(config.python.socket, config.python.processes).map((socket, i) =>
        new PythonSupervisor({
          python: { ...config.python, socket },
          registryFile,
          logLevel: config.log.level,
          maxMessageBytes,
          connect: () =>
            new ExecutorClient({
              socket,
              maxInFlight: config.python.maxInFlight,
              maxMessageBytes,
              observer: observerOf(i),
            }),
          observer: observerOf(i),
        })
      ),
    );
    await processes.start();
    const bridge = new PythonBridge(() => processes.pick(), config.python.timeoutMs);
    return new PythonRuntime(bridge, processes);
  }

  /**
   * The factory of a registered Python policy. It refuses a policy the executor failed to
   * load, so a chain using one is rejected when it is built (at startup or reload).
   */
  factoryFor(policy: RegisteredPolicy): PolicyFactory {
    const factory = this.bridge.factoryFor(policy);
    return (metadata, params) => {
      const reason = this.processes.failedPolicies.get(policy.key);
      if (reason !== undefined) throw new Error(`the Python executor failed to load it: ${reason}`);
      return factory(metadata, params);
    };
  }

  /** Python policies the executor failed to load (registry key → reason). */
  get failedPolicies(): ReadonlyMap<string, string> {
    return this.processes.failedPolicies;
  }

  /** Why the runtime cannot serve all its policies right now (empty when it can). */
  unreadyReasons(): string[] {
    return [
      ...this.processes.unhealthy(),
      ...[...this.failedPolicies].map(([key, reason]) => `python policy ${key} failed to load: ${reason}`),
    ];
  }

  /**
   * Stops the executor after in-flight calls had their chance (call after the server
   * drained). The client closes its connection first: there is nothing left to send, and
   * the executor going away under an open connection only causes reconnect attempts.
   */
  async stop(graceMs: number): Promise<void> {
    await this.processes.stop(graceMs);
  }
}
