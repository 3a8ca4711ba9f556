/**
 * JSON Schema (draft-7) of the engine's YAML config: the contract documented in
 * docs/configuration.md. Defaults here are the engine's defaults.
 */
import { DURATION_PATTERN } from "./duration.ts";
import { MAX_PYTHON_PROCESSES } from "./python_sockets.ts";
import { REF_VERSION_PATTERN } from "./schema_errors.ts";
import { SIZE_PATTERN } from "./size.ts";

const duration = { type: "string", pattern: DURATION_PATTERN };
const hostPort = { type: "string", pattern: "^[^\\s:]+:\\d{1,5}$" };

const policyRef = {
  type: "object",
  additionalProperties: false,
  required: ["name", "version"],
  properties: {
    name: { type: "string", pattern: "^[a-z0-9]+(-[a-z0-9]+)*$" },
    version: { type: "string", pattern: REF_VERSION_PATTERN },
    parameters: { type: "object", default: {} },
    onFailure: { enum: ["deny", "continue", "skipRemaining"], default: "deny" },
    timeout: duration,
    executionCondition: { type: "string", minLength: 1 },
    enabled: { type: "boolean", default: true },
  },
};

const route = {
  type: "object",
  additionalProperties: false,
  required: ["name"],
  properties: {
    name: { type: "string", minLength: 1 },
    api: {
      type: "object",
      additionalProperties: false,
      properties: {
        id: { type: "string", default: "" },
        name: { type: "string", default: "" },
        version: { type: "string", default: "" },
        context: { type: "string", default: "" },
      },
    },
    policies: { type: "array", items: policyRef, default: [] },
    // A Server-Timing response header with the chain's per-policy durations (docs/observability.md).
    serverTiming: { type: "boolean", default: false },
  },
};

/**
 * The schema the raw YAML is validated against. `routes` is required (write `routes: []` for
 * none): a file caught mid-write, empty or cut short, must never read as "no policies".
 */
export const configSchema = {
  type: "object",
  additionalProperties: false,
  required: ["routes"],
  properties: {
    listen: {
      type: "object",
      additionalProperties: false,
      default: {},
      properties: {
        socket: { type: "string", minLength: 1 },
        address: hostPort,
        socketMode: { type: "string", pattern: "^0?[0-7]{3}$", default: "0660" },
        transport: { enum: ["lean", "grpc-js"], default: "lean" },
        maxConcurrentStreams: { type: "integer", minimum: 1, maximum: 2147483647, default: 1024 },
        idleTimeout: { ...duration, default: "1h" },
        keepaliveInterval: { ...duration, default: "10s" },
        keepaliveTimeout: { ...duration, default: "5s" },
      },
    },
    admin: {
      type: "object",
      additionalProperties: false,
      default: {},
      properties: { address: hostPort },
    },
    python: {
      type: "object",
      additionalProperties: false,
      default: {},
      properties: {
        socket: { type: "string", minLength: 1 },
        workers: { type: "integer", minimum: 1, maximum: 256, default: 4 },
        timeout: { ...duration, default: "30s" },
        interpreter: { type: "string", minLength: 1 },
        home: { type: "string", minLength: 1 },
        maxInFlight: { type: "integer", minimum: 1, default: 1024 },
        // Executor processes, each supervised on its own socket (docs/python.md).
        processes: { type: "integer", minimum: 1, maximum: MAX_PYTHON_PROCESSES, default: 1 },
        // Recycling (docs/python.md): off unless set.
        maxMemory: { anyOf: [{ type: "integer", minimum: 1 }, { type: "string", pattern: SIZE_PATTERN }] },
        maxCallsPerProcess: { type: "integer", minimum: 1 },
      },
    },
    limits: {
      type: "object",
      additionalProperties: false,
      default: {},
      properties: {
        maxBodyBytes: { type: "integer", minimum: 0, default: 1048576 },
        maxChunkBytes: { type: "integer", minimum: 1, default: 2097152 },
        maxAccumulatedBytes: { type: "integer", minimum: 1, default: 1048576 },
        policyTimeout: { ...duration, default: "1s" },
        // Records each auditing policy instance may hold waiting; more are dropped and counted.
        auditQueue: { type: "integer", minimum: 1, maximum: 1000000, default: 1000 },
      },
    },
    dataPlane: {
      type: "object",
      additionalProperties: false,
      default: {},
      properties: {
        workers: { type: "integer", minimum: 1, maximum: 64, default: 1 },
        watchdog: { ...duration, default: "1s" },
      },
    },
    shutdown: {
      type: "object",
      additionalProperties: false,
      default: {},
      properties: { gracePeriod: { ...duration, default: "15s" } },
    },
    log: {
      type: "object",
      additionalProperties: false,
      default: {},
      properties: {
        level: { enum: ["debug", "info", "warning", "error"], default: "info" },
        format: { enum: ["json", "text"], default: "json" },
        requests: { type: "boolean", default: false },
      },
    },
    quarantine: {
      type: "object",
      additionalProperties: false,
      default: {},
      properties: {
        failures: { type: "integer", minimum: 1, default: 20 },
        window: { ...duration, default: "60s" },
        affectsReadiness: { type: "boolean", default: false },
      },
    },
    // OpenTelemetry tracing (docs/observability.md#tracing): off unless set.
    tracing: {
      type: "object",
      additionalProperties: false,
      required: ["otlp"],
      properties: {
        otlp: {
          type: "object",
          additionalProperties: false,
          required: ["endpoint"],
          properties: {
            endpoint: { type: "string", pattern: "^https?://" },
            protocol: { enum: ["http/protobuf"], default: "http/protobuf" },
            headers: { type: "object", additionalProperties: { type: "string" }, default: {} },
            timeout: { ...duration, default: "10s" },
          },
        },
        sampleRatio: { type: "number", minimum: 0, maximum: 1, default: 1 },
        serviceName: { type: "string", minLength: 1, default: "tollgate" },
      },
    },
    policyConfig: { type: "object", default: {} },
    unmatchedRoutes: { enum: ["pass", "deny"], default: "pass" },
    defaultPolicies: { type: "array", items: policyRef, default: [] },
    routes: { type: "array", items: route },
  },
} as const;
