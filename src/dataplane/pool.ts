/**
 * The control plane's handle on the data plane: the Deno Workers serving ext_proc. Each is
 * created with the narrowest permissions the process can give (no run, no FFI, no sys), so a
 * TypeScript policy can never start a process. A config reaches them all-or-nothing: every
 * worker builds it, and only when all succeeded does each swap it in. The watchdog replaces
 * a worker whose event loop stops beating (./liveness.ts).
 */
import { getLogger } from "@logtape/logtape";
import { ProblemsError } from "../config/problem.ts";
import type { ListenConfig } from "../config/types.ts";
import { removeSocketFile } from "../transport/unix_socket.ts";
import { livenessBuffer, LivenessReader } from "./liveness.ts";
import type {
  ConfigText,
  FailedPython,
  FromWorker,
  RoutesView,
  WorkerNotice,
  WorkerRequest,
  WorkerStatus,
} from "./messages.ts";
import type { QuarantinedPolicy } from "./failure_quarantine.ts";
import { Quarantine, QUARANTINE_MS, quarantineReason } from "./quarantine.ts";
import { combineRoutes } from "./routes_view.ts";

const log = getLogger(["tollgate", "dataplane"]);

/**
 * A worker may do what the process may, minus running programs, loading native code and
 * reading system information: the process's grants are already the layout's minimum
 * (its sockets, the executor's, the config's directory and the hosts and files policies
 * name; scripts/lib/permissions.ts).
 */
const WORKER_PERMISSIONS = {
  run: false,
  ffi: false,
  sys: false,
  read: "inherit",
  write: "inherit",
  net: "inherit",
  env: "inherit",
  import: "inherit",
} as const;

/** Extra time a stopping worker gets beyond the grace period before it is terminated. */
const STOP_SLACK_MS = 2000;
/** How long the admin endpoint waits for a worker's answer (a stuck one never answers; a busy one may be slow). */
const QUERY_TIMEOUT_MS = 5000;
/** Wait before retrying a replacement worker that failed to start. */
const RESTART_RETRY_MS = 1000;

function failure(error: Extract<FromWorker, { ok: false }>["error"]): Error {
  return error.problems
    ? new ProblemsError(error.summary ?? error.message, error.problems)
    : new Error(error.message);
}

class DataPlaneWorker {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, PromiseWithResolvers<unknown>>();
  #nextId = 1;
  readonly buffer = livenessBuffer();
  readonly liveness = new LivenessReader(this.buffer);
  /** Set once it serves: only then does the watchdog judge it. */
  watched?: { beats: number; since: number };

  constructor(readonly index: number) {
    this.#worker = new Worker(new URL("./worker.ts", import.meta.url).href, {
      type: "module",
      name: `tollgate-dataplane-${index}`,
      deno: { permissions: WORKER_PERMISSIONS },
    });
    this.#worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const reply = event.data;
      const waiting = this.#waiting.get(reply.id);
      this.#waiting.delete(reply.id);
      if (reply.ok) waiting?.resolve(reply.value);
      else waiting?.reject(failure(reply.error));
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      log.error("data-plane worker {index} failed: {error}", { index, error: event.message });
      this.#failAll(new Error(`data-plane worker ${index} failed: ${event.message}`));
    };
  }

  /** Sends `request`; with `timeoutMs`, gives up waiting after it (a stuck worker never answers). */
  ask<T>(request: WorkerRequest, timeoutMs?: number): Promise<T> {
    const id = this.#nextId++;
    const waiting = Promise.withResolvers<unknown>();
    this.#waiting.set(id, waiting);
    this.#worker.postMessage({ id, request });
    if (timeoutMs === undefined) return waiting.promise as Promise<T>;
    const timer = setTimeout(() => {
      this.#waiting.delete(id);
      waiting.reject(new Error("data-plane worker not answering"));
    }, timeoutMs);
    return waiting.promise.finally(() => clearTimeout(timer)) as Promise<T>;
  }

  tell(notice: WorkerNotice): void {
    this.#worker.postMessage(notice);
  }

  terminate(): void {
    this.#worker.terminate();
    this.#failAll(new Error(`data-plane worker ${this.index} terminated`));
  }

  #failAll(error: Error): void {
    for (const waiting of this.#waiting.values()) waiting.reject(error);
    this.#waiting.clear();
  }
}

export interface DataPlaneOptions {
  readonly workers: number;
  /** Each worker's listen config (workerListens). */
  readonly listens: readonly ListenConfig[];
  /** The module exporting `generatedPolicies` (the build's registry). */
  readonly registryModule: string;
  readonly config: ConfigText;
  /** A worker whose heartbeat stops this long is replaced. */
  readonly watchdogMs: number;
  readonly python: boolean;
  /** Python policies the executor failed to load, now. */
  readonly failedPython: () => FailedPython;
  /** Which executor processes are healthy now, by index. */
  readonly pythonHealthy: () => boolean[];
  readonly observer: WatchdogObserver;
}

/** Counts what the watchdog does, for metrics. */
export interface WatchdogObserver {
  workerReplaced(policy: string | undefined): void;
  policyQuarantined(policy: string): void;
}

export class DataPlane {
  readonly #workers: DataPlaneWorker[];
  readonly #quarantine = new Quarantine();
  #config: ConfigText;
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopping = false;

  private constructor(private readonly options: DataPlaneOptions) {
    this.#config = options.config;
    this.#workers = Array.from({ length: options.workers }, (_, index) => new DataPlaneWorker(index));
  }

  /** Starts every worker serving the config; if one fails, stops the others and throws its error. */
  static async start(options: DataPlaneOptions): Promise<DataPlane> {
    const plane = new DataPlane(options);
    const started = await Promise.allSettled(plane.#workers.map((worker) => plane.#start(worker)));
    const failed = started.find((result): result is PromiseRejectedResult => result.status === "rejected");
    if (failed) {
      await plane.stop(0);
      throw failed.reason;
    }
    const interval = Math.max(10, Math.min(250, Math.floor(options.watchdogMs / 4)));
    plane.#timer = setInterval(() => plane.#check(), interval);
    return plane;
  }

  async #start(worker: DataPlaneWorker): Promise<void> {
    await worker.ask({
      type: "start",
      index: worker.index,
      workers: this.options.workers,
      registryModule: this.options.registryModule,
      config: this.#config,
      python: this.options.python,
      failedPython: this.options.failedPython(),
      pythonHealthy: this.options.pythonHealthy(),
      liveness: worker.buffer,
      heartbeatMs: Math.max(5, Math.min(100, Math.floor(this.options.watchdogMs / 10))),
      quarantine: this.#quarantine.list(),
    });
    worker.watched = { beats: worker.liveness.beats, since: Date.now() };
  }

  /** The watchdog: a serving worker whose heartbeat has not moved for `watchdogMs` is replaced. */
  #check(): void {
    const now = Date.now();
    for (const worker of this.#workers) {
      const watched = worker.watched;
      if (!watched) continue;
      const beats = worker.liveness.beats;
      if (beats !== watched.beats) worker.watched = { beats, since: now };
      else if (now - watched.since > this.options.watchdogMs) this.#replace(worker, now - watched.since);
    }
  }

  #replace(stuck: DataPlaneWorker, stuckMs: number): void {
    stuck.watched = undefined;
    stuck.terminate();
    // Deno 2.9 cannot stop a thread that spins (denoland/deno#35657): its listener stays
    // open. Unlinked, its socket path takes no new connection; the replacement binds it anew.
    const listen = this.options.listens[stuck.index];
    if (listen.kind === "unix") {
      removeSocketFile(listen.socket).catch((error) =>
        log.error("cannot remove {socket}: {error}", { socket: listen.socket, error: String(error) })
      );
    }
    // The slot survives the worker: it names what held the event loop.
    const policy = stuck.liveness.policy;
    log.error(
      "data-plane worker {index} was stuck for {ms}ms running {policy}: terminated, replacing it " +
        "(Deno cannot stop its thread: it keeps a core busy until the engine restarts)",
      {
        index: stuck.index,
        ms: stuckMs,
        policy: policy ?? "(no policy)",
      },
    );
    this.options.observer.workerReplaced(policy);
    if (policy !== undefined && this.#quarantine.strike(policy)) {
      log.error("policy {policy} is quarantined: its chain entries fail under their onFailure rule", {
        policy,
      });
      this.options.observer.policyQuarantined(policy);
      this.tell({ type: "quarantine", list: this.#quarantine.list() });
      const lifted = setTimeout(() => {
        if (this.#quarantine.list().some(([label]) => label === policy)) return;
        log.info("policy {policy} left the watchdog quarantine: it runs again", { policy });
      }, QUARANTINE_MS + 1);
      Deno.unrefTimer(lifted);
    }
    if (!this.#stopping) this.#respawn(stuck.index);
  }

  #respawn(index: number): void {
    const fresh = new DataPlaneWorker(index);
    this.#workers[index] = fresh;
    this.#start(fresh).then(
      () => log.info("data-plane worker {index} replaced", { index }),
      (error) => {
        fresh.terminate();
        if (this.#stopping) return;
        log.error("replacement data-plane worker {index} failed to start: {error}; retrying", {
          index,
          error: String(error),
        });
        setTimeout(() => !this.#stopping && this.#respawn(index), RESTART_RETRY_MS);
      },
    );
  }

  /**
   * Builds `config` in every worker, then swaps it in everywhere, or nowhere if one build
   * failed (that failure is thrown). Returns what the new table drops of the old one's protection.
   */
  async reload(config: ConfigText): Promise<string[]> {
    const workers = [...this.#workers];
    const failedPython = this.options.failedPython();
    const built = await Promise.allSettled(
      workers.map((w) => w.ask({ type: "build", config, failedPython })),
    );
    const failed = built.find((result): result is PromiseRejectedResult => result.status === "rejected");
    if (failed) {
      await Promise.allSettled(workers.map((w) => w.ask({ type: "abort" })));
      throw failed.reason;
    }
    // A worker replaced from here on starts on the new config.
    this.#config = config;
    const dropped = await Promise.allSettled(workers.map((w) => w.ask<string[]>({ type: "commit" })));
    return dropped.find((d): d is PromiseFulfilledResult<string[]> => d.status === "fulfilled")?.value ?? [];
  }

  /** prom-client metric JSON of every worker serving (one being replaced is left out). */
  async metrics(): Promise<unknown[]> {
    const answers = await Promise.allSettled(
      this.#workers.map((w) => w.ask<unknown>({ type: "metrics" }, QUERY_TIMEOUT_MS)),
    );
    return answers.flatMap((a) => a.status === "fulfilled" ? [a.value] : []);
  }

  /** Why the data plane cannot serve (empty when every worker can), and the combined route view. */
  async status(): Promise<
    { unready: string[]; routes: RoutesView | undefined; quarantined: QuarantinedPolicy[] }
  > {
    const workers = [...this.#workers];
    const answers = await Promise.allSettled(
      workers.map((w) => w.ask<WorkerStatus>({ type: "status" }, QUERY_TIMEOUT_MS)),
    );
    const name = (index: number, reason: string) =>
      workers.length === 1 ? reason : `worker ${index}: ${reason}`;
    const unready = answers.flatMap((answer, index) =>
      answer.status === "fulfilled"
        ? answer.value.unready.map((reason) => name(index, reason))
        : [name(index, String((answer.reason as Error).message))]
    );
    const views = answers.flatMap((a) => a.status === "fulfilled" ? [a.value.routes] : []);
    // The watchdog's quarantine covers the policy on every route; each worker reports its failure quarantine.
    const quarantined = new Map<string, QuarantinedPolicy>(
      this.#quarantine.list().map(([policy, until]) => [policy, {
        policy,
        cause: "watchdog",
        until: new Date(until).toISOString(),
        reason: quarantineReason(new Map([[policy, until]]), policy) ?? "",
      }]),
    );
    for (const answer of answers) {
      if (answer.status !== "fulfilled") continue;
      for (const q of answer.value.quarantined) quarantined.set(`${q.route}\0${q.policy}`, q);
    }
    return {
      unready,
      routes: views.length > 0 ? combineRoutes(views) : undefined,
      quarantined: [...quarantined.values()],
    };
  }

  tell(notice: WorkerNotice): void {
    for (const worker of this.#workers) worker.tell(notice);
  }

  /**
   * Moves every worker to executor process `index`'s recycled successor; settles once their
   * old calls are answered.
   */
  async pythonReplaced(index: number): Promise<void> {
    await Promise.allSettled(this.#workers.map((w) => w.ask({ type: "python-replaced", index })));
  }

  /**
   * Each worker drains within the grace period; one that does not answer in time is
   * terminated. The watchdog keeps watching meanwhile (a stuck worker is terminated, not
   * replaced), so a spinning policy cannot hold the stop.
   */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#workers.map(async (worker) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs + STOP_SLACK_MS));
      await Promise.race([worker.ask({ type: "stop", graceMs }).catch(() => {}), late]);
      clearTimeout(timer);
      worker.terminate();
    }));
    clearInterval(this.#timer);
  }
}
