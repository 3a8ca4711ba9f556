/**
 * `processingMode` in policy-definition.yaml: the one place that decides which phases a
 * policy takes part in, for TypeScript and Python policies alike. Each field is a fixed mode,
 * or a mode that applies only when a parameter is set (`{ value: BUFFER, when: logPayload }`),
 * so a policy that needs a body for some configurations only does not make Envoy buffer it
 * for all of them. The engine resolves it per instance, from the validated parameters, when
 * it builds a chain.
 *
 * @module
 */
import { DEFAULT_PROCESSING_MODE, type ProcessingMode } from "../sdk/mode.ts";

/** The fields of a processing mode. */
export const MODE_FIELDS = [
  "requestHeaderMode",
  "requestBodyMode",
  "responseHeaderMode",
  "responseBodyMode",
] as const;
export type ModeField = typeof MODE_FIELDS[number];

/** What a field means when its condition does not hold. */
const OFF = "SKIP";

/**
 * A mode that applies when a parameter is set: `when` is the parameter's path (dots for
 * nested objects), or a list of paths of which any may be set. "Set" means present and not
 * `false`, `null`, `""`, `0` or `[]`; with `in`, the value must be one of those listed.
 */
export interface ConditionalMode<M extends string = string> {
  readonly value: M;
  readonly when: string | readonly string[];
  readonly in?: readonly unknown[];
}

export type ModeDeclaration<M extends string = string> = M | ConditionalMode<M>;

/** `processingMode` as declared: every field present (the defaults filled in). */
export type ProcessingModeDeclaration = { readonly [K in ModeField]: ModeDeclaration<ProcessingMode[K]> };

const PATH = { type: "string", pattern: "^[A-Za-z_$][\\w$-]*(\\.[A-Za-z_$][\\w$-]*)*$" };

/** The JSON Schema of one field: a mode, or a conditional mode. */
export function modeFieldSchema(modes: readonly string[]): Record<string, unknown> {
  // if/then/else rather than oneOf: a mistyped mode gets only the enum's message.
  return {
    if: { type: "string" },
    then: { enum: modes },
    else: {
      type: "object",
      additionalProperties: false,
      required: ["value", "when"],
      properties: {
        value: { enum: modes.filter((m) => m !== OFF) },
        when: { anyOf: [PATH, { type: "array", minItems: 1, items: PATH }] },
        in: { type: "array", minItems: 1 },
      },
    },
  };
}

/** A declaration with the unset fields given their defaults. */
export function declaredModes(
  raw: Partial<ProcessingModeDeclaration> | undefined,
): ProcessingModeDeclaration {
  return { ...DEFAULT_PROCESSING_MODE, ...raw };
}

function valueAt(params: Readonly<Record<string, unknown>>, path: string): unknown {
  let node: unknown = params;
  for (const key of path.split(".")) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function isSet(value: unknown): boolean {
  return Array.isArray(value) ? value.length > 0 : Boolean(value);
}

const pathsOf = (mode: ConditionalMode): readonly string[] =>
  typeof mode.when === "string" ? [mode.when] : mode.when;

function holds(mode: ConditionalMode, params: Readonly<Record<string, unknown>>): boolean {
  return pathsOf(mode).some((path) => {
    const value = valueAt(params, path);
    return mode.in ? mode.in.some((v) => v === value) : isSet(value);
  });
}

/** The mode of one instance: each conditional field resolved against its parameters. */
export function instanceMode(
  declaration: ProcessingModeDeclaration,
  params: Readonly<Record<string, unknown>>,
): ProcessingMode {
  const resolve = (field: ModeDeclaration) =>
    typeof field === "string" ? field : holds(field, params) ? field.value : OFF;
  return Object.freeze(Object.fromEntries(
    MODE_FIELDS.map((key) => [key, resolve(declaration[key])]),
  )) as unknown as ProcessingMode;
}

/** Whether a field may be on for some configuration (what the policy reference lists). */
export function mayUse(field: ModeDeclaration): string {
  return typeof field === "string" ? field : field.value;
}

/** `when` paths that name no property of the parameter schema: [field, path]. */
export function unknownModeParameters(
  declaration: ProcessingModeDeclaration,
  parameters: Readonly<Record<string, unknown>>,
): [ModeField, string][] {
  const found: [ModeField, string][] = [];
  for (const key of MODE_FIELDS) {
    const field = declaration[key];
    if (typeof field === "string") continue;
    for (const path of pathsOf(field)) {
      let schema: unknown = parameters;
      for (const name of path.split(".")) {
        schema = (schema as { properties?: Record<string, unknown> } | undefined)?.properties?.[name];
      }
      if (schema === undefined) found.push([key, path]);
    }
  }
  return found;
}
