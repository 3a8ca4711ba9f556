/**
 * Compiling a route's JSON Schema (once per chain) and turning Ajv's errors into
 * `{path, message}` pairs, where `path` is a JSON Pointer (RFC 6901) into the body.
 */
import { Ajv, type ErrorObject } from "ajv";
import formats from "ajv-formats";

// ajv-formats is CommonJS: its typings describe the module, whose `default` is the plugin.
const addFormats = formats.default;

/** One validation error as clients see it. */
export interface BodyError {
  readonly path: string;
  readonly message: string;
}

/** Validates a parsed body; an empty list means it matches. */
export type BodyValidator = (body: unknown) => readonly BodyError[];

const escapePointer = (key: string) => key.replaceAll("~", "~0").replaceAll("/", "~1");

function toBodyError(error: ErrorObject): BodyError {
  // Errors about a missing or extra property point at the property itself.
  const property = error.keyword === "required"
    ? (error.params as { missingProperty: string }).missingProperty
    : error.keyword === "additionalProperties"
    ? (error.params as { additionalProperty: string }).additionalProperty
    : undefined;
  const path = property === undefined
    ? error.instancePath
    : `${error.instancePath}/${escapePointer(property)}`;
  return { path, message: error.message ?? error.keyword };
}

/** Compiles a schema given as a value or a JSON string; throws with Ajv's reason if it is invalid. */
export function compileSchema(schema: unknown): BodyValidator {
  let parsed = schema;
  if (typeof schema === "string") {
    try {
      parsed = JSON.parse(schema);
    } catch (error) {
      throw new Error(`schema: the string is not JSON: ${(error as Error).message}`);
    }
  }
  // Its own instance: schemas of different routes may reuse an $id. Strict, so that a typo
  // in a keyword is a config error rather than a constraint silently not checked.
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
  addFormats(ajv);
  let validate;
  try {
    validate = ajv.compile(parsed as object);
  } catch (error) {
    throw new Error(`schema: not a valid JSON Schema: ${(error as Error).message}`);
  }
  return (body) => validate(body) ? [] : (validate.errors ?? []).map(toBodyError);
}
