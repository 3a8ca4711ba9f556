/**
 * How both ext_proc transports end a stream that failed: a protocol violation by the peer
 * is counted and logged at debug (a hostile or broken client must not flood the log), any
 * other error is ours and logged as an error. The status codes are gRPC's, the same numbers
 * in grpc-js.
 */
import { getLogger } from "@logtape/logtape";
import { GrpcStatus, type GrpcStatusCode } from "../transport/grpc_frames.ts";
import type { ServerObserver } from "./options.ts";
import { ProtocolError } from "./stream.ts";

const log = getLogger(["tollgate", "extproc"]);

/** Counts a stream ended for breaking the protocol (`reason`: e.g. `undecodable_message`). */
export function malformedStream(observer: ServerObserver | undefined, reason: string, detail: string): void {
  log.debug("malformed ext_proc stream ({reason}): {detail}", { reason, detail });
  observer?.malformedStream(reason);
}

/** The status a stream that failed with `error` ends with; counts and logs it. */
export function failureStatus(
  error: unknown,
  observer: ServerObserver | undefined,
): { readonly code: GrpcStatusCode; readonly message: string } {
  if (error instanceof ProtocolError) {
    malformedStream(observer, error.reason, error.message);
    return { code: GrpcStatus.INVALID_ARGUMENT, message: error.message };
  }
  log.error("ext_proc stream failed: {error}", { error: String((error as Error)?.stack ?? error) });
  return { code: GrpcStatus.INTERNAL, message: "tollgate internal error" };
}
