/**
 * The one JSON Schema (draft-7) validator setup shared by the config loader and the policy
 * registry: all errors (not just the first), defaults applied, strict about schemas.
 * (Policy definitions' `wso2/defaultValue` keyword is stripped by the registry before a
 * schema reaches Ajv, since Ajv does not allow "/" in keyword names.)
 */
import { Ajv } from "ajv";

/** A new validator instance. */
export function createAjv(): Ajv {
  return new Ajv({ allErrors: true, useDefaults: true, strict: true, strictRequired: false });
}
