/**
 * The Python runtime as the control plane sees it: the supervised executor processes and
 * the clients their supervisors health-check them with. Started only when the build has
 * Python policies. The data-plane workers call the executors on clients of their own
 * (src/dataplane/python.ts), told by `ExecutorListener` which process is healthy.
 */
import type { EngineConfig } from "../config/types.ts";
import { type ClientObserver, ExecutorClient } from "./client.ts";
import { combinedObserver, ExecutorProcesses } from "./processes.ts";
import { ExecutorStartError, PythonSupervisor, type SupervisorObserver } from "./supervisor.ts";
import { pythonSockets } from "../config/python_sockets.ts";

/** Largest message on the executor stream: a buffered body plus headers and framing. */
export const messageLimit = (config: EngineConfig): number =>
  Math.max(4 * 1024 * 1024, 2 * config.limits.maxBodyBytes + 1024 * 1024);

/** Hears of each executor process (`index` among python.processes) changing hands or health. */
export interface ExecutorListener {
  /**
   * Process `index` became healthy (`replaced`: a recycled one's successor took over; the
   * old one is stopped once the promise returned settles).
   */
  newExecutor(index: number, replaced: boolean): Promise<void> | void;
  /** Process `index` stopped being healthy (it crashed, is restarting or stopped). */
  unhealthy(index: number): void;
}

export class PythonRuntime {
  private constructor(private readonly processes: ExecutorProcesses) {}

  /** Starts the executors and waits until they are ready (throws ExecutorStartError if one is not). */
  static async start(
    config: EngineConfig,
    registryFile: string,
    observer?: ClientObserver & SupervisorObserver,
    listener?: ExecutorListener,
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
          onNewExecutor: listener && ((replaced) => listener.newExecutor(i, replaced)),
          onUnhealthy: listener && (() => listener.unhealthy(i)),
        })
      ),
    );
    await processes.start();
    return new PythonRuntime(processes);
  }

  /** Python policies the executor failed to load (registry key → reason). */
  get failedPolicies(): ReadonlyMap<string, string> {
    return this.processes.failedPolicies;
  }

  /** Which executor processes are healthy now, by index. */
  healthy(): boolean[] {
    return this.processes.supervisors.map((supervisor) => supervisor.state === "healthy");
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
