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
  needsRequestBody: boolean,
  needsResponse: boolean,
  needsResponseBody: boolean,
): ProcessingMode {
  return create(ProcessingModeSchema, {
    responseHeaderMode: needsResponse ? HeaderMode.SEND : HeaderMode.SKIP,
    requestBodyMode: needsRequestBody ? BodyMode.BUFFERED : BodyMode.NONE,
    responseBodyMode: needsResponseBody ? BodyMode.BUFFERED : BodyMode.NONE,
    requestTrailerMode: HeaderMode.SKIP,
    responseTrailerMode: HeaderMode.SKIP,
  });
}

/** The mode for a route without policies: nothing more after the request headers. */
export const PASS_THROUGH_MODE: ProcessingMode = build(false, false, false);

const cache = new WeakMap<Chain, ProcessingMode>();

/** The smallest mode that gives every policy of the chain the phases it declared. */
export function modeOverrideFor(chain: Chain): ProcessingMode {
  let mode = cache.get(chain);
  if (!mode) {
    mode = build(chain.needsRequestBody, chain.needsResponse, chain.needsResponseBody);
    cache.set(chain, mode);
  }
  return mode;
}
