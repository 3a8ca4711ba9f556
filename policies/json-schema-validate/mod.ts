/**
 * json-schema-validate: 400 for a request body that is not JSON or does not match the
 * route's schema, listing up to `maxErrors` errors.
 */
import type { PolicyFactory } from "@tollgate/sdk";
import { reject } from "../shared/reject.ts";
import { compileSchema } from "./validator.ts";
import type { JsonSchemaValidateParams } from "../../src/gen/params.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

const invalidJson = (message: string) => reject(400, "invalid_json", message);

/** The body parsed as JSON, or the reason it is not JSON. */
function parseBody(bytes: Uint8Array): { value: unknown } | { problem: string } {
  let text;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { problem: "the request body is not valid UTF-8" };
  }
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return { problem: `the request body is not JSON: ${(error as Error).message}` };
  }
}

export const getPolicy: PolicyFactory<JsonSchemaValidateParams> = (_metadata, params) => {
  const validate = compileSchema(params.schema);
  return {
    onRequest(ctx) {
      const bytes = ctx.body?.content;
      if (!bytes || bytes.byteLength === 0) {
        return params.allowEmptyBody
          ? undefined
          : invalidJson("the request has no body; a JSON body is required");
      }
      const parsed = parseBody(bytes);
      if ("problem" in parsed) return invalidJson(parsed.problem);
      const errors = validate(parsed.value);
      if (errors.length === 0) return undefined;
      const shown = errors.slice(0, params.maxErrors);
      const message = shown.length < errors.length
        ? `the request body does not match the schema (first ${shown.length} of ${errors.length} errors)`
        : "the request body does not match the schema";
      return reject(400, "invalid_request_body", message, {}, { errors: shown });
    },
  };
};
