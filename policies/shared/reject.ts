/** The JSON error answers of the built-in policies. */
import { type HeaderRecord, ImmediateResponse } from "@tollgate/sdk";

/**
 * An immediate response with a JSON body `{"error": code, "message": message}`: what a
 * built-in policy answers to bad or unauthorised client input, plus any extra headers and
 * any extra JSON fields of the body in `details` (e.g. a list of validation errors). Build it
 * once where the answer is fixed: it is immutable.
 */
export function reject(
  statusCode: number,
  error: string,
  message: string,
  headers: HeaderRecord = {},
  details: Readonly<Record<string, unknown>> = {},
): ImmediateResponse {
  return new ImmediateResponse({
    statusCode,
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify({ ...details, error, message }),
  });
}
