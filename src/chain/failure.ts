/**
 * Policy failures and the responses the engine sends for them when a policy's rule is
 * `deny`: a JSON body naming the policy and the request id, never the internal error text.
 */

/** Why a policy could not do its job. */
export type FailureKind = "error" | "timeout" | "unavailable";

/** A failure with its cause; thrown by runtimes (e.g. the Python bridge) or built by the executor. */
export class PolicyFailure extends Error {
  override name = "PolicyFailure";
  constructor(readonly kind: FailureKind, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

const STATUS: Record<FailureKind, number> = { error: 500, timeout: 504, unavailable: 503 };
const CODE: Record<FailureKind, string> = {
  error: "policy_error",
  timeout: "policy_timeout",
  unavailable: "policy_unavailable",
};

/** The failure as a PolicyFailure, whatever was thrown. */
export function asFailure(error: unknown): PolicyFailure {
  if (error instanceof PolicyFailure) return error;
  return new PolicyFailure("error", error instanceof Error ? error.message : String(error), { cause: error });
}

/** The immediate response for a denied request. */
export function failureResponse(
  failure: PolicyFailure,
  policy: string,
  requestId: string,
): { statusCode: number; headers: Record<string, string>; body: string } {
  return {
    statusCode: STATUS[failure.kind],
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ error: CODE[failure.kind], policy, requestId }),
  };
}
