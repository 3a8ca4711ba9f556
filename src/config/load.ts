/**
 * Loads the engine config: YAML → schema validation (every problem, with line numbers) →
 * environment overrides → a normalized {@link EngineConfig}.
 */
import type { ValidateFunction } from "ajv";
import { createAjv } from "./ajv.ts";
import { parseDuration } from "./duration.ts";
import { type Problem, ProblemsError } from "./problem.ts";
import { configSchema } from "./schema.ts";
import { schemaViolations } from "./schema_errors.ts";
import { parseSize } from "./size.ts";
import type { EngineConfig, FailureRule, LogLevel, PolicyRef, RouteConfig, TracingConfig } from "./types.ts";
import { parseYamlSource } from "./yaml_source.ts";

/** Environment variables that override the file (see docs/configuration.md). */
export const CONFIG_ENV_VARS = [
  "TOLLGATE_SOCKET",
  "TOLLGATE_PYTHON_SOCKET",
  "TOLLGATE_LOG_LEVEL",
  "TOLLGATE_PYTHON",
  "TOLLGATE_PYTHON_HOME",
  "TOLLGATE_ADMIN_ADDRESS",
] as const;

export type ConfigEnv = Partial<Record<(typeof CONFIG_ENV_VARS)[number], string>>;

/** Defaults that depend on where the engine runs, supplied by the entry point. */
export interface ConfigDefaults {
  readonly pythonInterpreter: string;
  readonly pythonHome: string;
}

const DEFAULT_SOCKET = "/tmp/tollgate/extproc.sock";
const DEFAULT_PYTHON_SOCKET = "/tmp/tollgate/python.sock";
const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warning", "error"];

let validator: ValidateFunction | undefined;
function validate(value: unknown): ValidateFunction {
  validator ??= createAjv().compile(configSchema);
  validator(value);
  return validator;
}

// deno-lint-ignore no-explicit-any
type Raw = Record<string, any>;

/** Reads the process environment for the override variables (needs only those env permissions). */
export function readConfigEnv(): ConfigEnv {
  const env: ConfigEnv = {};
  for (const name of CONFIG_ENV_VARS) {
    const value = Deno.env.get(name);
    if (value) env[name] = value;
  }
  return env;
}

/**
 * Parses and validates config text. Throws {@link ProblemsError} listing every problem,
 * each with file, YAML path, line and reason.
 */
export function parseConfig(
  text: string,
  source: string,
  env: ConfigEnv,
  defaults: ConfigDefaults,
): EngineConfig {
  const yaml = parseYamlSource(text, source);
  if (Array.isArray(yaml)) throw new ProblemsError(`invalid YAML in ${source}`, yaml);
  // An empty file (or only comments) is what a reader sees mid-write: never "no routes".
  if (yaml.value === null || yaml.value === undefined) {
    throw new ProblemsError(`invalid config ${source}`, [{
      file: source,
      path: "",
      message: "the config is empty (a file caught mid-write?); it needs at least `routes:`",
    }]);
  }
  const raw: Raw = yaml.value;
  const problems: Problem[] = [];
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ProblemsError(`invalid config ${source}`, [yaml.problemAt([], "must be a YAML mapping")]);
  }
  const check = validate(raw);
  for (const violation of schemaViolations(check.errors)) {
    problems.push(yaml.problemAt(violation.segments, violation.message));
  }
  if (raw.listen?.socket !== undefined && raw.listen?.address !== undefined) {
    problems.push(
      yaml.problemAt(["listen", "address"], "set either listen.socket or listen.address, not both"),
    );
  }
  if (Array.isArray(raw.routes)) {
    const seen = new Map<string, number>();
    (raw.routes as Raw[]).forEach((route, index) => {
      if (typeof route?.name !== "string") return;
      const first = seen.get(route.name);
      if (first !== undefined) {
        problems.push(
          yaml.problemAt(["routes", index, "name"], `duplicate route name (also routes[${first}])`),
        );
      } else seen.set(route.name, index);
    });
  }
  if (
    raw.unmatchedRoutes === "deny" && Array.isArray(raw.defaultPolicies) && raw.defaultPolicies.length > 0
  ) {
    problems.push(
      yaml.problemAt(
        ["defaultPolicies"],
        "would never run: unmatchedRoutes is deny (set unmatchedRoutes: pass to apply a default chain)",
      ),
    );
  }
  const endpoint = raw.tracing?.otlp?.endpoint;
  if (typeof endpoint === "string" && /^https?:\/\//.test(endpoint) && tracesUrl(endpoint) === undefined) {
    problems.push(yaml.problemAt(["tracing", "otlp", "endpoint"], "is not a valid http or https URL"));
  }
  if (env.TOLLGATE_ADMIN_ADDRESS && !/^[^\s:]+:\d{1,5}$/.test(env.TOLLGATE_ADMIN_ADDRESS)) {
    problems.push({ file: "environment", path: "TOLLGATE_ADMIN_ADDRESS", message: "must be host:port" });
  }
  if (env.TOLLGATE_LOG_LEVEL && !LOG_LEVELS.includes(env.TOLLGATE_LOG_LEVEL as LogLevel)) {
    problems.push({
      file: "environment",
      path: "TOLLGATE_LOG_LEVEL",
      message: `must be one of ${LOG_LEVELS.join(", ")}`,
    });
  }
  if (problems.length > 0) {
    problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
    throw new ProblemsError(`invalid config ${source}`, problems);
  }
  return normalize(raw, source, env, defaults, yaml.problemAt);
}

function normalize(
  raw: Raw,
  source: string,
  env: ConfigEnv,
  defaults: ConfigDefaults,
  locate: EngineConfig["locate"],
): EngineConfig {
  const listen = raw.listen as Raw;
  const envSocket = env.TOLLGATE_SOCKET;
  return {
    source,
    locate,
    listen: listen.address !== undefined && envSocket === undefined
      ? { kind: "tcp", address: listen.address, transport: listen.transport }
      : {
        kind: "unix",
        socket: envSocket ?? listen.socket ?? DEFAULT_SOCKET,
        socketMode: parseInt(listen.socketMode, 8),
        transport: listen.transport,
      },
    connections: {
      maxConcurrentStreams: listen.maxConcurrentStreams,
      idleTimeoutMs: parseDuration(listen.idleTimeout),
      keepaliveIntervalMs: parseDuration(listen.keepaliveInterval),
      keepaliveTimeoutMs: parseDuration(listen.keepaliveTimeout),
    },
    admin: { address: env.TOLLGATE_ADMIN_ADDRESS ?? raw.admin.address },
    python: {
      socket: env.TOLLGATE_PYTHON_SOCKET ?? raw.python.socket ?? DEFAULT_PYTHON_SOCKET,
      workers: raw.python.workers,
      timeoutMs: parseDuration(raw.python.timeout),
      interpreter: env.TOLLGATE_PYTHON ?? raw.python.interpreter ?? defaults.pythonInterpreter,
      home: env.TOLLGATE_PYTHON_HOME ?? raw.python.home ?? defaults.pythonHome,
      maxInFlight: raw.python.maxInFlight,
      processes: raw.python.processes,
      maxMemoryBytes: raw.python.maxMemory === undefined ? undefined : parseSize(raw.python.maxMemory),
      maxCallsPerProcess: raw.python.maxCallsPerProcess,
    },
    limits: {
      maxBodyBytes: raw.limits.maxBodyBytes,
      maxChunkBytes: raw.limits.maxChunkBytes,
      maxAccumulatedBytes: raw.limits.maxAccumulatedBytes,
      policyTimeoutMs: parseDuration(raw.limits.policyTimeout),
      auditQueue: raw.limits.auditQueue,
    },
    dataPlane: { workers: raw.dataPlane.workers, watchdogMs: parseDuration(raw.dataPlane.watchdog) },
    shutdown: { gracePeriodMs: parseDuration(raw.shutdown.gracePeriod) },
    log: {
      level: (env.TOLLGATE_LOG_LEVEL as LogLevel | undefined) ?? raw.log.level,
      format: raw.log.format,
      requests: raw.log.requests,
    },
    quarantine: {
      failures: raw.quarantine.failures,
      windowMs: parseDuration(raw.quarantine.window),
      affectsReadiness: raw.quarantine.affectsReadiness,
    },
    tracing: raw.tracing && tracing(raw.tracing),
    policyConfig: raw.policyConfig,
    unmatchedRoutes: raw.unmatchedRoutes,
    defaultPolicies: (raw.defaultPolicies as Raw[]).map(policyRef),
    routes: (raw.routes as Raw[]).map((route): RouteConfig => ({
      name: route.name,
      api: route.api,
      policies: (route.policies as Raw[]).map(policyRef),
      serverTiming: route.serverTiming,
    })),
  };
}

/**
 * The OTLP/HTTP traces URL of `tracing.otlp.endpoint`: a URL without a path gets `/v1/traces`
 * (as OpenTelemetry's OTEL_EXPORTER_OTLP_ENDPOINT does); undefined if it is no http(s) URL.
 */
export function tracesUrl(endpoint: string): string | undefined {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  if (url.pathname === "/") url.pathname = "/v1/traces";
  return url.href;
}

function tracing(raw: Raw): TracingConfig {
  return {
    endpoint: tracesUrl(raw.otlp.endpoint)!,
    protocol: raw.otlp.protocol,
    headers: raw.otlp.headers,
    timeoutMs: parseDuration(raw.otlp.timeout),
    sampleRatio: raw.sampleRatio,
    serviceName: raw.serviceName,
  };
}

function policyRef(ref: Raw): PolicyRef {
  return {
    name: ref.name,
    version: ref.version,
    parameters: ref.parameters,
    onFailure: ref.onFailure as FailureRule,
    timeoutMs: ref.timeout === undefined ? undefined : parseDuration(ref.timeout),
    executionCondition: ref.executionCondition,
    enabled: ref.enabled,
  };
}

/** Reads and parses a config file; an unreadable file is a problem like any other. */
export async function loadConfigFile(
  path: string,
  env: ConfigEnv,
  defaults: ConfigDefaults,
): Promise<EngineConfig> {
  return parseConfig(await readConfigText(path), path, env, defaults);
}

/** A config file's text; a file that cannot be read is a problem naming it. */
export async function readConfigText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new ProblemsError(`cannot read config ${path}`, [{
      file: path,
      path: "",
      message: error instanceof Error ? error.message : String(error),
    }]);
  }
}
