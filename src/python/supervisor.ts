/**
 * Runs the Python executor as a child process (`<interpreter> -m executor`) and keeps it
 * alive: the engine waits for it to be healthy before serving, health-checks it while
 * serving, and restarts it in place with exponential backoff when it exits, stops
 * answering, or has every worker held by a policy call past its deadline. Requests needing
 * Python meanwhile fail fast (their policy's failure rule applies) and traffic recovers by
 * itself once the executor is back. The executor's output is re-logged by ./output.ts.
 *
 * An executor over `python.maxMemory` or past `python.maxCallsPerProcess` is recycled
 * without failing a call: a successor takes over the socket path (it binds beside it and
 * renames its socket onto it), new calls go to it over a connection of their own, and the
 * old executor is stopped once the calls it still runs have been answered.
 */
import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import type { PythonConfig } from "../config/types.ts";
import { removeSocketFile } from "../transport/unix_socket.ts";
import type { HealthCheckResponse } from "../gen/proto/tollgate/executor/v1/executor_pb.ts";
import type { ExecutorClient } from "./client.ts";
import { executorEnvironment } from "./environment.ts";
import { relogExecutorOutput } from "./output.ts";

const log = getLogger(["tollgate", "python", "supervisor"]);

export type ExecutorState = "starting" | "healthy" | "restarting" | "stopped";

export interface SupervisorObserver {
  executorRestarted(): void;
  executorState(state: ExecutorState): void;
  /** From each health check: worker threads still running a call past its deadline. */
  executorOverdueWorkers(count: number): void;
}

export interface SupervisorOptions {
  readonly python: PythonConfig;
  /** The generated Python registry, relative to python.home. */
  readonly registryFile: string;
  readonly logLevel: string;
  readonly maxMessageBytes: number;
  /** A new client of the executor's socket (one per executor process, for recycling). */
  readonly connect: () => ExecutorClient;
  readonly observer?: SupervisorObserver;
  /**
   * Told when an executor becomes healthy. With `replaced` (a recycled one's successor took
   * over), the promise it returns settles once calls sent to the old one by other clients
   * (the data-plane workers') are answered: only then is the old executor stopped.
   */
  readonly onNewExecutor?: (replaced: boolean) => Promise<void> | void;
  /** Told when the executor stops being healthy (so other clients stop choosing it). */
  readonly onUnhealthy?: () => void;
  /** How long a start may take to become healthy (default 20 s). */
  readonly startTimeoutMs?: number;
  /**
   * Health check period while serving (default 2 s). Three failures in a row (no answer, not
   * ready, or every worker stuck past a call's deadline) restart the executor.
   */
  readonly healthIntervalMs?: number;
}

const HEALTH_TIMEOUT_MS = 1000;
const FAILURES_BEFORE_RESTART = 3;
const MIN_RESTART_DELAY_MS = 200;
const MAX_RESTART_DELAY_MS = 5000;
/** A run this long counts as stable: the restart backoff starts over. */
const STABLE_AFTER_MS = 30_000;

const mib = (bytes: number | bigint) => Math.round(Number(bytes) / 1024 / 1024);

/** SIGTERM (the executor drains its calls), then SIGKILL after `graceMs`. */
async function stopChild(child: Deno.ChildProcess, graceMs: number): Promise<void> {
  const signal = (name: Deno.Signal) => {
    try {
      child.kill(name);
    } catch {
      // already gone
    }
  };
  signal("SIGTERM");
  const timer = setTimeout(() => signal("SIGKILL"), graceMs);
  await child.status;
  clearTimeout(timer);
}

/** Thrown when the executor cannot be started at all. */
export class ExecutorStartError extends Error {
  override name = "ExecutorStartError";
}

export class PythonSupervisor {
  #child: Deno.ChildProcess | undefined;
  #client: ExecutorClient;
  #recycling = false;
  #warnedCapTooLow = false;
  /** A recycled executor still finishing its calls. */
  #retiring: Deno.ChildProcess | undefined;
  #state: ExecutorState = "stopped";
  #restartDelayMs = MIN_RESTART_DELAY_MS;
  #healthTimer: ReturnType<typeof setInterval> | undefined;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #stopping = false;
  #restarts = 0;
  /** Registry key → why it failed to load, as the running executor last reported. */
  #failedPolicies: ReadonlyMap<string, string> = new Map();

  constructor(private readonly options: SupervisorOptions) {
    this.#client = options.connect();
  }

  /** The client of the executor serving now; it changes when the executor is recycled. */
  get client(): ExecutorClient {
    return this.#client;
  }

  get state(): ExecutorState {
    return this.#state;
  }

  get restarts(): number {
    return this.#restarts;
  }

  /** Python policies the executor could not load (registry key → reason), as last reported. */
  get failedPolicies(): ReadonlyMap<string, string> {
    return this.#failedPolicies;
  }

  /** Records the policies a health answer says failed to load; logs a change once. */
  #noteFailedPolicies(reported: readonly string[]): void {
    // Each entry reads "name:vMAJOR: reason"; the key itself has no space.
    const failed = new Map(reported.map((entry) => {
      const at = entry.indexOf(": ");
      return at < 0 ? [entry, "failed to load"] : [entry.slice(0, at), entry.slice(at + 2)];
    }));
    const before = this.#failedPolicies;
    this.#failedPolicies = failed;
    for (const [key, reason] of failed) {
      if (before.get(key) !== reason) {
        log.error("Python policy {policy} failed to load: {reason}", { policy: key, reason });
      }
    }
  }

  /** The running executor's process id. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  #setState(state: ExecutorState): void {
    this.#state = state;
    this.options.observer?.executorState(state);
    if (state !== "healthy") this.options.onUnhealthy?.();
  }

  /** Starts the executor and resolves once it reports ready; throws if it cannot. */
  async start(): Promise<void> {
    this.#setState("starting");
    await this.#launch();
    this.#healthTimer = setInterval(() => this.#checkHealth(), this.options.healthIntervalMs ?? 2000);
  }

  #spawn(takeOver = false): Deno.ChildProcess {
    const { python } = this.options;
    const child = new Deno.Command(python.interpreter, {
      args: [
        "-m",
        "executor",
        "--socket",
        python.socket,
        "--workers",
        String(python.workers),
        "--registry",
        join(python.home, this.options.registryFile),
        "--policy-root",
        python.home,
        "--log-level",
        this.options.logLevel,
        "--max-message-bytes",
        String(this.options.maxMessageBytes),
        ...(takeOver ? ["--take-over"] : []),
      ],
      env: executorEnvironment(python.home),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    relogExecutorOutput(child.stderr, "stderr");
    relogExecutorOutput(child.stdout, "stdout");
    log.info("started the Python executor (pid {pid})", { pid: child.pid });
    return child;
  }

  /** Spawns and waits until healthy; on failure kills the child and throws. */
  async #launch(): Promise<void> {
    const child = this.#spawn();
    this.#child = child;
    const started = Date.now();
    await this.#untilHealthy(child, () => this.#client.health(HEALTH_TIMEOUT_MS));
    this.#setState("healthy");
    this.#client.reconnectNow();
    this.options.onNewExecutor?.(false);
    child.status.then((status) => this.#exited(child, status, started));
    log.info("Python executor ready after {ms}ms", { ms: Date.now() - started });
  }

  /**
   * Waits until `child` answers ready to `ask` (it, not another executor on the same path:
   * the answer carries its pid); on failure kills the child and throws.
   */
  async #untilHealthy(child: Deno.ChildProcess, ask: () => Promise<HealthCheckResponse>): Promise<void> {
    const started = Date.now();
    const deadline = started + (this.options.startTimeoutMs ?? 20_000);
    let exited: Deno.CommandStatus | undefined;
    child.status.then((status) => (exited = status));
    let lastError = "";
    while (Date.now() < deadline && !exited) {
      try {
        const health = await ask();
        if (health.ready && health.pid === child.pid) {
          this.#noteFailedPolicies(health.failedPolicies);
          return;
        }
        lastError = health.ready ? `another executor (pid ${health.pid}) answered` : "not ready";
      } catch (error) {
        lastError = (error as Error).message;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (!exited) {
      child.kill("SIGKILL");
      await child.status;
    }
    throw new ExecutorStartError(
      exited
        ? `the Python executor exited with code ${exited.code} while starting`
        : `the Python executor was not ready within ${deadline - started}ms (${lastError})`,
    );
  }

  /** Why the healthy executor should be recycled now, if it should. */
  #recycleReason(health: HealthCheckResponse): string | undefined {
    const { maxMemoryBytes, maxCallsPerProcess } = this.options.python;
    if (maxMemoryBytes !== undefined && Number(health.rssBytes) > maxMemoryBytes) {
      // Over the cap before any call: a successor would be too, and recycling would never end.
      if (health.callsServed === 0n) {
        if (!this.#warnedCapTooLow) {
          this.#warnedCapTooLow = true;
          log.warn(
            "python.maxMemory ({cap} MiB) is below the idle executor's memory ({rss} MiB); not recycling",
            {
              cap: mib(maxMemoryBytes),
              rss: mib(health.rssBytes),
            },
          );
        }
        return undefined;
      }
      return `its memory (${mib(health.rssBytes)} MiB resident) is over python.maxMemory (${
        mib(maxMemoryBytes)
      } MiB)`;
    }
    if (maxCallsPerProcess !== undefined && Number(health.callsServed) >= maxCallsPerProcess) {
      return `it served ${health.callsServed} calls (python.maxCallsPerProcess: ${maxCallsPerProcess})`;
    }
    return undefined;
  }

  /** A client connected to `child`, a successor taking over the socket path, once it is healthy. */
  async #successorClient(child: Deno.ChildProcess): Promise<ExecutorClient> {
    const attempt: { client?: ExecutorClient } = {};
    try {
      // Each try on a new connection: until the successor owns the path, one reaches the old executor.
      await this.#untilHealthy(child, () => {
        attempt.client?.close();
        attempt.client = this.options.connect();
        return attempt.client.health(HEALTH_TIMEOUT_MS);
      });
    } catch (error) {
      attempt.client?.close();
      throw error;
    }
    return attempt.client!;
  }

  /**
   * Replaces the healthy executor without failing a call: starts a successor that takes over
   * the socket path, switches new calls to it, then stops the old one once its calls are
   * answered. If the successor cannot start, the old executor keeps serving.
   */
  async #recycle(reason: string): Promise<void> {
    const old = this.#child!;
    const oldClient = this.#client;
    this.#recycling = true;
    log.info("recycling the Python executor (pid {pid}): {reason}", { pid: old.pid, reason });
    try {
      const child = this.#spawn(true);
      const started = Date.now();
      const client = await this.#successorClient(child);
      if (this.#stopping) {
        client.close();
        child.kill("SIGTERM");
        return;
      }
      this.#child = child;
      this.#client = client;
      const elsewhere = this.options.onNewExecutor?.(true);
      this.#restarts++;
      this.options.observer?.executorRestarted();
      child.status.then((status) => this.#exited(child, status, started));
      log.info("the Python executor (pid {pid}) replaced pid {old} after {ms}ms; draining the old one", {
        pid: child.pid,
        old: old.pid,
        ms: Date.now() - started,
      });
      // Calls already sent to the old executor end by their deadline at the latest.
      this.#retiring = old;
      await oldClient.drained();
      await elsewhere;
      oldClient.close();
      await stopChild(old, this.options.python.timeoutMs);
      this.#retiring = undefined;
    } catch (error) {
      log.error("recycling the Python executor failed; it keeps serving: {error}", {
        error: (error as Error).message,
      });
    } finally {
      this.#recycling = false;
    }
  }

  #exited(child: Deno.ChildProcess, status: Deno.CommandStatus, started: number): void {
    if (this.#stopping || child !== this.#child) return;
    if (Date.now() - started > STABLE_AFTER_MS) this.#restartDelayMs = MIN_RESTART_DELAY_MS;
    log.error("the Python executor exited (code {code}, signal {signal}); restarting in {delay}ms", {
      code: status.code,
      signal: status.signal,
      delay: this.#restartDelayMs,
    });
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    this.#setState("restarting");
    const delay = this.#restartDelayMs;
    this.#restartDelayMs = Math.min(this.#restartDelayMs * 2, MAX_RESTART_DELAY_MS);
    this.#restartTimer = setTimeout(async () => {
      if (this.#stopping) return;
      this.#restarts++;
      this.options.observer?.executorRestarted();
      try {
        await this.#launch();
      } catch (error) {
        log.error("Python executor restart failed: {error}", { error: (error as Error).message });
        if (!this.#stopping) this.#scheduleRestart();
      }
    }, delay);
  }

  #failures = 0;
  async #checkHealth(): Promise<void> {
    if (this.#state !== "healthy" || this.#stopping || this.#recycling) return;
    const problem = await this.#healthProblem();
    this.#failures = problem ? this.#failures + 1 : 0;
    if (this.#failures >= FAILURES_BEFORE_RESTART && this.#state === "healthy") {
      this.#failures = 0;
      log.error("the Python executor failed {n} health checks in a row ({problem}); killing it", {
        n: FAILURES_BEFORE_RESTART,
        problem,
      });
      this.#child?.kill("SIGKILL"); // #exited restarts it
    }
  }

  /** Why the running executor is unhealthy, or undefined if it is fine (then maybe recycles it). */
  async #healthProblem(): Promise<string | undefined> {
    try {
      const health = await this.#client.health(HEALTH_TIMEOUT_MS);
      this.options.observer?.executorOverdueWorkers(health.overdueWorkers);
      if (!health.ready) return "not ready";
      this.#noteFailedPolicies(health.failedPolicies);
      // Python cannot interrupt a policy that never returns; with every worker held by one,
      // the executor still answers health checks but can run nothing.
      if (health.workers > 0 && health.overdueWorkers >= health.workers) {
        return `all ${health.workers} workers stuck in calls past their deadline`;
      }
      const recycle = this.#recycleReason(health);
      if (recycle) this.#recycle(recycle);
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  }

  /**
   * Stops the executor: closes the client (nothing is left to send after the server
   * drained), then SIGTERM, then SIGKILL after `graceMs`; removes its socket.
   */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#healthTimer);
    clearTimeout(this.#restartTimer);
    this.#client.close();
    const children = [this.#child, this.#retiring].filter((c): c is Deno.ChildProcess => c !== undefined);
    await Promise.all(children.map((child) => stopChild(child, graceMs)));
    await removeSocketFile(this.options.python.socket);
    this.#setState("stopped");
  }
}
