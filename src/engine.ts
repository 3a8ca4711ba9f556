/**
 * The engine's control plane (the main thread): loads, watches and validates the config,
 * supervises the Python executor, serves the admin endpoint and owns the lifecycle (start,
 * reload, graceful stop). The data plane — ext_proc server, kernel, chains, policies — runs
 * in permission-scoped workers (src/dataplane/).
 */
import { getLogger } from "@logtape/logtape";
import { AggregatorRegistry } from "prom-client";
import denoConfig from "../deno.json" with { type: "json" };
import { DEFAULT_CONFIG_SOURCE, DEFAULT_CONFIG_YAML } from "./config/default_config.ts";
import { type ConfigDefaults, type ConfigEnv, parseConfig, readConfigText } from "./config/load.ts";
import { formatProblem, ProblemsError } from "./config/problem.ts";
import { permissionProblems } from "./config/scope.ts";
import type { EngineConfig } from "./config/types.ts";
import { workerListens } from "./config/worker_listen.ts";
import { type ConfigWatcher, watchConfig } from "./config/watch.ts";
import type { ConfigText } from "./dataplane/messages.ts";
import type { QuarantinedPolicy } from "./dataplane/failure_quarantine.ts";
import { DataPlane } from "./dataplane/pool.ts";
import { type AdminServer, startAdmin } from "./observe/admin.ts";
import { configureLogging } from "./observe/log.ts";
import { Metrics } from "./observe/metrics.ts";
import { processMetrics, runtimeMetrics } from "./observe/runtime_metrics.ts";
import { loadFailureProblems } from "./python/check.ts";
import { pythonSockets } from "./config/python_sockets.ts";
import type { PythonRuntime } from "./python/runtime.ts";
import { PolicyCatalog, type PolicyEntry } from "./registry/catalog.ts";
import { refuseLiveSocket } from "./transport/unix_socket.ts";

const log = getLogger(["tollgate", "engine"]);

export interface EngineOptions {
  /** The build's policy definitions: the control plane loads no policy module. */
  readonly policies: readonly PolicyEntry[];
  /** The module exporting `policies` with their modules as `generatedPolicies`: the data-plane workers import it. */
  readonly registryModule: string;
  /** The generated Python registry matching `policies`, relative to python.home. */
  readonly pythonRegistry: string;
  /** The config file; undefined runs the embedded default config. */
  readonly configPath: string | undefined;
  readonly env: ConfigEnv;
  readonly defaults: ConfigDefaults;
}

/**
 * Loads the config the options name (file or embedded default); `text` is the file's
 * content when the caller already read it (the watcher, once the file is stable).
 */
export async function loadEngineConfig(
  options: Pick<EngineOptions, "configPath" | "env" | "defaults">,
  text?: string,
): Promise<EngineConfig> {
  return parseText(await configText(options, text));
}

/** The config's text as the workers get it (they parse what the control plane validated). */
async function configText(
  options: Pick<EngineOptions, "configPath" | "env" | "defaults">,
  text?: string,
): Promise<ConfigText> {
  const { env, defaults } = options;
  if (options.configPath === undefined) {
    return { text: DEFAULT_CONFIG_YAML, source: DEFAULT_CONFIG_SOURCE, env, defaults };
  }
  return {
    text: text ?? await readConfigText(options.configPath),
    source: options.configPath,
    env,
    defaults,
  };
}

const parseText = (config: ConfigText) =>
  parseConfig(config.text, config.source, config.env, config.defaults);

export class Engine {
  #admin: AdminServer | undefined;
  #watcher: ConfigWatcher | undefined;

  private constructor(
    private readonly options: EngineOptions,
    private config: EngineConfig,
    readonly metrics: Metrics,
    private readonly dataPlane: DataPlane,
    private readonly python: PythonRuntime | undefined,
  ) {}

  /** Loads and checks everything, then starts serving. Throws ProblemsError on bad config. */
  static async start(options: EngineOptions): Promise<Engine> {
    const text = await configText(options);
    const config = parseText(text);
    await configureLogging(config.log.level, config.log.format);
    const catalog = new PolicyCatalog(options.policies);
    const outside = permissionProblems(config, catalog.hasPythonPolicies(), options.configPath);
    if (outside.length > 0) {
      throw new ProblemsError(`cannot run ${config.source} with these permissions`, outside);
    }
    // Before starting anything: a second instance must fail here, before its executor could
    // touch the running engine's sockets.
    for (const socket of ownSockets(config, catalog.hasPythonPolicies())) await refuseLiveSocket(socket);
    const metrics = new Metrics();
    metrics.buildInfo(denoConfig.version, options.policies.length);
    metrics.watchdogSeries(catalog.list().map((p) => p.key));
    // Workers are told of every new executor; they exist only once Python is up.
    const planes: { current?: DataPlane } = {};
    // Python first: Envoy traffic is accepted only once every runtime a chain may need is ready.
    // Loaded only for a build with Python policies: the executor's client and codecs are not small.
    const python = catalog.hasPythonPolicies()
      ? await (await import("./python/runtime.ts")).PythonRuntime.start(
        config,
        options.pythonRegistry,
        metrics,
        {
          newExecutor: (index, replaced) =>
            replaced
              ? planes.current?.pythonReplaced(index)
              : planes.current?.tell({ type: "python-ready", index }),
          unhealthy: (index) => planes.current?.tell({ type: "python-down", index }),
        },
      )
      : undefined;
    if (python && python.failedPolicies.size > 0) {
      await python.stop(config.shutdown.gracePeriodMs);
      const { size } = python.failedPolicies;
      throw new ProblemsError(
        `${size} Python ${size === 1 ? "policy" : "policies"} failed to load in the executor`,
        loadFailureProblems(catalog, python.failedPolicies),
      );
    }
    let dataPlane: DataPlane;
    try {
      dataPlane = await DataPlane.start({
        workers: config.dataPlane.workers,
        listens: workerListens(config.listen, config.dataPlane.workers),
        registryModule: options.registryModule,
        config: text,
        watchdogMs: config.dataPlane.watchdogMs,
        python: python !== undefined,
        failedPython: () => [...python?.failedPolicies ?? []],
        pythonHealthy: () => python?.healthy() ?? [],
        observer: metrics,
      });
    } catch (error) {
      await python?.stop(config.shutdown.gracePeriodMs);
      throw error;
    }
    planes.current = dataPlane;
    metrics.configApplied();
    const engine = new Engine(options, config, metrics, dataPlane, python);
    try {
      if (config.admin.address !== undefined) {
        const aggregate = new AggregatorRegistry();
        // The process's metrics and the main thread's runtime; each worker reports its own runtime.
        const own = [metrics.registry, processMetrics(), runtimeMetrics("main")];
        engine.#admin = await startAdmin(config.admin.address, {
          metrics: async () => {
            const main = (await Promise.all(own.map((r) => r.getMetricsAsJSON()))).flat();
            const all = [main, ...await dataPlane.metrics()];
            // deno-lint-ignore no-explicit-any
            return await AggregatorRegistry.aggregate(all as any).metrics();
          },
          metricsContentType: aggregate.contentType,
          readiness: () => engine.readiness(),
          policies: () => catalog.list().map((p) => ({ key: p.key, source: p.source, ...p.definition })),
          routes: async () =>
            (await dataPlane.status()).routes ?? { reasons: ["no data-plane worker answered"] },
        });
      }
      if (options.configPath !== undefined) {
        engine.#watcher = await watchConfig(options.configPath, (text) => engine.#reloadLogged(text));
      }
    } catch (error) {
      await engine.stop();
      throw error;
    }
    log.info("serving {routes} routes from {source} on {workers} data-plane workers", {
      routes: config.routes.length,
      source: config.source,
      workers: config.dataPlane.workers,
    });
    return engine;
  }

  /** Whether the engine can serve, why not, and which policies are quarantined (reported either way). */
  async readiness(): Promise<{ ready: boolean; reasons: string[]; quarantined: QuarantinedPolicy[] }> {
    const { unready, quarantined } = await this.dataPlane.status();
    const reasons = [...unready, ...(this.python?.unreadyReasons() ?? [])];
    if (this.config.quarantine.affectsReadiness) {
      // Workers add their failure quarantines; the watchdog's is the control plane's.
      for (const q of quarantined) if (q.cause === "watchdog") reasons.push(q.reason);
    }
    return { ready: reasons.length === 0, reasons, quarantined };
  }

  /**
   * Re-reads the config (or parses `text`, the file as the watcher read it) and swaps it in
   * on every worker if it builds on every worker. On any problem the running table stays
   * everywhere and the error is rethrown for the caller to log. What the new table drops is logged.
   */
  async reload(text?: string): Promise<EngineConfig> {
    try {
      const source = await configText(this.options, text);
      const config = parseText(source);
      const dropped = await this.dataPlane.reload(source);
      const previous = this.config;
      this.config = config;
      if (dropped.length > 0) {
        log.warn("config reload from {source} drops what was serving traffic: {dropped}", {
          source: config.source,
          dropped: dropped.join("; "),
        });
      }
      this.metrics.configReloaded("applied");
      this.metrics.configApplied();
      if (config.log.level !== previous.log.level || config.log.format !== previous.log.format) {
        await configureLogging(config.log.level, config.log.format);
      }
      const fixed = restartOnlyChanges(previous, config);
      if (fixed.length > 0) {
        log.warn("config changes to {fields} apply only after a restart", { fields: fixed.join(", ") });
      }
      log.info("config reloaded from {source}: {routes} routes", {
        source: config.source,
        routes: config.routes.length,
      });
      return config;
    } catch (error) {
      this.metrics.configReloaded("rejected");
      throw error;
    }
  }

  async #reloadLogged(text: string): Promise<void> {
    try {
      await this.reload(text);
    } catch (error) {
      if (!(error instanceof ProblemsError)) throw error;
      // A list: the text format prints one problem per line, JSON keeps an array.
      log.error("config change rejected; still serving the previous config", {
        problems: error.problems.map(formatProblem),
        summary: error.summary,
      });
    }
  }

  /** Graceful stop: stop accepting, drain in-flight streams within the grace period, clean up. */
  async stop(): Promise<void> {
    const grace = this.config.shutdown.gracePeriodMs;
    log.info("shutting down (grace period {grace}ms)", { grace });
    this.#watcher?.close();
    await this.dataPlane.stop(grace);
    await this.python?.stop(grace);
    await this.#admin?.shutdown();
    log.info("stopped");
  }
}

/** The Unix sockets the engine will serve or start the executor on. */
function ownSockets(config: EngineConfig, python: boolean): string[] {
  return [
    ...workerListens(config.listen, config.dataPlane.workers).flatMap((l) =>
      l.kind === "unix" ? [l.socket] : []
    ),
    ...(python ? pythonSockets(config.python.socket, config.python.processes) : []),
  ];
}

/** Sections of the config that are read once at startup. */
function restartOnlyChanges(before: EngineConfig, after: EngineConfig): string[] {
  const sections = ["listen", "connections", "admin", "python", "dataPlane", "tracing"] as const;
  const changed = sections.filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]));
  // `connections` holds the listen.* connection limits of the YAML.
  return [...new Set(changed.map((key) => key === "connections" ? "listen" : key))];
}
