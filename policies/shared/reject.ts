/** The JSON error answers of the built-in policies. */
import { type HeaderRecord, ImmediateResponse } from "@tollgate/sdk";

/**
 * An immediate response with a JSON body `{"error": code, "message": message}`: what a
 * built-in policy answers to bad or unauthorised client input. Build it once where the
 * answer is fixed: it is immutable.
 */
export function reject(
  statusCode: number,
  error: string,
  message: string,
  headers: HeaderRecord = {},
): ImmediateResponse {
  return new ImmediateResponse({
    statusCode,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ error, message }),
  });
}
