/**
 * Runs the Python executor as a child process (`<interpreter> -m executor`) and keeps it
 * alive: the engine waits for it to be healthy before serving, health-checks it while
 * serving, and restarts it in place with exponential backoff when it exits, stops
 * answering, or has every worker held by a policy call past its deadline. Requests needing
 * Python meanwhile fail fast (their policy's failure rule applies) and traffic recovers by
 * itself once the executor is back. The executor's output is re-logged by ./output.ts.
 */
import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import type { PythonConfig } from "../config/types.ts";
import { removeSocketFile } from "../transport/unix_socket.ts";
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
  readonly client: ExecutorClient;
  readonly observer?: SupervisorObserver;
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

/** Thrown when the executor cannot be started at all. */
export class ExecutorStartError extends Error {
  override name = "ExecutorStartError";
}

export class PythonSupervisor {
  #child: Deno.ChildProcess | undefined;
  #state: ExecutorState = "stopped";
  #restartDelayMs = MIN_RESTART_DELAY_MS;
  #healthTimer: ReturnType<typeof setInterval> | undefined;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #stopping = false;
  #restarts = 0;
  /** Registry key → why it failed to load, as the running executor last reported. */
  #failedPolicies: ReadonlyMap<string, string> = new Map();

  constructor(private readonly options: SupervisorOptions) {}

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
  }

  /** Starts the executor and resolves once it reports ready; throws if it cannot. */
  async start(): Promise<void> {
    this.#setState("starting");
    await this.#launch();
    this.#healthTimer = setInterval(() => this.#checkHealth(), this.options.healthIntervalMs ?? 2000);
  }

  #spawn(): Deno.ChildProcess {
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
    const deadline = started + (this.options.startTimeoutMs ?? 20_000);
    let exited: Deno.CommandStatus | undefined;
    child.status.then((status) => (exited = status));
    let lastError = "";
    while (Date.now() < deadline && !exited) {
      try {
        const health = await this.options.client.health(HEALTH_TIMEOUT_MS);
        if (health.ready) {
          this.#noteFailedPolicies(health.failedPolicies);
          this.#setState("healthy");
          this.options.client.reconnectNow();
          child.status.then((status) => this.#exited(child, status, started));
          log.info("Python executor ready after {ms}ms", { ms: Date.now() - started });
          return;
        }
        lastError = "not ready";
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
    if (this.#state !== "healthy" || this.#stopping) return;
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

  /** Why the running executor is unhealthy, or undefined if it is fine. */
  async #healthProblem(): Promise<string | undefined> {
    try {
      const health = await this.options.client.health(HEALTH_TIMEOUT_MS);
      this.options.observer?.executorOverdueWorkers(health.overdueWorkers);
      if (!health.ready) return "not ready";
      this.#noteFailedPolicies(health.failedPolicies);
      // Python cannot interrupt a policy that never returns; with every worker held by one,
      // the executor still answers health checks but can run nothing.
      if (health.workers > 0 && health.overdueWorkers >= health.workers) {
        return `all ${health.workers} workers stuck in calls past their deadline`;
      }
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  }

  /** Stops the executor: SIGTERM, then SIGKILL after `graceMs`; removes its socket. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#healthTimer);
    clearTimeout(this.#restartTimer);
    const child = this.#child;
    if (child) {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // already gone
        }
      }, graceMs);
      await child.status;
      clearTimeout(timer);
    }
    await removeSocketFile(this.options.python.socket);
    this.#setState("stopped");
  }
}
