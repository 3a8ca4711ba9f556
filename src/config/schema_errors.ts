/**
 * Turns Ajv's validation errors into readable problems: the JSON path of the value and a
 * sentence about what is wrong with it.
 */
import type { ErrorObject } from "ajv";
import { DURATION_PATTERN } from "./duration.ts";
import type { PathSegments } from "./problem.ts";
import { didYouMean } from "./suggest.ts";

/** A schema violation: where (path segments) and why. */
export interface SchemaViolation {
  readonly segments: PathSegments;
  readonly message: string;
}

function pointerToSegments(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer.slice(1).split("/").map((raw) => {
    const part = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    return /^\d+$/.test(part) ? Number(part) : part;
  });
}

/** A policy version in a config: `v1`, or a full `v1.2.3`. */
export const REF_VERSION_PATTERN = "^v\\d+(\\.\\d+\\.\\d+)?$";
const VERSION_RULE = "versions are written vMAJOR or vMAJOR.MINOR.PATCH, e.g. v1 or v1.0.0";

/** A version written as YAML reads `version: 1.0` (a number), or without its `v`. */
function versionProblem(error: ErrorObject): string | undefined {
  const schema = error.parentSchema as { pattern?: string } | undefined;
  if (schema?.pattern !== REF_VERSION_PATTERN) return undefined;
  if (error.keyword === "type") {
    return `is the ${typeof error.data} ${error.data}, not a version: ${VERSION_RULE}`;
  }
  if (error.keyword === "pattern") return `${JSON.stringify(error.data)} is not a version: ${VERSION_RULE}`;
  return undefined;
}

function describe(error: ErrorObject): { extra?: string; message: string } {
  const p = error.params as Record<string, unknown>;
  const version = versionProblem(error);
  if (version !== undefined) return { message: version };
  switch (error.keyword) {
    case "required":
      return { extra: String(p.missingProperty), message: "is required" };
    case "additionalProperties": {
      // Needs Ajv's `verbose` (src/config/ajv.ts) for the schema the field was checked against.
      const known = Object.keys((error.parentSchema?.properties ?? {}) as Record<string, unknown>);
      return {
        extra: String(p.additionalProperty),
        message: `is not a known field${didYouMean(String(p.additionalProperty), known)}`,
      };
    }
    case "enum": {
      const allowed = p.allowedValues as unknown[];
      const hint = typeof error.data === "string"
        ? didYouMean(error.data, allowed.filter((v): v is string => typeof v === "string"))
        : "";
      return { message: `must be one of ${allowed.map((v) => JSON.stringify(v)).join(", ")}${hint}` };
    }
    case "type":
      return { message: `must be of type ${p.type}` };
    case "pattern":
      return p.pattern === DURATION_PATTERN
        ? { message: "must be a duration such as 250ms, 30s or 2m" }
        : { message: `must match ${p.pattern}` };
    case "const":
      return { message: `must be ${JSON.stringify(p.allowedValue)}` };
    default:
      return { message: error.message ?? `fails "${error.keyword}"` };
  }
}

/**
 * Converts Ajv errors into violations, dropping the noise Ajv adds for `oneOf`/`anyOf`
 * branches when a more specific error exists for the same value.
 */
export function schemaViolations(errors: readonly ErrorObject[] | null | undefined): SchemaViolation[] {
  const out: SchemaViolation[] = [];
  const seen = new Set<string>();
  const specific = (errors ?? []).filter((e) =>
    e.keyword !== "oneOf" && e.keyword !== "anyOf" && e.keyword !== "if"
  );
  const chosen = specific.length > 0 ? specific : (errors ?? []);
  for (const error of chosen) {
    const { extra, message } = describe(error);
    const segments = pointerToSegments(error.instancePath);
    if (extra !== undefined) segments.push(extra);
    const key = `${segments.join("\0")}|${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ segments, message });
  }
  return out;
}
