/**
 * The benchmark's scenarios: what runs behind Envoy, the policy chain, and the request the
 * load generator sends. Every scenario uses one Envoy route named `bench`.
 */
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { RedisServer } from "../../tests/support/redis.ts";
import type { Running } from "./running.ts";

/** What serves ext_proc for a scenario; `go-…` are the compiled reference (scripts/bench/go/). */
export type ServerKind = "none" | "passthrough" | "tollgate" | "go-passthrough" | "go-headers-5";

/** One policy of a Tollgate chain, as written in the engine config. */
export interface PolicyRef {
  readonly name: string;
  readonly version: string;
  readonly parameters?: Record<string, unknown>;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly server: ServerKind;
  /** The `bench` route's chain (Tollgate scenarios only). */
  readonly policies?: readonly PolicyRef[];
  /**
   * The compiled reference scenario doing the same work, run along with this one: the
   * report gives this scenario's server CPU per request as a ratio to it.
   */
  readonly reference?: string;
  /** Request body: a JSON document of exactly this many bytes, sent with POST. */
  readonly bodyBytes?: number;
  /** Request headers (`name: value`) sent with every request of this scenario, besides CLIENT_HEADER. */
  readonly headers?: readonly string[];
  /** Hosts (`host:port`) the engine's permission scope grants the chain's policies (a Redis server). */
  readonly policyHosts?: readonly string[];
  /**
   * Makes or starts, once at bench start, what the scenario needs (keys and a token, a
   * server): the scenario to run with them, and how to release them.
   */
  readonly prepare?: () => Promise<Prepared>;
  /**
   * Whether one request shows the chain's effect: `saw` holds the request headers the
   * upstream received (see REFLECTED in envoy.ts; "-" when absent). Returns a problem or
   * undefined.
   */
  readonly check: (saw: Record<string, string>, response: Headers) => string | undefined;
  /** The upstream: Envoy's direct response (default) or the SSE stream of scripts/bench/sse_upstream.ts. */
  readonly upstream?: "direct" | "sse";
  /** Checks the response body of one request (read whole); returns a problem or undefined. */
  readonly checkBody?: (body: string) => string | undefined;
  /** Measure the time to the first response byte (sequential requests after the load phases). */
  readonly timeToFirstByte?: boolean;
  /** The scenario whose time to first byte this one's is compared with (run along with it). */
  readonly firstByteBaseline?: string;
  /**
   * ext_proc messages per request that are not body chunks (headers): the rest are chunks,
   * which the report divides the server's CPU by (streaming scenarios).
   */
  readonly headerMessages?: number;
}

/** A scenario made ready to run by its `prepare`. */
export interface Prepared {
  readonly scenario: Scenario;
  release(): Promise<void>;
}

export const ROUTE = "bench";

/** Sent with every request, for `headers-5ts` to remove. */
export const CLIENT_HEADER = "x-client-debug: 1";

/** Every header a scenario's requests carry (`name: value`). */
export function requestHeaders(scenario: Scenario): string[] {
  return [CLIENT_HEADER, ...(scenario.headers ?? [])];
}

const setHeaders = (request: string, response?: string): PolicyRef => ({
  name: "set-headers",
  version: "v1",
  parameters: {
    requestHeaders: [{ name: request, value: "bench" }],
    ...(response ? { responseHeaders: [{ name: response, value: "bench" }] } : {}),
  },
});

const removeHeaders = (request: string, response: string): PolicyRef => ({
  name: "remove-headers",
  version: "v1",
  parameters: { requestHeaders: [{ name: request }], responseHeaders: [{ name: response }] },
});

/** A problem unless every `[actual, wanted, what]` matches. */
function expect(...checks: [string | null | undefined, string | null, string][]): string | undefined {
  const wrong = checks.filter(([actual, wanted]) => (actual ?? null) !== wanted);
  return wrong.length === 0
    ? undefined
    : wrong.map(([actual, wanted, what]) => `${what} is ${actual}, expected ${wanted}`).join("; ");
}

/** Nothing changed: the client's header reached the upstream, no policy header did. */
const unchanged: Scenario["check"] = (saw) =>
  expect([saw["x-client-debug"], "1", "x-client-debug"], [saw["x-bench-3"], "-", "x-bench-3"]);

/** The net effect of the five header policies (headers-5ts, and go-headers-5 doing the same). */
function fiveHeadersCheck(saw: Record<string, string>, response: Headers): string | undefined {
  return expect(
    [saw["x-bench-3"], "bench", "x-bench-3"],
    [saw["x-client-debug"], "-", "x-client-debug"],
    [response.get("x-bench-r1"), "bench", "response x-bench-r1"],
    [response.get("x-bench-r3"), "bench", "response x-bench-r3"],
    [response.get("x-upstream"), null, "response x-upstream"],
  );
}

/** A problem unless the body is the SSE upstream's EVENTS events, without their `usage` fields. */
function filteredEvents(body: string): string | undefined {
  const events = body.split("\n\n").filter((e) => e.length > 0);
  if (events.length !== SSE_EVENTS) return `${events.length} events, expected ${SSE_EVENTS}`;
  return events.some((e) => e.includes("usage")) ? "an event still has its usage field" : undefined;
}

/** Events per response of the SSE upstream (scripts/bench/sse_upstream.ts). */
const SSE_EVENTS = 100;

export const SCENARIOS: readonly Scenario[] = [
  {
    name: "baseline",
    description: "Envoy alone, no ext_proc filter (the ceiling)",
    server: "none",
    check: unchanged,
  },
  {
    name: "passthrough",
    description: "ext_proc to a minimal grpc-js server answering CONTINUE (the transport's floor)",
    server: "passthrough",
    check: unchanged,
  },
  {
    name: "go-passthrough",
    description: "ext_proc to a compiled Go server (grpc-go) answering CONTINUE (a compiled engine's floor)",
    server: "go-passthrough",
    check: unchanged,
  },
  {
    name: "go-headers-5",
    description: "the compiled Go server doing headers-5ts's header changes (a compiled engine's cost)",
    server: "go-headers-5",
    check: (saw, response) => fiveHeadersCheck(saw, response),
  },
  {
    name: "empty-chain",
    description: "Tollgate, route with no policies",
    server: "tollgate",
    policies: [],
    reference: "go-passthrough",
    check: unchanged,
  },
  {
    name: "headers-5ts",
    description: "five TypeScript header policies, setting and removing request and response headers",
    server: "tollgate",
    policies: [
      setHeaders("x-bench-1", "x-bench-r1"),
      removeHeaders("x-client-debug", "x-upstream"),
      setHeaders("x-bench-2", "x-bench-r2"),
      removeHeaders("x-bench-1", "x-bench-r1"),
      setHeaders("x-bench-3", "x-bench-r3"),
    ],
    reference: "go-headers-5",
    check: (saw, response) => fiveHeadersCheck(saw, response),
  },
  {
    name: "python-1",
    description: "one Python header policy",
    server: "tollgate",
    policies: [{ name: "add-python-header", version: "v1" }],
    check: (saw) => expect([saw["x-python-policy"], "hello-from-python", "x-python-policy"]),
  },
  {
    name: "mixed-body",
    description: "TypeScript → Python → TypeScript, a 4 KB JSON request body rewritten",
    server: "tollgate",
    policies: [
      setHeaders("x-bench-3"),
      {
        name: "json-body-rewrite",
        version: "v1",
        parameters: { rename: { customer: "client" }, remove: ["internalNote"], set: { source: "bench" } },
      },
      { name: "replace-body", version: "v1", parameters: { add: { checked: true } } },
    ],
    bodyBytes: 4 * 1024,
    check: (saw) =>
      expect([saw["x-bench-3"], "bench", "x-bench-3"], [
        saw["content-length"],
        String(MIXED_BODY_OUT),
        "body bytes",
      ]),
  },
  {
    name: "body-64k",
    description: "a buffered 64 KB JSON request body read by a TypeScript policy",
    server: "tollgate",
    policies: [{ name: "json-fields", version: "v1" }],
    bodyBytes: 64 * 1024,
    check: (saw) => expect([saw["x-json-fields"], "5", "x-json-fields"]),
  },
  {
    name: "jwt-rs256",
    description: "jwt-auth with an inline RS256 JWKS; every request carries the same valid token",
    server: "tollgate",
    prepare: prepareJwt,
    // The subject claim reaches the upstream as a header only if the token was verified.
    check: (saw) => expect([saw["x-bench-3"], JWT_SUBJECT, "x-bench-3 (the token's sub)"]),
  },
  {
    name: "rate-limit-redis",
    description: "rate-limit with the redis store (a real redis-server) and a limit that is never hit",
    server: "tollgate",
    prepare: prepareRedisLimit,
    check: (_saw, response) =>
      expect(
        [response.get("ratelimit-limit"), String(NEVER_HIT), "response RateLimit-Limit"],
        [response.get("ratelimit-policy"), `${NEVER_HIT};w=1`, "response RateLimit-Policy"],
      ),
  },
  {
    name: "sse-baseline",
    description:
      `Envoy alone in front of an upstream streaming ${SSE_EVENTS} SSE events per response (1 ms apart)`,
    server: "none",
    upstream: "sse",
    timeToFirstByte: true,
    check: (_saw, response) => expect([response.get("x-upstream"), "bench", "response x-upstream"]),
    checkBody: (body) =>
      body.split("\n\n").filter((e) => e.includes("usage")).length === SSE_EVENTS
        ? undefined
        : "not every event arrived with its usage field",
  },
  {
    name: "sse-stream",
    description:
      `sse-filter (TypeScript, streamed by SSE event) removing a field from ${SSE_EVENTS} events per response`,
    server: "tollgate",
    policies: [{ name: "sse-filter", version: "v1", parameters: { removeFields: ["$.usage"] } }],
    upstream: "sse",
    timeToFirstByte: true,
    firstByteBaseline: "sse-baseline",
    headerMessages: 2,
    check: (_saw, response) => expect([response.get("content-length"), null, "response content-length"]),
    checkBody: filteredEvents,
  },
  {
    name: "upload-1m-stream",
    description: "a 1 MB request body streamed through body-regex-redact (TypeScript, request only)",
    server: "tollgate",
    policies: [{
      name: "body-regex-redact",
      version: "v1",
      parameters: { patterns: ["\\b\\d{16}\\b"], response: false },
    }],
    bodyBytes: 1_000_000,
    headerMessages: 1,
    check: (saw) => expect([saw["x-client-debug"], "1", "x-client-debug"]),
  },
];

const JWT_SUBJECT = "bench-user";

/** An RS256 key pair and one token signed with it, valid for a day (longer than any bench). */
async function prepareJwt(): Promise<Prepared> {
  const scenario = SCENARIOS.find((s) => s.name === "jwt-rs256")!;
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "bench", alg: "RS256", use: "sig" };
  const token = await new SignJWT({ scope: "bench" })
    .setProtectedHeader({ alg: "RS256", kid: "bench" })
    .setIssuer("https://idp.bench/")
    .setAudience("bench-api")
    .setSubject(JWT_SUBJECT)
    .setIssuedAt()
    .setExpirationTime("1d")
    .sign(privateKey);
  return {
    scenario: {
      ...scenario,
      policies: [{
        name: "jwt-auth",
        version: "v1",
        parameters: {
          jwks: { keys: [jwk] },
          allowedAlgorithms: ["RS256"],
          issuers: ["https://idp.bench/"],
          audiences: ["bench-api"],
          claimMappings: { sub: "x-bench-3" },
        },
      }],
      headers: [`authorization: Bearer ${token}`],
    },
    release: () => Promise.resolve(),
  };
}

/** Requests per second the `rate-limit-redis` limit allows per key: far above any load here. */
const NEVER_HIT = 1_000_000_000;

/** A redis-server for the whole bench session, granted to the engine. */
async function prepareRedisLimit(): Promise<Prepared> {
  const scenario = SCENARIOS.find((s) => s.name === "rate-limit-redis")!;
  const redis = await RedisServer.start();
  return {
    scenario: {
      ...scenario,
      policies: [{
        name: "rate-limit",
        version: "v1",
        parameters: {
          backend: "redis",
          limits: [{ limit: NEVER_HIT, duration: "1s" }],
          keyExtraction: [{ type: "ip" }],
          redis: { host: "127.0.0.1", port: redis.port },
        },
      }],
      policyHosts: [redis.address],
    },
    release: () => redis.stop(),
  };
}

/**
 * Every scenario ready to run: those with a `prepare` made ready. What they start is
 * registered with `running`, so it is released with everything else when the bench ends,
 * also on failure or interrupt.
 */
export async function prepareScenarios(
  scenarios: readonly Scenario[],
  running: Running,
): Promise<Scenario[]> {
  const ready: Scenario[] = [];
  for (const scenario of scenarios) {
    if (!scenario.prepare) {
      ready.push(scenario);
      continue;
    }
    const prepared = await scenario.prepare();
    running.add(() => prepared.release());
    ready.push(prepared.scenario);
  }
  return ready;
}

/** A JSON object of exactly `bytes` bytes with the fields `mixed-body` rewrites. */
export function jsonBody(bytes: number): Uint8Array<ArrayBuffer> {
  const document = {
    id: 42,
    customer: "ACME Corp",
    internalNote: "not for the upstream",
    items: Array.from({ length: 8 }, (_, i) => ({ sku: `SKU-${i}`, quantity: i + 1 })),
    padding: "",
  };
  const size = JSON.stringify(document).length;
  if (size > bytes) throw new Error(`a body of ${bytes} bytes is too small for the document`);
  document.padding = "x".repeat(bytes - size);
  return new TextEncoder().encode(JSON.stringify(document));
}

/** The scenarios named in `names` with their compiled references (all when empty); unknown names throw. */
export function selectScenarios(names: readonly string[]): Scenario[] {
  const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length > 0) {
    throw new Error(
      `unknown scenario ${unknown.join(", ")} (known: ${SCENARIOS.map((s) => s.name).join(", ")})`,
    );
  }
  const references = SCENARIOS.filter((s) => names.includes(s.name)).flatMap((s) => [
    ...(s.reference ? [s.reference] : []),
    ...(s.firstByteBaseline ? [s.firstByteBaseline] : []),
  ]);
  const wanted = new Set([...names, ...references]);
  return SCENARIOS.filter((s) => names.length === 0 || wanted.has(s.name));
}

/** Size of the `mixed-body` request after its chain: Python renames, removes and sets, then TypeScript adds. */
function mixedBodyOut(): number {
  const { customer, internalNote: _, ...rest } = JSON.parse(new TextDecoder().decode(jsonBody(4 * 1024)));
  const afterPython = JSON.stringify({ ...rest, client: customer, source: "bench" });
  return JSON.stringify({ ...JSON.parse(afterPython), checked: true, originalLength: afterPython.length })
    .length;
}

const MIXED_BODY_OUT = mixedBodyOut();
