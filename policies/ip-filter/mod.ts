/**
 * ip-filter: 403 for clients in the deny list, or outside a non-empty allow list. An address
 * that cannot be determined or parsed is refused too (fail closed) and logged.
 */
import { getLogger } from "@logtape/logtape";
import type { PolicyFactory, RequestContext } from "@tollgate/sdk";
import { reject } from "../shared/reject.ts";
import { throttledWarning } from "../shared/throttled_log.ts";
import { compileRanges, forwardedClient, parseAddress } from "./ranges.ts";
import type { IpFilterParams } from "../../src/gen/params.ts";

const log = getLogger(["tollgate", "policy", "ip-filter"]);

const forbidden = (message: string) => reject(403, "forbidden", message);

export const getPolicy: PolicyFactory<IpFilterParams> = (metadata, params) => {
  if (params.allow.length === 0 && params.deny.length === 0) {
    throw new Error("allow or deny must list at least one address or range");
  }
  const allowed = params.allow.length > 0 ? compileRanges("allow", params.allow) : () => true;
  const denied = compileRanges("deny", params.deny);
  const warn = throttledWarning(log);
  const unknownAddress = forbidden("the client address could not be determined");

  const rawAddress = (ctx: RequestContext): string | undefined =>
    params.source === "source-address"
      ? ctx.clientAddress
      : forwardedClient(ctx.headers.getAll("x-forwarded-for"), params.trustedHops);

  return {
    onRequest(ctx) {
      const raw = rawAddress(ctx);
      const address = raw === undefined ? undefined : parseAddress(raw);
      if (!address) {
        warn("refused a request whose client address is {reason} (route {route})", {
          route: metadata.routeName,
          requestId: ctx.shared.requestId,
          reason: raw === undefined
            ? params.source === "source-address"
              ? "unknown: Envoy sent no source.address attribute (add it to request_attributes)"
              : `missing: x-forwarded-for has fewer than ${params.trustedHops + 1} entries`
            : `not an IP address: ${JSON.stringify(raw.slice(0, 100))}`,
        });
        return unknownAddress;
      }
      if (denied(address) || !allowed(address)) return forbidden(`client address ${address} is not allowed`);
      return undefined;
    },
  };
};
