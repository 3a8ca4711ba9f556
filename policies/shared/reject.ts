/** The JSON error answers the built-in policies give (`{"error": "<code>", "message": "..."}`). */
import { type HeaderRecord, ImmediateResponse } from "@tollgate/sdk";

/** An immediate response with a JSON error body, plus any extra headers. */
export function reject(statusCode: number, error: string, message: string, headers: HeaderRecord = {}) {
  return new ImmediateResponse({
    statusCode,
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify({ error, message }),
  });
}
