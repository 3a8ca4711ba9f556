/**
 * cors: answers allowed preflight requests itself (204, no upstream call), rejects the others
 * with 403 (or forwards them, with `forwardPreflight`), and gives the responses of allowed
 * origins their CORS headers. The gateway owns CORS on the route: CORS headers the upstream
 * sent are replaced, and removed for origins that are not allowed.
 */
import {
  ImmediateResponse,
  type PolicyFactory,
  type ReadonlyHeaders,
  UpstreamResponseModifications,
} from "@tollgate/sdk";
import { reject } from "../shared/reject.ts";
import { compileOrigins, type OriginMatcher } from "./origins.ts";
import type { CorsParams } from "../../src/gen/params.ts";

/** Every response header this policy owns. */
const CORS_RESPONSE_HEADERS = [
  "access-control-allow-origin",
  "access-control-allow-credentials",
  "access-control-expose-headers",
  "access-control-allow-methods",
  "access-control-allow-headers",
  "access-control-max-age",
];

/** A list of names that may be ["*"]: a membership test (case-insensitive) and its header value. */
interface NameList {
  readonly any: boolean;
  readonly names: ReadonlySet<string>;
  readonly value: string;
}

function nameList(field: string, entries: readonly string[], credentials: boolean): NameList {
  const any = entries.includes("*");
  if (any && credentials) {
    throw new Error(`${field}: "*" cannot be combined with allowCredentials (browsers reject it)`);
  }
  return { any, names: new Set(entries.map((e) => e.toLowerCase())), value: any ? "*" : entries.join(", ") };
}

const splitList = (value: string | undefined) =>
  (value ?? "").split(",").map((s) => s.trim().toLowerCase()).filter((s) => s !== "");

/** Whether a response already varies by origin (so `Vary: Origin` is not added twice). */
const variesByOrigin = (headers: ReadonlyHeaders) =>
  headers.getAll("vary").some((v) => splitList(v).some((name) => name === "origin" || name === "*"));

export const getPolicy: PolicyFactory<CorsParams> = (_metadata, params) => {
  const credentials = params.allowCredentials;
  const anyOrigin = nameList("allowedOrigins", params.allowedOrigins, credentials).any;
  const matches: OriginMatcher = anyOrigin ? () => true : compileOrigins(params.allowedOrigins);
  const methods = nameList("allowedMethods", params.allowedMethods, credentials);
  const headers = nameList("allowedHeaders", params.allowedHeaders, credentials);
  const exposed = nameList("exposedHeaders", params.exposedHeaders, credentials);
  // With "*" and no credentials every answer is the same; otherwise it depends on Origin.
  const staticOrigin = anyOrigin && !credentials;
  const allowOrigin = (origin: string) => staticOrigin ? "*" : origin;
  const vary = staticOrigin ? [] : ["Origin"];

  const preflightAnswer = (origin: string, requestedHeaders: string | undefined) => {
    const answer: Record<string, string | string[]> = {
      "access-control-allow-origin": allowOrigin(origin),
      "access-control-allow-methods": methods.value,
      "access-control-max-age": String(params.maxAge),
      vary: [...vary, "Access-Control-Request-Method", "Access-Control-Request-Headers"],
    };
    // "*" is answered with the requested names: a literal "*" does not cover Authorization.
    if (requestedHeaders) {
      answer["access-control-allow-headers"] = headers.any ? requestedHeaders : headers.value;
    }
    if (credentials) answer["access-control-allow-credentials"] = "true";
    return new ImmediateResponse({ statusCode: 204, headers: answer });
  };

  /** Why a preflight is refused, or undefined if it is allowed. */
  const preflightProblem = (origin: string, method: string, requested: string[]) => {
    if (!matches(origin)) return `origin ${origin} is not allowed`;
    if (!methods.any && !methods.names.has(method.toLowerCase())) return `method ${method} is not allowed`;
    const refused = headers.any ? [] : requested.filter((h) => !headers.names.has(h));
    if (refused.length > 0) return `request headers not allowed: ${refused.join(", ")}`;
    return undefined;
  };

  const allowedResponse = (origin: string) => {
    const set: Record<string, string> = { "access-control-allow-origin": allowOrigin(origin) };
    if (credentials) set["access-control-allow-credentials"] = "true";
    if (exposed.value) set["access-control-expose-headers"] = exposed.value;
    return set;
  };

  return {
    onRequest(ctx) {
      const origin = ctx.headers.get("origin");
      const method = ctx.headers.get("access-control-request-method");
      if (ctx.method !== "OPTIONS" || origin === undefined || method === undefined) return undefined;
      const requested = ctx.headers.get("access-control-request-headers");
      const problem = preflightProblem(origin, method, splitList(requested));
      if (problem === undefined) return preflightAnswer(origin, requested);
      if (params.forwardPreflight) return undefined;
      return reject(403, "cors_rejected", `CORS preflight refused: ${problem}`);
    },
    onResponse(ctx) {
      const origin = ctx.requestHeaders.get("origin");
      const allowed = origin !== undefined && matches(origin);
      return new UpstreamResponseModifications({
        removeHeaders: CORS_RESPONSE_HEADERS,
        setHeaders: allowed ? allowedResponse(origin) : undefined,
        appendHeaders: vary.length > 0 && !variesByOrigin(ctx.responseHeaders) ? { vary } : undefined,
      });
    },
  };
};
