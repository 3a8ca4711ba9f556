/** The JSON error answer every built-in policy gives bad or refused client input. */
import { type HeaderRecord, ImmediateResponse } from "@tollgate/sdk";

/** Fields of a rejection beyond the status: `error` is a stable code, `message` is for humans. */
export interface Rejection {
  readonly error: string;
  readonly message: string;
  /** Extra JSON fields of the body (e.g. the validation errors). */
  readonly details?: Readonly<Record<string, unknown>>;
  /** Extra response headers (content-type is always application/json). */
  readonly headers?: HeaderRecord;
}

/** An immediate response with `{"error": ..., "message": ..., ...details}` as its JSON body. */
export function reject(statusCode: number, rejection: Rejection): ImmediateResponse {
  return new ImmediateResponse({
    statusCode,
    headers: { ...rejection.headers, "content-type": "application/json" },
    body: JSON.stringify({ error: rejection.error, message: rejection.message, ...rejection.details }),
  });
}
