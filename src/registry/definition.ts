/**
 * policy-definition.yaml: parsing and validation. A definition names a policy, its version,
 * runtime, processing mode and the JSON Schemas (draft-7) of its parameters.
 */
import { createAjv } from "../config/ajv.ts";
import type { Problem } from "../config/problem.ts";
import { schemaViolations } from "../config/schema_errors.ts";
import type { YamlSource } from "../config/yaml_source.ts";
import { DEFAULT_STREAMING, type StreamingOptions } from "../sdk/chunk.ts";
import { BODY_PROCESSING_MODES, HEADER_PROCESSING_MODES, type ProcessingMode } from "../sdk/mode.ts";
import {
  declaredModes,
  modeFieldSchema,
  type ProcessingModeDeclaration,
  unknownModeParameters,
} from "./modes.ts";
import { checkParameterSchema } from "./schema_check.ts";
import type { JsonSchema } from "./types.ts";

export type PolicyRuntime = "typescript" | "python";

/**
 * `inline` (the default): runs on the request path and may change or answer the request.
 * `audit`: observes only; runs off the request path once the exchange is over, with a
 * frozen copy of the request's summary and decision trace (src/chain/audit.ts).
 */
export type PolicyKind = "inline" | "audit";

/** A JSON Schema object, as written in the definition. */

export interface PolicyDefinition {
  /** kebab-case, e.g. `set-headers`. */
  readonly name: string;
  /** Full semantic version with a `v`, e.g. `v1.0.0`. */
  readonly version: string;
  readonly description: string;
  readonly runtime: PolicyRuntime;
  readonly kind: PolicyKind;
  /**
   * The phases the policy takes part in: the only place that decides them, for both
   * runtimes (fields may depend on a parameter: src/registry/modes.ts).
   */
  readonly processingMode: ProcessingModeDeclaration;
  readonly parameters: JsonSchema;
  readonly systemParameters: JsonSchema;
  /** How streamed bodies are cut before the policy sees them (STREAM body modes only). */
  readonly streaming?: StreamingOptions;
  /** Python policies only, and only when the definition has a `python:` section. */
  readonly python?: PythonOptions;
}

/** How the executor runs a Python policy. */
export interface PythonOptions {
  /**
   * False declares that the policy never blocks (no I/O, no sleeping, no long computation):
   * the executor then runs it inline on its event loop instead of handing it to a worker
   * thread, which costs about half as much CPU per call. One blocking call inline would
   * stall every other call of that executor process, so the default is true.
   */
  readonly blocking: boolean;
}

export const POLICY_NAME_PATTERN = /^[a-z0-9]+(-[a-z0-9]+)*$/;
export const POLICY_VERSION_PATTERN = /^v(\d+)\.(\d+)\.(\d+)$/;

/** `name:vMAJOR`, the registry key (any v1.x.y is `name:v1`). */
export function registryKey(name: string, version: string): string {
  const major = /^v(\d+)/.exec(version)?.[1] ?? version;
  return `${name}:v${major}`;
}

const NO_PHASES: ProcessingMode = Object.freeze({
  requestHeaderMode: "SKIP",
  requestBodyMode: "SKIP",
  responseHeaderMode: "SKIP",
  responseBodyMode: "SKIP",
});

const EMPTY_SCHEMA: JsonSchema = Object.freeze({ type: "object", properties: {} });

const definitionSchema = {
  type: "object",
  additionalProperties: false,
  required: ["name", "version"],
  properties: {
    name: { type: "string", pattern: POLICY_NAME_PATTERN.source },
    version: { type: "string", pattern: POLICY_VERSION_PATTERN.source },
    description: { type: "string", default: "" },
    runtime: { enum: ["typescript", "python"], default: "typescript" },
    kind: { enum: ["inline", "audit"], default: "inline" },
    processingMode: {
      type: "object",
      additionalProperties: false,
      properties: {
        // The SDK's mode types are derived from the same lists: one source for both.
        requestHeaderMode: modeFieldSchema(HEADER_PROCESSING_MODES),
        requestBodyMode: modeFieldSchema(BODY_PROCESSING_MODES),
        responseHeaderMode: modeFieldSchema(HEADER_PROCESSING_MODES),
        responseBodyMode: modeFieldSchema(BODY_PROCESSING_MODES),
      },
    },
    streaming: {
      type: "object",
      additionalProperties: false,
      properties: {
        accumulate: { enum: ["none", "line", "sse-event"], default: DEFAULT_STREAMING.accumulate },
        maxAccumulatedBytes: { type: "integer", minimum: 1, default: DEFAULT_STREAMING.maxAccumulatedBytes },
      },
    },
    parameters: { type: "object" },
    systemParameters: { type: "object" },
    python: {
      type: "object",
      additionalProperties: false,
      properties: { blocking: { type: "boolean", default: true } },
    },
  },
};

const validateShape = createAjv().compile(definitionSchema);

const VERSION_FORMAT = "versions are written vMAJOR.MINOR.PATCH, e.g. v1.0.0";
const NAME_FORMAT =
  "names are kebab-case: lower-case letters and digits joined by single hyphens, e.g. set-headers";

/** The shape's violations, with the name and version rules said in words. */
function shapeProblems(source: YamlSource, raw: Record<string, unknown>): Problem[] {
  if (validateShape(raw)) return [];
  return schemaViolations(validateShape.errors).map((v) => {
    const [field] = v.segments;
    if (v.segments.length === 1 && field === "version" && raw.version !== undefined) {
      const given = typeof raw.version === "string"
        ? `${JSON.stringify(raw.version)} is not a version`
        : `is the ${typeof raw.version} ${raw.version}, not a version`;
      return source.problemAt(v.segments, `${given}: ${VERSION_FORMAT}`);
    }
    if (v.segments.length === 1 && field === "name" && typeof raw.name === "string") {
      return source.problemAt(v.segments, `${v.message} (${NAME_FORMAT}), not ${JSON.stringify(raw.name)}`);
    }
    return source.problemAt(v.segments, v.message);
  });
}

/** The parameter schemas' problems, each at the key inside the schema that holds it. */
function parameterSchemaProblems(source: YamlSource, raw: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  for (const key of ["parameters", "systemParameters"] as const) {
    const schema = raw[key];
    if (schema === null || typeof schema !== "object" || Array.isArray(schema)) continue;
    for (const p of checkParameterSchema(schema as JsonSchema)) {
      problems.push(source.problemAt([key, ...p.segments], p.message));
    }
  }
  return problems;
}

/** Conditional modes must name a parameter the schema declares. */
function modeProblems(source: YamlSource, raw: Record<string, unknown>): Problem[] {
  const declared = raw.processingMode;
  if (declared === null || typeof declared !== "object" || Array.isArray(declared)) return [];
  // Parameters are system parameters merged under the user's: either may hold the switch.
  const properties = (schema: unknown) => (schema as { properties?: object } | undefined)?.properties;
  const merged = { properties: { ...properties(raw.systemParameters), ...properties(raw.parameters) } };
  return unknownModeParameters(declaredModes(declared as Partial<ProcessingModeDeclaration>), merged)
    .map(([field, path]) =>
      source.problemAt(
        ["processingMode", field, "when"],
        `names no parameter of the definition: ${path} is not in parameters or systemParameters`,
      )
    );
}

/**
 * Validates a parsed policy-definition.yaml. Returns the definition, or every problem found
 * at once: shape (name and version format, runtime, processing modes), both parameter
 * schemas as draft-7 JSON Schemas (with their defaults), and conditional modes' parameters.
 */
export function parseDefinition(source: YamlSource): PolicyDefinition | Problem[] {
  const raw = structuredClone(source.value ?? {}) as Record<string, unknown>;
  if (typeof raw !== "object" || Array.isArray(raw)) return [source.problemAt([], "must be a YAML mapping")];
  const problems = [
    ...shapeProblems(source, raw),
    ...parameterSchemaProblems(source, raw),
    ...modeProblems(source, raw),
  ];
  if (raw.python !== undefined && raw.runtime !== "python") {
    problems.push(source.problemAt(["python"], "is only for policies with runtime: python"));
  }
  if (raw.kind === "audit") {
    if (raw.runtime !== "typescript") {
      problems.push(
        source.problemAt(["kind"], "auditing policies are TypeScript only (runtime: typescript)"),
      );
    }
    if (raw.processingMode !== undefined) {
      problems.push(
        source.problemAt(
          ["processingMode"],
          "an auditing policy takes part in no phase: remove processingMode",
        ),
      );
    }
  }
  const mode = raw.processingMode as Partial<ProcessingMode> | undefined;
  const streams = mode?.requestBodyMode === "STREAM" || mode?.responseBodyMode === "STREAM";
  if (raw.streaming !== undefined && !streams) {
    problems.push(source.problemAt(["streaming"], "is only for policies with a STREAM body mode"));
  }
  if (problems.length > 0) return problems;
  return {
    name: raw.name as string,
    version: raw.version as string,
    description: raw.description as string,
    runtime: raw.runtime as PolicyRuntime,
    kind: raw.kind as PolicyKind,
    processingMode: raw.kind === "audit"
      ? NO_PHASES
      : declaredModes(raw.processingMode as Partial<ProcessingModeDeclaration> | undefined),
    parameters: (raw.parameters as JsonSchema | undefined) ?? EMPTY_SCHEMA,
    systemParameters: (raw.systemParameters as JsonSchema | undefined) ?? EMPTY_SCHEMA,
    ...(streams ? { streaming: (raw.streaming as StreamingOptions | undefined) ?? DEFAULT_STREAMING } : {}),
    ...(raw.python !== undefined ? { python: raw.python as PythonOptions } : {}),
  };
}
