/**
 * The engine: wires config, registry, kernel, ext_proc server and admin endpoint together
 * and owns their lifecycle (start, reload, graceful stop).
 */
import { getLogger } from "@logtape/logtape";
import { DEFAULT_CONFIG_SOURCE, DEFAULT_CONFIG_YAML } from "./config/default_config.ts";
import { type ConfigDefaults, type ConfigEnv, loadConfigFile, parseConfig } from "./config/load.ts";
import { formatProblem, ProblemsError } from "./config/problem.ts";
import { permissionProblems } from "./config/scope.ts";
import type { EngineConfig } from "./config/types.ts";
import { type ConfigWatcher, watchConfig } from "./config/watch.ts";
import type { Chain } from "./executor/chain.ts";
import { compileCondition } from "./executor/condition.ts";
import { type ExtProcTransport, startExtProcServer } from "./extproc/transport.ts";
import { buildRouteTable, type ChainBuildContext } from "./kernel/build.ts";
import { droppedProtection } from "./kernel/dropped.ts";
import { closeChains, Kernel, type RouteTable } from "./kernel/routes.ts";
import { type AdminServer, startAdmin } from "./observe/admin.ts";
import { configureLogging } from "./observe/log.ts";
import { Metrics } from "./observe/metrics.ts";
import { loadFailureProblems } from "./python/check.ts";
import { pythonSockets } from "./config/python_sockets.ts";
import { PythonRuntime } from "./python/runtime.ts";
import { type GeneratedPolicy, PolicyRegistry } from "./registry/registry.ts";
import { refuseLiveSocket } from "./transport/unix_socket.ts";

const log = getLogger(["tollgate", "engine"]);

export interface EngineOptions {
  readonly policies: readonly GeneratedPolicy[];
  /** The generated Python registry matching `policies`, relative to python.home. */
  readonly pythonRegistry: string;
  /** The config file; undefined runs the embedded default config. */
  readonly configPath: string | undefined;
  readonly env: ConfigEnv;
  readonly defaults: ConfigDefaults;
}

/** Slack over the body limit for the headers and framing of one ext_proc message. */
const MESSAGE_OVERHEAD_BYTES = 1024 * 1024;

/**
 * Loads the config the options name (file or embedded default); `text` is the file's
 * content when the caller already read it (the watcher, once the file is stable).
 */
export function loadEngineConfig(
  options: Pick<EngineOptions, "configPath" | "env" | "defaults">,
  text?: string,
): Promise<EngineConfig> {
  if (options.configPath === undefined) {
    return Promise.resolve(
      parseConfig(DEFAULT_CONFIG_YAML, DEFAULT_CONFIG_SOURCE, options.env, options.defaults),
    );
  }
  return text === undefined
    ? loadConfigFile(options.configPath, options.env, options.defaults)
    : Promise.resolve(parseConfig(text, options.configPath, options.env, options.defaults));
}

export class Engine {
  #admin: AdminServer | undefined;
  #watcher: ConfigWatcher | undefined;

  private constructor(
    private readonly options: EngineOptions,
    readonly kernel: Kernel,
    readonly metrics: Metrics,
    private readonly build: ChainBuildContext,
    private readonly server: ExtProcTransport,
    private readonly python: PythonRuntime | undefined,
  ) {}

  /** Loads and checks everything, then starts serving. Throws ProblemsError on bad config. */
  static async start(options: EngineOptions): Promise<Engine> {
    const config = await loadEngineConfig(options);
    await configureLogging(config.log.level, config.log.format);
    const registry = new PolicyRegistry(options.policies);
    const outside = permissionProblems(config, registry.hasPythonPolicies(), options.configPath);
    if (outside.length > 0) {
      throw new ProblemsError(`cannot run ${config.source} with these permissions`, outside);
    }
    // Before starting anything: a second instance must fail here, before its executor could
    // touch the running engine's sockets.
    for (const socket of ownSockets(config, registry.hasPythonPolicies())) await refuseLiveSocket(socket);
    const metrics = new Metrics();
    // Python first: Envoy traffic is accepted only once every runtime a chain may need is ready.
    const python = registry.hasPythonPolicies()
      ? await PythonRuntime.start(config, options.pythonRegistry, metrics)
      : undefined;
    if (python && python.failedPolicies.size > 0) {
      await python.stop(config.shutdown.gracePeriodMs);
      const { size } = python.failedPolicies;
      throw new ProblemsError(
        `${size} Python ${size === 1 ? "policy" : "policies"} failed to load in the executor`,
        loadFailureProblems(registry, python.failedPolicies),
      );
    }
    const build: ChainBuildContext = {
      registry,
      factoryFor: (p) => p.definition.runtime === "python" ? python?.factoryFor(p) : p.factory,
      compileCondition,
    };
    let server: ExtProcTransport;
    let kernel: Kernel;
    try {
      kernel = new Kernel(await buildRouteTable(config, build));
      server = await startExtProcServer({
        kernel,
        listen: config.listen,
        connections: config.connections,
        maxMessageBytes: Math.max(4 * 1024 * 1024, config.limits.maxBodyBytes + MESSAGE_OVERHEAD_BYTES),
        observer: metrics,
      });
    } catch (error) {
      await python?.stop(config.shutdown.gracePeriodMs);
      throw error;
    }
    const engine = new Engine(options, kernel, metrics, build, server, python);
    try {
      if (config.admin.address !== undefined) {
        engine.#admin = await startAdmin(config.admin.address, {
          metrics,
          readiness: () => engine.readiness(),
          policies: () => registry.list().map((p) => ({ key: p.key, source: p.source, ...p.definition })),
          routes: () => describeRoutes(kernel),
        });
      }
      if (options.configPath !== undefined) {
        engine.#watcher = await watchConfig(options.configPath, (text) => engine.#reloadLogged(text));
      }
    } catch (error) {
      await engine.stop();
      throw error;
    }
    log.info("serving {routes} routes from {source}", {
      routes: config.routes.length,
      source: config.source,
    });
    return engine;
  }

  readiness(): { ready: boolean; reasons: string[] } {
    const reasons = [this.server.unreadyReason(), ...(this.python?.unreadyReasons() ?? [])]
      .filter((r): r is string => r !== undefined);
    return { ready: reasons.length === 0, reasons };
  }

  /**
   * Re-reads the config (or parses `text`, the file as the watcher read it) and swaps in
   * the new route table if everything builds. On any problem the running table stays and
   * the error is rethrown for the caller to log. What the new table drops is logged.
   */
  async reload(text?: string): Promise<RouteTable> {
    try {
      const config = await loadEngineConfig(this.options, text);
      const table = await buildRouteTable(config, this.build);
      const dropped = droppedProtection(this.kernel.table, table);
      const replaced = this.kernel.swap(table);
      replaced.retire();
      const previous = replaced.config;
      if (dropped.length > 0) {
        log.warn("config reload from {source} drops what was serving traffic: {dropped}", {
          source: config.source,
          dropped: dropped.join("; "),
        });
      }
      this.metrics.configReloaded("applied");
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
      return table;
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
      log.error("config change rejected; still serving the previous config:\n{problems}", {
        problems: error.problems.map((p) => `  ${formatProblem(p)}`).join("\n"),
        summary: error.summary,
      });
    }
  }

  /** Graceful stop: stop accepting, drain in-flight streams within the grace period, clean up. */
  async stop(): Promise<void> {
    const grace = this.kernel.table.config.shutdown.gracePeriodMs;
    log.info("shutting down (grace period {grace}ms, {streams} streams open)", {
      grace,
      streams: this.server.activeStreams,
    });
    this.#watcher?.close();
    await this.server.shutdown(grace);
    // Streams cut at the end of the grace period never release the table: close it directly.
    await closeChains(this.kernel.table.allChains());
    await this.python?.stop(grace);
    await this.#admin?.shutdown();
    log.info("stopped");
  }
}

/** The Unix sockets the engine will serve or start the executor on. */
function ownSockets(config: EngineConfig, python: boolean): string[] {
  return [
    ...(config.listen.kind === "unix" ? [config.listen.socket] : []),
    ...(python ? pythonSockets(config.python.socket, config.python.processes) : []),
  ];
}

/** Sections of the config that are read once at startup. */
function restartOnlyChanges(before: EngineConfig, after: EngineConfig): string[] {
  const sections = ["listen", "connections", "admin", "python"] as const;
  const changed = sections.filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]));
  // `connections` holds the listen.* connection limits of the YAML.
  return [...new Set(changed.map((key) => key === "connections" ? "listen" : key))];
}

function describeChain(chain: Chain) {
  return {
    policies: chain.entries.map((e) => ({
      policy: e.label,
      parameters: e.shownParams,
      mode: e.mode,
      onFailure: e.onFailure,
    })),
    phases: {
      requestHeaders: chain.request.slice(0, chain.requestHeadersCount).map((e) => e.label),
      requestBody: chain.request.slice(chain.requestHeadersCount).map((e) => e.label),
      responseHeaders: chain.response.slice(0, chain.responseHeadersCount).map((e) => e.label),
      responseBody: chain.response.slice(chain.responseHeadersCount).map((e) => e.label),
    },
  };
}

/** GET /routes: the running table, requests per route, and the requests no route matched. */
function describeRoutes(kernel: Kernel) {
  const table = kernel.table;
  const requests = kernel.requestCounts();
  return {
    source: table.config.source,
    routes: [...table.chains.values()].map((chain) => ({
      name: chain.route.name,
      requests: requests.get(chain.route.name) ?? 0,
      ...describeChain(chain),
    })),
    unmatchedRoutes: table.config.unmatchedRoutes,
    defaultChain: table.defaultChain ? describeChain(table.defaultChain) : null,
    unmatched: kernel.unmatched.snapshot(),
  };
}
