/** The JSON error answers the built-in policies give (`{"error": "<code>", "message": "..."}`). */
import { type HeaderRecord, ImmediateResponse } from "@tollgate/sdk";

/**
 * An immediate response with a JSON error body, plus any extra headers, and any extra JSON
 * fields of the body in `details` (e.g. a list of validation errors).
 */
export function reject(
  statusCode: number,
  error: string,
  message: string,
  headers: HeaderRecord = {},
  details: Readonly<Record<string, unknown>> = {},
) {
  return new ImmediateResponse({
    statusCode,
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify({ ...details, error, message }),
  });
}
