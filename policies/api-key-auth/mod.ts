/**
 * api-key-auth: authenticates a request by a pre-shared key in a header or a query
 * parameter, and tells later policies who called (`ctx.shared.metadata.auth`).
 */
import { type PolicyFactory, UpstreamRequestModifications } from "@tollgate/sdk";
import { AUTH_METADATA_KEY, type AuthMetadata } from "../shared/auth.ts";
import { readListFile } from "../shared/list_file.ts";
import { reject } from "../shared/reject.ts";
import { checkEntries, KeyRing } from "./keys.ts";
import type { ApiKeyAuthParams } from "../../src/gen/params.ts";

export const getPolicy: PolicyFactory<ApiKeyAuthParams> = async (_metadata, params) => {
  const ring = new KeyRing([
    ...params.keys,
    ...(params.keysFile ? checkEntries(await readListFile(params.keysFile), params.keysFile) : []),
    ...checkEntries(params.keysFromConfig, "policyConfig.apiKeyAuth.keys"),
  ]);
  if (ring.size === 0) throw new Error("no keys: set keys, keysFile or policyConfig.apiKeyAuth.keys");
  const inQuery = params.in === "query";
  const name = inQuery ? params.key : params.key.toLowerCase();
  const prefix = params["value-prefix"].toLowerCase();
  const where = inQuery ? `query parameter "${name}"` : `header "${params.key}"`;
  const missing = reject(401, "missing_api_key", `an API key is required in the ${where}`);
  const unknown = reject(401, "invalid_api_key", "the API key is not valid");
  const strip = params.forwardKey
    ? undefined
    : new UpstreamRequestModifications(inQuery ? { query: { remove: [name] } } : { removeHeaders: [name] });
  const subjects = new Map<string, AuthMetadata>();

  return {
    onRequest(ctx) {
      const value = inQuery ? ctx.query.get(name) : ctx.headers.get(name);
      if (value === undefined || value === "") return missing;
      if (prefix && value.slice(0, prefix.length).toLowerCase() !== prefix) return unknown;
      const caller = ring.callerOf(value.slice(prefix.length));
      if (caller === undefined) return unknown;
      let auth = subjects.get(caller);
      if (!auth) subjects.set(caller, auth = Object.freeze({ method: "api-key", subject: caller }));
      ctx.shared.metadata[AUTH_METADATA_KEY] = auth;
      return strip;
    },
  };
};
