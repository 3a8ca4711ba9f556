/**
 * The Python runtime as the control plane sees it: the supervised executor and the client
 * the supervisor health-checks it with. Started only when the build has Python policies.
 * The data-plane workers call the executor on clients of their own (src/dataplane/python.ts).
 */
import type { EngineConfig } from "../config/types.ts";
import { type ClientObserver, ExecutorClient } from "./client.ts";
import { ExecutorStartError, PythonSupervisor, type SupervisorObserver } from "./supervisor.ts";

/** Largest message on the executor stream: a buffered body plus headers and framing. */
export const messageLimit = (config: EngineConfig): number =>
  Math.max(4 * 1024 * 1024, 2 * config.limits.maxBodyBytes + 1024 * 1024);

export class PythonRuntime {
  private constructor(private readonly supervisor: PythonSupervisor) {}

  /**
   * Starts the executor and waits until it is ready (throws ExecutorStartError if it is not).
   * `onNewExecutor` hears of every executor becoming healthy (`replaced`: a recycled one's
   * successor; the old one is stopped once the promise it returns settles).
   */
  static async start(
    config: EngineConfig,
    registryFile: string,
    observer?: ClientObserver & SupervisorObserver,
    onNewExecutor?: (replaced: boolean) => Promise<void> | void,
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
      onNewExecutor,
    });
    try {
      await supervisor.start();
    } catch (error) {
      supervisor.client.close();
      throw error;
    }
    return new PythonRuntime(supervisor);
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
