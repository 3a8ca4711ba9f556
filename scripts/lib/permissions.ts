/**
 * The engine's permission scope: the single definition of the Deno permission flags used
 * by `deno task compile` (baked into the binary), `deno task dev`, and every integration
 * test that starts the engine. Only paths differ between them (the image's layout versus a
 * checkout's), never the kinds or number of permissions.
 *
 * The scope: read and write only the runtime directories holding the sockets; read the
 * config's directory (watched for hot reload); connect and listen only on the ext_proc
 * sockets (one per data-plane worker) and the executor Unix sockets (Deno checks Unix sockets
 * as `net` permissions) and the admin address; run only the Python interpreter; read only the
 * environment variables listed below (and, run from a checkout, its source directories: the
 * data-plane workers load their modules from them). Policies may
 * reach only the hosts, files and directories the layout lists for them (`policyHosts`,
 * `policyFiles`, `policyWriteDirs`); spans go only to the OTLP collector the layout names
 * (`tracingHost`).
 */
import { allPythonSockets } from "../../src/config/python_sockets.ts";
import { workerAddress, workerSocket } from "../../src/config/worker_listen.ts";

/** Where things are for one deployment of the engine. */
export interface PermissionLayout {
  /** Directories holding the ext_proc and executor sockets (created if missing). */
  readonly runtimeDirs: readonly string[];
  /** ext_proc socket path, in a runtime directory; or undefined when listening on TCP. */
  readonly extprocSocket?: string;
  /** ext_proc TCP address (host:port) instead of a socket. */
  readonly extprocAddress?: string;
  /**
   * Data-plane workers (`dataPlane.workers`, default 1): with more than one, each listens on
   * its own socket beside extprocSocket (`extproc-0.sock` …) or port after extprocAddress's.
   */
  readonly extprocWorkers?: number;
  /**
   * Python executor socket path, in a runtime directory; the sockets of several executor
   * processes are derived from it (src/config/python_sockets.ts).
   */
  readonly pythonSocket: string;
  /** Admin HTTP address (host:port). */
  readonly adminAddress: string;
  /** Directory of the config file (read, and watched for changes). */
  readonly configDir?: string;
  /** The Python interpreter the executor runs under. */
  readonly python: string;
  /**
   * Hosts (`host:port`) policies may connect to, e.g. jwt-auth's JWKS URL or rate-limit's
   * Redis server: the ones the config's policy parameters name (`x-tollgate-access: net|tcp`).
   */
  readonly policyHosts?: readonly string[];
  /** Files policies may read, e.g. key, secret and user files (`x-tollgate-access: read`). */
  readonly policyFiles?: readonly string[];
  /** The OTLP collector (`host:port` of `tracing.otlp.endpoint`) spans are exported to. */
  readonly tracingHost?: string;
  /**
   * Directories policies may read and write, e.g. audit-log's (the directory of each
   * `x-tollgate-access: write` file: rotation creates its siblings).
   */
  readonly policyWriteDirs?: readonly string[];
  /**
   * Source directories of a checkout (`deno run`): Deno checks a Worker's module graph
   * against read permission, so the data-plane workers need them to load. A compiled binary
   * embeds its modules and has none.
   */
  readonly moduleDirs?: readonly string[];
}

/** Environment variables the engine (and the libraries it embeds) may read. */
export const ENGINE_ENV_VARS: readonly string[] = [
  // Tollgate's own overrides (src/config/load.ts).
  "TOLLGATE_SOCKET",
  "TOLLGATE_PYTHON_SOCKET",
  "TOLLGATE_LOG_LEVEL",
  "TOLLGATE_PYTHON",
  "TOLLGATE_PYTHON_HOME",
  "TOLLGATE_ADMIN_ADDRESS",
  // grpc-js (the ext_proc reference transport) reads these at load time (tracing, TLS and resolver switches).
  "GRPC_NODE_VERBOSITY",
  "GRPC_VERBOSITY",
  "GRPC_NODE_TRACE",
  "GRPC_TRACE",
  "GRPC_SSL_CIPHER_SUITES",
  "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
  "GRPC_NODE_USE_ALTERNATIVE_RESOLVER",
  "GRPC_NODE_DEBUG_SEND_ERROR_DETAILS",
  "GRPC_EXPERIMENTAL_ENABLE_OUTLIER_DETECTION",
  // The OpenTelemetry OTLP exporter reads these when it is created (tracing): headers, e.g. a
  // collector's API key, can stay out of the config file. The certificate variables name files,
  // which the engine may not read: TLS to a collector uses the system's roots.
  ...["", "TRACES_"].flatMap((signal) =>
    ["ENDPOINT", "HEADERS", "TIMEOUT", "COMPRESSION", "CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY"]
      .map((name) => `OTEL_EXPORTER_OTLP_${signal}${name}`)
  ),
  // npm:yaml's debug switches.
  "LOG_TOKENS",
  "LOG_STREAM",
  // npm:@redis/client's debug switches (the rate-limit policy's Redis backend).
  "REDIS_DEBUG_MAINTENANCE",
  "REDIS_EMIT_DIAGNOSTICS",
];

/**
 * V8 settings the engine runs with: a young generation capped at 4 MB semi-spaces keeps
 * garbage-collection pauses short (they were the engine's latency tail). Flags that cut the
 * peak by collecting the old generation sooner are left out: a hard old-space limit cost ~14 %
 * of the engine's CPU, and `--heap-growing-percent=50` (~70 MB less peak) cost ~18 % in
 * interleaved direct loads on a quiet machine (docs/performance.md, "Memory").
 */
export const ENGINE_V8_FLAGS: readonly string[] = ["--v8-flags=--max-semi-space-size=4"];

/**
 * Deno flags the engine needs beyond permissions: the data plane's Workers are created
 * with narrower permissions than the process (`deno.permissions`), unstable in Deno 2.9.
 */
export const ENGINE_UNSTABLE_FLAGS: readonly string[] = ["--unstable-worker-options"];

/** Everything `deno run` / `deno compile` need to run the engine: its permissions and V8 settings. */
export function engineFlags(layout: PermissionLayout): string[] {
  return [...permissionFlags(layout), ...ENGINE_UNSTABLE_FLAGS, ...ENGINE_V8_FLAGS];
}

/** The `deno run` / `deno compile` permission flags for a layout. */
export function permissionFlags(layout: PermissionLayout): string[] {
  const read = [
    ...layout.runtimeDirs,
    ...(layout.configDir ? [layout.configDir] : []),
    ...(layout.policyFiles ?? []),
    ...(layout.policyWriteDirs ?? []),
    ...(layout.moduleDirs ?? []),
  ];
  const workers = layout.extprocWorkers ?? 1;
  const extproc = Array.from(
    { length: workers },
    (_, i) =>
      layout.extprocSocket
        ? `unix:${workerSocket(layout.extprocSocket, i, workers)}`
        : layout.extprocAddress && workerAddress(layout.extprocAddress, i, workers),
  );
  const net = [
    ...extproc,
    // Every socket any python.processes may use: the flags do not depend on the config.
    ...allPythonSockets(layout.pythonSocket).map((socket) => `unix:${socket}`),
    layout.adminAddress,
    ...(layout.policyHosts ?? []),
    layout.tracingHost,
  ].filter((v): v is string => v !== undefined);
  return [
    `--allow-read=${read.join(",")}`,
    `--allow-write=${[...layout.runtimeDirs, ...(layout.policyWriteDirs ?? [])].join(",")}`,
    `--allow-net=${net.join(",")}`,
    `--allow-run=${layout.python}`,
    `--allow-env=${ENGINE_ENV_VARS.join(",")}`,
  ];
}
