/**
 * Checks a definition's parameter schema the way an author needs it: as a draft-7 JSON
 * Schema with each mistake at the key that holds it (not Ajv's meta-schema text), keywords
 * Ajv's strict mode would refuse named with what they probably meant, and every `default`
 * checked against the schema it is the default of.
 *
 * @module
 */
import { createAjv } from "../config/ajv.ts";
import type { PathSegments } from "../config/problem.ts";
import { schemaViolations } from "../config/schema_errors.ts";
import { didYouMean } from "../config/suggest.ts";
import { stripConfigReferences } from "./config_refs.ts";
import type { JsonSchema } from "./types.ts";

/** A problem inside a schema: segments from the schema's root. */
export interface SchemaProblem {
  readonly segments: PathSegments;
  readonly message: string;
}

/** Keywords that only annotate (Ajv accepts them without defining them as keywords). */
const ANNOTATIONS = new Set([
  "$id",
  "$schema",
  "title",
  "description",
  "default",
  "examples",
  "definitions",
  "readOnly",
  "writeOnly",
  "deprecated",
  "contentMediaType",
  "contentEncoding",
]);
const SCHEMA_MAPS = ["properties", "patternProperties", "definitions", "dependencies"];
const SCHEMA_LISTS = ["allOf", "anyOf", "oneOf", "items"];
const SCHEMA_VALUES = [
  "items",
  "additionalItems",
  "additionalProperties",
  "contains",
  "propertyNames",
  "not",
  "if",
]
  .concat(["then", "else"]);

const ajv = createAjv();

type Visit = (schema: Record<string, unknown>, segments: PathSegments) => void;

/** Calls `visit` for the schema and each of its subschemas (draft-7 keywords). */
function walk(schema: unknown, segments: PathSegments, visit: Visit): void {
  if (schema === null || typeof schema !== "object" || Array.isArray(schema)) return;
  const node = schema as Record<string, unknown>;
  visit(node, segments);
  for (const key of SCHEMA_MAPS) {
    const map = node[key];
    if (map === null || typeof map !== "object") continue;
    for (const [name, sub] of Object.entries(map)) walk(sub, [...segments, key, name], visit);
  }
  for (const key of SCHEMA_LISTS) {
    const list = node[key];
    if (Array.isArray(list)) list.forEach((sub, i) => walk(sub, [...segments, key, i], visit));
  }
  for (const key of SCHEMA_VALUES) walk(node[key], [...segments, key], visit);
}

/** Meta-schema violations, one per key: an enum's list says more than the type error beside it. */
function metaSchemaProblems(schema: JsonSchema): SchemaProblem[] {
  if (ajv.validateSchema(schema)) return [];
  const violations = schemaViolations(ajv.errors);
  const withEnum = new Set(
    violations.filter((v) => v.message.startsWith("must be one of")).map((v) => v.segments.join("\0")),
  );
  return violations
    .filter((v) => !withEnum.has(v.segments.join("\0")) || v.message.startsWith("must be one of"))
    .map((v) => ({
      segments: v.segments,
      message: v.segments.at(-1) === "type" && v.message.startsWith("must be one of")
        ? `${v.message.replace("must be one of", "is not a JSON Schema type: use one of")}`
        : v.message,
    }));
}

function unknownKeywords(schema: JsonSchema): SchemaProblem[] {
  const known = (k: string) => ANNOTATIONS.has(k) || Boolean(ajv.getKeyword(k));
  const problems: SchemaProblem[] = [];
  walk(schema, [], (node, segments) => {
    for (const key of Object.keys(node)) {
      if (known(key)) continue;
      const candidates = [...ANNOTATIONS, ...SCHEMA_MAPS, ...SCHEMA_VALUES, ...SCHEMA_LISTS, ...KEYWORDS];
      problems.push({
        segments: [...segments, key],
        message: `is not a JSON Schema keyword${didYouMean(key, candidates)}`,
      });
    }
  });
  return problems;
}

/** Validation keywords worth suggesting for a typo. */
const KEYWORDS = [
  "type",
  "enum",
  "const",
  "required",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
  "minLength",
  "maxLength",
  "pattern",
  "format",
  "minItems",
  "maxItems",
  "uniqueItems",
  "minProperties",
  "maxProperties",
  "$ref",
];

/** Each `default` that its own schema rejects. */
function badDefaults(schema: JsonSchema): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  walk(schema, [], (node, segments) => {
    if (!("default" in node) || segments.includes("definitions")) return;
    const { default: value, ...rest } = node;
    let validate;
    try {
      validate = ajv.compile(rest);
    } catch {
      return; // a `$ref` to the root's definitions: checked when the whole schema is used
    }
    if (validate(structuredClone(value))) return;
    for (const v of schemaViolations(validate.errors)) {
      const where = v.segments.length > 0 ? ` at ${v.segments.join(".")}` : "";
      problems.push({ segments: [...segments, "default"], message: `the default${where} ${v.message}` });
    }
  });
  return problems;
}

/** Every problem of a parameter schema; empty when it is a usable draft-7 schema. */
export function checkParameterSchema(raw: JsonSchema): SchemaProblem[] {
  const schema = stripConfigReferences(raw).schema;
  const meta = metaSchemaProblems(schema);
  if (meta.length > 0) return meta;
  const problems = unknownKeywords(schema);
  if (problems.length === 0) {
    try {
      ajv.compile(schema);
    } catch (error) {
      problems.push({ segments: [], message: `is not a usable JSON Schema: ${(error as Error).message}` });
    }
  }
  // Subschemas with an unknown keyword do not compile: their defaults are checked once it is fixed.
  return [...problems, ...badDefaults(schema)];
}
