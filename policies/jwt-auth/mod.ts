/**
 * jwt-auth: authenticates a request by its JSON Web Token. Keys, options and error answers
 * are prepared once per chain; a verified token's outcome is cached (bounded LRU, until
 * min(exp, cacheMaxAge)), so a repeated token costs a map lookup.
 */
import {
  type ImmediateResponse,
  type PolicyFactory,
  type RequestAction,
  type RequestContext,
  UpstreamRequestModifications,
} from "@tollgate/sdk";
import { errors, type JWTPayload, jwtVerify, type JWTVerifyGetKey, type JWTVerifyOptions } from "jose";
import { LRUCache } from "lru-cache";
import { AUTH_METADATA_KEY, type AuthMetadata, quoted } from "../shared/auth.ts";
import { durationMs } from "../shared/duration.ts";
import { reject } from "../shared/reject.ts";
import { keyGetter, KeysUnavailable, MIN_SECRET_BYTES, RemoteJwks, staticJwks } from "./keys.ts";
import { cookieWithout, findToken, type TokenSource } from "./token.ts";
import type { JwtAuthParams } from "../../src/gen/params.ts";

/** What a token with a valid signature leads to; cached per token until `expiresAt`. */
interface Outcome {
  readonly expiresAt: number;
  /** Set when the request is authenticated. */
  readonly auth?: AuthMetadata;
  /** Undefined when the request passes unchanged (nothing mapped or removed): the cheapest answer. */
  readonly action: UpstreamRequestModifications | ImmediateResponse | undefined;
  /** The mapped claim headers of an authenticated request. */
  readonly claimHeaders?: Readonly<Record<string, string>>;
}

async function readSecret(params: JwtAuthParams): Promise<Uint8Array | undefined> {
  const text = params.secret ||
    (params.secretFile ? (await Deno.readTextFile(params.secretFile)).replace(/\r?\n$/, "") : "") ||
    params.secretFromConfig;
  if (!text) return undefined;
  const bytes = new TextEncoder().encode(text);
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new Error(`the HS256 secret must be at least ${MIN_SECRET_BYTES} bytes (it has ${bytes.length})`);
  }
  return bytes;
}

async function jwksGetter(params: JwtAuthParams): Promise<JWTVerifyGetKey | undefined> {
  const sources = [params.jwks.keys.length > 0, params.jwksFile !== "", params.jwksUrl !== ""];
  if (sources.filter(Boolean).length > 1) throw new Error("set only one of jwks, jwksFile and jwksUrl");
  if (params.jwks.keys.length > 0) return staticJwks(params.jwks, "jwks");
  if (params.jwksFile) {
    return staticJwks(JSON.parse(await Deno.readTextFile(params.jwksFile)), params.jwksFile);
  }
  if (params.jwksUrl) {
    return new RemoteJwks(params.jwksUrl, {
      timeoutMs: durationMs(params.jwksFetchTimeout),
      refreshMs: durationMs(params.jwksRefreshInterval),
      minRefreshMs: durationMs(params.jwksMinRefreshInterval),
      staleIfErrorMs: durationMs(params.jwksStaleIfError),
    }).getKey;
  }
  return undefined;
}

function scopesOf(claims: JWTPayload): Set<string> {
  const scope = claims.scope ?? claims.scp;
  if (typeof scope === "string") return new Set(scope.split(" ").filter(Boolean));
  return new Set(Array.isArray(scope) ? scope.map(String) : []);
}

/** RFC 6750 §3: error_description holds printable ASCII without `"` and `\`. */
const descriptionText = (message: string) => message.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, "'");

/** A claim as a header value: JSON unless a string; CR, LF and NUL (never valid in a header) become spaces. */
const headerText = (value: unknown) =>
  (typeof value === "string" ? value : JSON.stringify(value)).replace(/[\r\n\0]/g, " ");

/** A jose error as the client may read it (never a key or a secret: jose's messages name claims). */
function describe(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "the token has expired";
  if (error instanceof errors.JOSEError) return error.message;
  return "the token is malformed";
}

export const getPolicy: PolicyFactory<JwtAuthParams> = async (_metadata, params) => {
  const secret = await readSecret(params);
  const jwks = await jwksGetter(params);
  const allowsHmac = params.allowedAlgorithms.includes("HS256");
  if (!secret && !jwks) throw new Error("configure a key: jwks, jwksFile, jwksUrl, secret or secretFile");
  if (allowsHmac && !secret) throw new Error("allowedAlgorithms has HS256 but no secret is configured");
  if (secret && !allowsHmac) throw new Error("a secret is configured but allowedAlgorithms lacks HS256");
  const getKey = keyGetter(secret, jwks);
  const leewayMs = durationMs(params.leeway);
  const required = params.requiredClaims;
  const claimValues = Array.isArray(required) ? [] : Object.entries(required);
  const options: JWTVerifyOptions = {
    algorithms: [...params.allowedAlgorithms],
    issuer: params.issuers.length > 0 ? [...params.issuers] : undefined,
    audience: params.audiences.length > 0 ? [...params.audiences] : undefined,
    clockTolerance: leewayMs / 1000,
    requiredClaims: Array.isArray(required) ? [...required] : claimValues.map(([name]) => name),
  };
  const maxAgeMs = durationMs(params.cacheMaxAge);
  const cache = new LRUCache<string, Outcome>({ max: params.cacheSize });
  const source: TokenSource = {
    header: params.headerName.toLowerCase(),
    scheme: params.authHeaderScheme.toLowerCase(),
    cookie: params.cookieName,
  };
  const mappings = Object.entries(params.claimMappings).map((
    [claim, header],
  ) => [claim, header.toLowerCase()]);
  // Mapped headers are always removed first, so a client cannot forge a claim header.
  const mapped = mappings.map(([, header]) => header);
  const removed = params.removeToken ? [...mapped, source.header] : mapped;
  const challenge = `Bearer realm=${quoted(params.realm)}`;
  const missing = reject(401, "missing_token", "a bearer token is required", {
    "www-authenticate": challenge,
  });
  const unavailable = reject(503, "keys_unavailable", "the token's signing keys cannot be fetched now");
  const invalid = (message: string) =>
    reject(401, "invalid_token", message, {
      "www-authenticate": `${challenge}, error="invalid_token", error_description="${
        descriptionText(message)
      }"`,
    });
  const insufficient = reject(403, "insufficient_scope", `the token lacks a required scope`, {
    "www-authenticate": `${challenge}, error="insufficient_scope", scope=${
      quoted(params.requiredScopes.join(" "))
    }`,
  });

  const decide = (claims: JWTPayload, now: number): Outcome => {
    const expiry = claims.exp !== undefined ? claims.exp * 1000 + leewayMs : Infinity;
    const expiresAt = Math.min(expiry, now + maxAgeMs);
    for (const [name, expected] of claimValues) {
      if (claims[name] !== expected) {
        return { expiresAt, action: invalid(`the "${name}" claim does not have the required value`) };
      }
    }
    const scopes = scopesOf(claims);
    if (!params.requiredScopes.every((scope) => scopes.has(scope))) {
      return { expiresAt, action: insufficient };
    }
    const claimHeaders: Record<string, string> = {};
    for (const [claim, header] of mappings) {
      if (claims[claim] !== undefined) claimHeaders[header] = headerText(claims[claim]);
    }
    const subject = claims[params.userIdClaim];
    return {
      expiresAt,
      auth: Object.freeze({
        method: "jwt",
        subject: subject === undefined ? "" : headerText(subject),
        claims: Object.freeze({ ...claims }),
      }),
      action: removed.length > 0
        ? new UpstreamRequestModifications({ removeHeaders: removed, setHeaders: claimHeaders })
        : undefined,
      claimHeaders,
    };
  };

  const verify = async (token: string): Promise<Outcome | ImmediateResponse> => {
    try {
      const { payload } = await jwtVerify(token, getKey, options);
      const outcome = decide(payload, Date.now());
      cache.set(token, outcome);
      return outcome;
    } catch (error) {
      return error instanceof KeysUnavailable ? unavailable : invalid(describe(error));
    }
  };

  const apply = (ctx: RequestContext, outcome: Outcome, from: "header" | "cookie"): RequestAction => {
    if (!outcome.auth) return outcome.action;
    ctx.shared.metadata[AUTH_METADATA_KEY] = outcome.auth;
    if (from === "header" || !params.removeToken) return outcome.action;
    // The token came from a cookie: only that cookie goes, the token header is not ours to drop.
    const cookie = cookieWithout(ctx.headers, source.cookie);
    return new UpstreamRequestModifications({
      removeHeaders: cookie === undefined ? [...mapped, "cookie"] : mapped,
      setHeaders: cookie === undefined ? outcome.claimHeaders : { ...outcome.claimHeaders, cookie },
    });
  };

  return {
    onRequest(ctx) {
      const found = findToken(ctx.headers, source);
      if (!found) return missing;
      const cached = cache.get(found.token);
      if (cached && cached.expiresAt > Date.now()) return apply(ctx, cached, found.from);
      return verify(found.token).then((outcome) =>
        "kind" in outcome ? outcome : apply(ctx, outcome, found.from)
      );
    },
  };
};
