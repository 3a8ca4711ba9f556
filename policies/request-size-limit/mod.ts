/**
 * request-size-limit: 413 for a declared content-length above the limit (in the headers
 * phase unless the body is checked too) and, with `checkBody`, for a received body above it.
 */
import type { PolicyFactory } from "@tollgate/sdk";
import { reject } from "../shared/reject.ts";
import type { RequestSizeLimitParams } from "../../src/gen/params.ts";

const DIGITS = /^[0-9]+$/;

export const getPolicy: PolicyFactory<RequestSizeLimitParams> = (_metadata, params) => {
  const { maxBytes } = params;
  const tooLarge = (what: string) =>
    reject(413, "payload_too_large", `${what} exceeds the limit of ${maxBytes} bytes`, {}, {
      limitBytes: maxBytes,
    });
  return {
    onRequest(ctx) {
      const declared = ctx.headers.get("content-length");
      if (declared !== undefined) {
        // Envoy rejects malformed values itself; anything else unexpected is refused, not skipped.
        if (!DIGITS.test(declared)) {
          return reject(400, "invalid_content_length", "content-length is not a number");
        }
        if (Number(declared) > maxBytes) return tooLarge(`content-length ${declared}`);
      }
      const received = ctx.body?.length ?? 0;
      if (received > maxBytes) return tooLarge(`the request body (${received} bytes)`);
      return undefined;
    },
  };
};
