import type { PathSegments, Problem } from "./problem.ts";

/**
 * The engine configuration after loading: validated, defaults filled in, durations in
 * milliseconds. Field names follow the user's YAML (see docs/configuration.md).
 */

/** What to do when a policy throws, times out, or its runtime is unavailable. */
export type FailureRule = "deny" | "continue" | "skipRemaining";

export interface PolicyRef {
  readonly name: string;
  /** `v1` (any v1.x.y) or a full `v1.2.3` that must match the registered definition. */
  readonly version: string;
  readonly parameters: Readonly<Record<string, unknown>>;
  readonly onFailure: FailureRule;
  /**
   * Per-call deadline; undefined means the runtime's default (`limits.policyTimeout` for
   * TypeScript, `python.timeout` for Python).
   */
  readonly timeoutMs: number | undefined;
  readonly executionCondition: string | undefined;
  readonly enabled: boolean;
}

export interface ApiConfig {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly context: string;
}

export interface RouteConfig {
  readonly name: string;
  readonly api: ApiConfig | undefined;
  readonly policies: readonly PolicyRef[];
  /** Send a `Server-Timing` response header listing the chain's per-policy durations. */
  readonly serverTiming: boolean;
}

/**
 * What happens to a request whose route has no chain in the config (a name Envoy sends that
 * no route has, or no route name at all): `pass` lets it through untouched (or through the
 * default chain, `defaultPolicies`), `deny` answers 404.
 */
export type UnmatchedRoutes = "pass" | "deny";
/** The ext_proc server implementation: the lean one (Tollgate's own HTTP/2), or grpc-js (the reference). */
export type ListenTransport = "lean" | "grpc-js";

export type ListenConfig =
  & (
    | { readonly kind: "unix"; readonly socket: string; readonly socketMode: number }
    | { readonly kind: "tcp"; readonly address: string }
  )
  & { readonly transport: ListenTransport };

/** Limits on the connections Envoy opens to the ext_proc listener (`listen.*` in the YAML). */
export interface ConnectionLimits {
  /** Streams one connection may have open at once (advertised in HTTP/2 SETTINGS). */
  readonly maxConcurrentStreams: number;
  /** A connection with no open stream for this long is closed (GOAWAY). */
  readonly idleTimeoutMs: number;
  /** How often an HTTP/2 PING checks that the peer is still there. */
  readonly keepaliveIntervalMs: number;
  /** A PING unanswered for this long closes the connection and its streams. */
  readonly keepaliveTimeoutMs: number;
}

export interface PythonConfig {
  readonly socket: string;
  readonly workers: number;
  readonly timeoutMs: number;
  /** The interpreter the engine starts the executor with. */
  readonly interpreter: string;
  /**
   * Where the executor's files are: `<home>/python` (executor and SDK), `<home>/src/gen/python`
   * (generated code and the Python policy registry) and the policies the registry names,
   * relative to it. The repository root in a checkout; /opt/tollgate in the image.
   */
  readonly home: string;
  /** Calls to each executor process allowed in flight at once; more fail fast as unavailable. */
  readonly maxInFlight: number;
  /**
   * Executor processes, each supervised with its own socket (./python_sockets.ts); calls go
   * to the one with the fewest in flight.
   */
  readonly processes: number;
  /** Recycle the executor once its resident memory exceeds this many bytes (unset: never). */
  readonly maxMemoryBytes?: number;
  /** Recycle the executor after it has served this many calls (unset: never). */
  readonly maxCallsPerProcess?: number;
}

/** The data plane: Deno Workers running ext_proc and the chains (docs/architecture.md). */
export interface DataPlaneConfig {
  /** Workers, each on its own ext_proc socket (`extproc-<i>.sock` beside listen.socket when > 1). */
  readonly workers: number;
  /** A worker whose event loop is stuck this long is terminated and replaced. */
  readonly watchdogMs: number;
}

/** The failure quarantine (src/dataplane/failure_quarantine.ts). */
export interface QuarantineConfig {
  /** A policy failing more than this many times within `windowMs` is quarantined. */
  readonly failures: number;
  readonly windowMs: number;
  /** Whether a quarantined policy makes /readyz answer 503 (default: reported only). */
  readonly affectsReadiness: boolean;
}

/**
 * OpenTelemetry tracing (`tracing` in the YAML; docs/observability.md#tracing). The engine
 * exports spans only when this is set.
 */
export interface TracingConfig {
  /** The OTLP/HTTP traces URL (`/v1/traces` is added to one without a path). */
  readonly endpoint: string;
  readonly protocol: "http/protobuf";
  /** Extra HTTP headers on every export, e.g. a collector's API key. */
  readonly headers: Readonly<Record<string, string>>;
  /** Deadline of one export request. */
  readonly timeoutMs: number;
  /** Share of requests without a parent trace context that start a trace (0 to 1). */
  readonly sampleRatio: number;
  /** The `service.name` resource attribute of every span. */
  readonly serviceName: string;
}

export interface EngineConfig {
  /** Where the config came from: a file path, or `<embedded default>`. */
  readonly source: string;
  /** Builds a problem at a path of this config, with its line and column. */
  readonly locate: (segments: PathSegments, message: string) => Problem;
  readonly listen: ListenConfig;
  readonly connections: ConnectionLimits;
  readonly admin: { readonly address: string | undefined };
  readonly python: PythonConfig;
  readonly limits: {
    readonly maxBodyBytes: number;
    /** The largest streamed chunk Envoy may hand over (STREAM body modes). */
    readonly maxChunkBytes: number;
    /** The most a streaming policy may accumulate, whatever its definition asks. */
    readonly maxAccumulatedBytes: number;
    /** Deadline of a TypeScript policy call without its own `timeout`. */
    readonly policyTimeoutMs: number;
    /** Records each auditing policy instance may hold waiting before new ones are dropped. */
    readonly auditQueue: number;
  };
  readonly dataPlane: DataPlaneConfig;
  readonly shutdown: { readonly gracePeriodMs: number };
  readonly log: {
    readonly level: LogLevel;
    readonly format: "json" | "text";
    /** One access-log line per request (logger `tollgate.access`). */
    readonly requests: boolean;
  };
  readonly quarantine: QuarantineConfig;
  /** Undefined when tracing is off (no `tracing` section). */
  readonly tracing: TracingConfig | undefined;
  readonly policyConfig: Readonly<Record<string, unknown>>;
  readonly unmatchedRoutes: UnmatchedRoutes;
  /** The chain run for requests whose route has no chain (with `unmatchedRoutes: pass`). */
  readonly defaultPolicies: readonly PolicyRef[];
  readonly routes: readonly RouteConfig[];
}

export type LogLevel = "debug" | "info" | "warning" | "error";
