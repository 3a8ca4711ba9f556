/**
 * The one JSON Schema (draft-7) validator setup shared by the config loader and the policy
 * registry: all errors (not just the first), defaults applied, strict about schemas.
 * (Policy definitions' `wso2/defaultValue` keyword is stripped by the registry before a
 * schema reaches Ajv, since Ajv does not allow "/" in keyword names.)
 */
import { Ajv } from "ajv";

/**
 * Marks a policy parameter as a secret (an HMAC secret, API key, password hash, password):
 * the engine shows it as {@link REDACTED} wherever parameters are shown (/routes, logs,
 * `validate`). Annotation only: it changes nothing about validation.
 */
export const SECRET_KEYWORD = "x-tollgate-secret";

/**
 * Marks a policy parameter as something the engine's permission scope must allow: `net` for
 * a URL string the policy fetches, `read` for a file path string it reads, `write` for a
 * file path string it creates, appends to and rotates (reading and writing its directory),
 * `tcp` for an object whose `host` and `port` properties name a server it connects to. Checked when a
 * chain is built. Inside `if`/`then`/`else`, only the branch the value takes counts (so a
 * server is needed only when the policy is configured to use it).
 */
export const ACCESS_KEYWORD = "x-tollgate-access";

/** The kinds of access {@link ACCESS_KEYWORD} can name. */
export const ACCESS_KINDS = ["net", "read", "write", "tcp"] as const;

/**
 * Marks a policy parameter as the name of a header the policy sets, appends, removes or
 * answers with: when a chain is built, a name the engine would refuse at request time
 * (pseudo-headers, framing, hop-by-hop, `host`: src/chain/apply.ts) is a config error.
 */
export const HEADER_NAME_KEYWORD = "x-tollgate-header-name";

/** What a secret parameter's value is shown as. */
export const REDACTED = "<redacted>";

/**
 * A new validator instance. `verbose` puts the failing schema and value in each error, so
 * messages can suggest the known field or value a typo meant (src/config/schema_errors.ts).
 */
export function createAjv(): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    useDefaults: true,
    strict: true,
    strictRequired: false,
    verbose: true,
  });
  ajv.addKeyword({ keyword: SECRET_KEYWORD, schemaType: "boolean" });
  ajv.addKeyword({ keyword: HEADER_NAME_KEYWORD, schemaType: "boolean" });
  ajv.addKeyword({ keyword: ACCESS_KEYWORD, schemaType: "string", metaSchema: { enum: ACCESS_KINDS } });
  return ajv;
}
