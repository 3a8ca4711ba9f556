/**
 * basic-auth: authenticates a request by its HTTP Basic credentials. A successful check is
 * remembered for `cacheTtl` under the SHA-256 digest of the credentials (never the password
 * itself), so a client repeating its credentials does not cost a password hash per request.
 */
import { type PolicyFactory, UpstreamRequestModifications } from "@tollgate/sdk";
import { LRUCache } from "lru-cache";
import { createHash } from "node:crypto";
import { AUTH_METADATA_KEY, type AuthMetadata, quoted } from "../shared/auth.ts";
import { durationMs } from "../shared/duration.ts";
import { readListFile } from "../shared/list_file.ts";
import { reject } from "../shared/reject.ts";
import { checkUsers, passwordMatches } from "./users.ts";
import type { BasicAuthParams } from "../../src/gen/params.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** `user:password` of a `Basic` Authorization value; undefined when it is not one. */
function credentials(value: string): { username: string; password: string } | undefined {
  const space = value.indexOf(" ");
  if (space === -1 || value.slice(0, space).toLowerCase() !== "basic") return undefined;
  let text: string;
  try {
    text = utf8.decode(Uint8Array.from(atob(value.slice(space + 1).trim()), (c) => c.charCodeAt(0)));
  } catch {
    return undefined;
  }
  const colon = text.indexOf(":");
  return colon === -1 ? undefined : { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

export const getPolicy: PolicyFactory<BasicAuthParams> = async (_metadata, params) => {
  const users = [
    ...checkUsers(params.users as unknown as Record<string, unknown>[], "users"),
    ...(params.usersFile ? checkUsers(await readListFile(params.usersFile), params.usersFile) : []),
    ...checkUsers(params.usersFromConfig, "policyConfig.basicAuth.users"),
  ];
  if (users.length === 0) throw new Error("no users: set users, usersFile or policyConfig.basicAuth.users");
  const hashes = new Map<string, string>();
  for (const user of users) {
    if (hashes.has(user.username)) throw new Error(`user "${user.username}" is listed twice`);
    hashes.set(user.username, user.passwordHash);
  }
  // An unknown user costs a hash check too, so response times do not tell which users exist.
  const decoy = users[0].passwordHash;
  const ttl = durationMs(params.cacheTtl);
  const verified = ttl > 0 ? new LRUCache<string, AuthMetadata>({ max: params.cacheSize, ttl }) : undefined;
  const denied = reject(401, "unauthorized", "valid Basic credentials are required", {
    "www-authenticate": `Basic realm=${quoted(params.realm)}, charset="UTF-8"`,
  });
  const pass = params.forwardAuthorization
    ? undefined
    : new UpstreamRequestModifications({ removeHeaders: ["authorization"] });

  // Checks in progress by credentials digest: a burst of requests with the same credentials
  // (a client's first page load) costs one hash, not one each.
  const checking = new Map<string, Promise<AuthMetadata | undefined>>();
  const authenticate = async (username: string, password: string, digest: string) => {
    const hash = hashes.get(username);
    const matches = await passwordMatches(password, hash ?? decoy);
    if (!matches || hash === undefined) return undefined;
    const auth: AuthMetadata = Object.freeze({ method: "basic", subject: username });
    verified?.set(digest, auth);
    return auth;
  };

  return {
    onRequest(ctx) {
      const header = ctx.headers.get("authorization");
      const given = header === undefined ? undefined : credentials(header);
      if (!given || given.password === "") return denied;
      const digest = createHash("sha256").update(header!).digest("base64");
      const cached = verified?.get(digest);
      if (cached) {
        ctx.shared.metadata[AUTH_METADATA_KEY] = cached;
        return pass;
      }
      let check = checking.get(digest);
      if (!check) {
        check = authenticate(given.username, given.password, digest);
        checking.set(digest, check);
        check.finally(() => checking.delete(digest));
      }
      return check.then((auth) => {
        if (!auth) return denied;
        ctx.shared.metadata[AUTH_METADATA_KEY] = auth;
        return pass;
      });
    },
  };
};
