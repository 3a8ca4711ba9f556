import assert from "node:assert/strict";
import { policy } from "../../support/policies.ts";

const origins = [
  "https://app.example.com",
  "https://*.preview.example.com",
  "^https://t-[0-9]+\\.example\\.com$",
];

const preflight = (origin: string, method = "PUT", headers?: string) => ({
  method: "OPTIONS",
  headers: {
    origin,
    "access-control-request-method": method,
    ...(headers ? { "access-control-request-headers": headers } : {}),
  },
});

Deno.test("cors: an allowed preflight is answered 204 with the CORS headers and Vary", async () => {
  await using cors = await policy("cors", {
    allowedOrigins: origins,
    allowedHeaders: ["Content-Type", "X-Trace"],
    allowCredentials: true,
    maxAge: 600,
  });
  const answer = await cors.request(preflight("https://app.example.com", "PUT", "content-type, x-trace"));
  assert.equal(answer.upstream, undefined, "a preflight is answered by Tollgate");
  assert.equal(answer.immediate?.status, 204);
  assert.deepEqual(answer.response.headers.toJSON(), {
    "access-control-allow-origin": ["https://app.example.com"],
    "access-control-allow-methods": ["GET, POST, PUT, DELETE, OPTIONS"],
    "access-control-allow-headers": ["Content-Type, X-Trace"],
    "access-control-allow-credentials": ["true"],
    "access-control-max-age": ["600"],
    vary: ["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"],
  });
});

Deno.test("cors: a preflight with a refused origin, method or header gets 403 JSON, or passes with forwardPreflight", async () => {
  await using cors = await policy("cors", { allowedOrigins: origins, allowedMethods: ["GET", "PUT"] });
  for (
    const [request, reason] of [
      [preflight("https://evil.example"), "origin https://evil.example is not allowed"],
      [preflight("https://app.example.com", "DELETE"), "method DELETE is not allowed"],
      [preflight("https://app.example.com", "PUT", "x-secret"), "request headers not allowed: x-secret"],
    ] as const
  ) {
    const answer = await cors.request(request);
    assert.equal(answer.immediate?.status, 403);
    assert.deepEqual(answer.response.json(), {
      error: "cors_rejected",
      message: `CORS preflight refused: ${reason}`,
    });
    assert.equal(answer.response.headers.has("access-control-allow-origin"), false);
  }
  await using forwarding = await policy("cors", { allowedOrigins: origins, forwardPreflight: true });
  const forwarded = await forwarding.request(preflight("https://evil.example"));
  assert.equal(forwarded.immediate, undefined);
  assert.equal(forwarded.upstream?.method, "OPTIONS", "the preflight goes upstream");
});

Deno.test("cors: OPTIONS without Access-Control-Request-Method, and other methods, pass untouched", async () => {
  await using cors = await policy("cors", { allowedOrigins: origins });
  for (const [method, origin] of [["OPTIONS", "https://app.example.com"], ["GET", "https://evil.example"]]) {
    const result = await cors.request({ method, headers: { origin } });
    assert.equal(result.immediate, undefined, method);
    assert.deepEqual(result.upstream?.headers.toJSON(), { origin: [origin] }, "the request is untouched");
    assert.equal(result.trace[0].outcome, "passed");
  }
});

Deno.test("cors: origins match exactly, by wildcard subdomain or by a whole-origin RE2 regex", async () => {
  await using cors = await policy("cors", { allowedOrigins: origins });
  const allowed = async (origin: string) => (await cors.request(preflight(origin))).immediate?.status === 204;
  assert.equal(await allowed("https://app.example.com"), true);
  assert.equal(await allowed("HTTPS://APP.EXAMPLE.COM"), true, "compared lower-cased");
  assert.equal(await allowed("http://app.example.com"), false, "scheme matters");
  assert.equal(await allowed("https://app.example.com:8443"), false, "port matters");
  assert.equal(await allowed("https://a.preview.example.com"), true);
  assert.equal(await allowed("https://a.b.preview.example.com"), true);
  assert.equal(await allowed("https://preview.example.com"), false, "a wildcard needs a subdomain");
  assert.equal(await allowed("https://evil.com/.preview.example.com"), false);
  assert.equal(await allowed("https://t-42.example.com"), true);
  assert.equal(
    await allowed("https://t-42.example.com.evil.net"),
    false,
    "the regex must match the whole origin",
  );
  assert.equal(await allowed("https://app.example.com, https://evil.example"), false, "two Origin values");
});

Deno.test("cors: the response of an allowed origin gets its CORS headers; upstream CORS headers are replaced", async () => {
  await using cors = await policy("cors", {
    allowedOrigins: origins,
    exposedHeaders: ["X-Total"],
    allowCredentials: true,
  });
  const result = await cors.request({ headers: { origin: "https://app.example.com" } }, {
    headers: { "access-control-allow-origin": "*", "access-control-max-age": "9", vary: "Accept-Encoding" },
  });
  assert.deepEqual(result.response.headers.toJSON(), {
    vary: ["Accept-Encoding", "Origin"],
    "access-control-allow-origin": ["https://app.example.com"],
    "access-control-allow-credentials": ["true"],
    "access-control-expose-headers": ["X-Total"],
  });
});

Deno.test("cors: a disallowed origin, or none, gets no CORS headers but Vary: Origin (once)", async () => {
  await using cors = await policy("cors", { allowedOrigins: origins });
  const refused = await cors.request({ headers: { origin: "https://evil.example" } }, {
    headers: { "access-control-allow-origin": "https://evil.example" },
  });
  assert.deepEqual(
    refused.response.headers.toJSON(),
    { vary: ["Origin"] },
    "the upstream's header is removed",
  );
  const none = await cors.request({}, { headers: { vary: "accept-encoding, origin" } });
  assert.deepEqual(
    none.response.headers.getAll("vary"),
    ["accept-encoding, origin"],
    "already varies by origin",
  );
});

Deno.test("cors: allowedOrigins * without credentials answers * and needs no Vary", async () => {
  await using cors = await policy("cors", { allowedOrigins: ["*"], allowedHeaders: ["*"] });
  const answer = await cors.request(preflight("https://any.example", "POST", "x-anything"));
  assert.equal(answer.immediate?.status, 204);
  assert.equal(answer.response.headers.get("access-control-allow-origin"), "*");
  assert.equal(
    answer.response.headers.get("access-control-allow-headers"),
    "x-anything",
    "the requested names: a literal * would not cover Authorization",
  );
  const result = await cors.request({ headers: { origin: "https://any.example" } });
  assert.equal(result.response.headers.get("access-control-allow-origin"), "*");
  assert.equal(result.response.headers.has("vary"), false);
});

Deno.test("cors: config errors at chain build: * with credentials, an origin with a path, a bad regex", async () => {
  for (
    const [parameters, message] of [
      [{ allowedOrigins: ["*"], allowCredentials: true }, /allowedOrigins: "\*" cannot be combined/],
      [
        { allowedOrigins: ["https://a.com"], allowedHeaders: ["*"], allowCredentials: true },
        /allowedHeaders/,
      ],
      [
        { allowedOrigins: ["https://a.com"], exposedHeaders: ["*"], allowCredentials: true },
        /exposedHeaders/,
      ],
      [{ allowedOrigins: ["https://a.com/app"] }, /"https:\/\/a.com\/app" is not an origin/],
      [{ allowedOrigins: ["app.example.com"] }, /is not an origin/],
      [{ allowedOrigins: ["^https://(a"] }, /is not an RE2 regular expression/],
      [{ allowedOrigins: ["^https://(?=a)"] }, /is not an RE2 regular expression/],
      [{ allowedOrigins: ["https://a*.b.com"] }, /a wildcard must look like/],
    ] as const
  ) {
    await assert.rejects(policy("cors", parameters), message);
  }
});
