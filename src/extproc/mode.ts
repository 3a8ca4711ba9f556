/**
 * The ext_proc processing mode a chain needs, computed once per chain and sent as the
 * `mode_override` of the request-headers answer. Every field is set explicitly: since Envoy
 * 1.34 an omitted body mode means NONE while omitted header modes keep the filter's value,
 * and before 1.34 DEFAULT meant "send"; explicit values behave the same on all of them.
 */
import { create } from "@bufbuild/protobuf";
import {
  type ProcessingMode,
  ProcessingMode_BodySendMode as BodyMode,
  ProcessingMode_HeaderSendMode as HeaderMode,
  ProcessingModeSchema,
} from "../gen/proto/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.ts";
import type { Chain } from "../chain/chain.ts";

function build(
  requestBodyMode: BodyMode,
  needsResponse: boolean,
  responseBodyMode: BodyMode,
): ProcessingMode {
  return create(ProcessingModeSchema, {
    responseHeaderMode: needsResponse ? HeaderMode.SEND : HeaderMode.SKIP,
    requestBodyMode,
    responseBodyMode,
    requestTrailerMode: HeaderMode.SKIP,
    responseTrailerMode: HeaderMode.SKIP,
  });
}

/** The mode for a route without policies: nothing more after the request headers. */
export const PASS_THROUGH_MODE: ProcessingMode = build(BodyMode.NONE, false, BodyMode.NONE);

/**
 * The request body mode: BUFFERED when a policy needs the whole body, STREAMED when every
 * request body policy streams. STREAMED rather than FULL_DUPLEX_STREAMED: one answer per
 * chunk is what a chunk pipeline gives, Envoy's message timeout keeps guarding each chunk,
 * and FULL_DUPLEX_STREAMED can be neither switched to by `mode_override` (Envoy ignores
 * overrides once it is configured) nor used without trailers (docs/envoy.md).
 */
function requestBodyMode(chain: Chain): BodyMode {
  if (chain.needsRequestBody) return BodyMode.BUFFERED;
  return chain.requestStreaming.length > 0 ? BodyMode.STREAMED : BodyMode.NONE;
}

const cache = new WeakMap<Chain, ProcessingMode>();
const streamedResponse = new WeakMap<Chain, ProcessingMode>();

/**
 * The smallest mode that gives every policy of the chain the phases it declared. A streamed
 * response body is not asked for here: it is decided at the response headers
 * ({@link streamedResponseMode}).
 */
export function modeOverrideFor(chain: Chain): ProcessingMode {
  let mode = cache.get(chain);
  if (!mode) {
    const response = chain.needsResponseBody ? BodyMode.BUFFERED : BodyMode.NONE;
    mode = build(requestBodyMode(chain), chain.needsResponse, response);
    cache.set(chain, mode);
  }
  return mode;
}

/** The override sent with the response-headers answer when the response body is streamed. */
export function streamedResponseMode(chain: Chain): ProcessingMode {
  let mode = streamedResponse.get(chain);
  if (!mode) {
    mode = build(requestBodyMode(chain), true, BodyMode.STREAMED);
    streamedResponse.set(chain, mode);
  }
  return mode;
}
