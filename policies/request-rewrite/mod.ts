/**
 * request-rewrite: changes path, query, method and host before the request goes upstream.
 * Envoy re-selects the route after a path or host change (clear_route_cache).
 */
import {
  type PolicyFactory,
  UpstreamRequestModifications,
  type UpstreamRequestModificationsInit,
} from "@tollgate/sdk";
import { compilePathRule } from "./path.ts";
import type { RequestRewriteParams } from "../../src/gen/params.ts";

/** Thrown for a rewrite that would give Envoy an invalid path (a policy failure, never a skip). */
export class RewriteError extends Error {
  override name = "RewriteError";
}

export const getPolicy: PolicyFactory<RequestRewriteParams> = (_metadata, params) => {
  const rewritePath = params.path && compilePathRule(params.path);
  const query = params.query &&
      (params.query.remove?.length || Object.keys(params.query.set ?? {}).length ||
        Object.keys(params.query.add ?? {}).length)
    ? params.query
    : undefined;
  const fixed: UpstreamRequestModificationsInit = { query, method: params.method, authority: params.host };
  const unchangedPath = new UpstreamRequestModifications(fixed);
  return {
    onRequest(ctx) {
      if (!rewritePath) return unchangedPath;
      const at = ctx.path.indexOf("?");
      const [path, rest] = at < 0 ? [ctx.path, ""] : [ctx.path.slice(0, at), ctx.path.slice(at)];
      const rewritten = rewritePath(path);
      if (rewritten === undefined) return unchangedPath;
      if (!rewritten.startsWith("/")) {
        throw new RewriteError(
          `the path ${path} was rewritten to ${rewritten}, which does not start with "/"`,
        );
      }
      return new UpstreamRequestModifications({ ...fixed, path: rewritten + rest });
    },
  };
};
