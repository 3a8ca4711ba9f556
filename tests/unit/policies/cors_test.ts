import assert from "node:assert/strict";
import { ImmediateResponse, UpstreamResponseModifications } from "../../../src/sdk/mod.ts";
import { immediateStatus, instantiate, jsonBody, onRequest, onResponse } from "../../support/policies.ts";

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
  const cors = await instantiate("cors", {
    allowedOrigins: origins,
    allowedHeaders: ["Content-Type", "X-Trace"],
    allowCredentials: true,
    maxAge: 600,
  });
  const answer = await onRequest(cors, preflight("https://app.example.com", "PUT", "content-type, x-trace"));
  assert.ok(answer instanceof ImmediateResponse);
  assert.equal(answer.statusCode, 204);
  assert.deepEqual(answer.headers, {
    "access-control-allow-origin": "https://app.example.com",
    "access-control-allow-methods": "GET, POST, PUT, DELETE, OPTIONS",
    "access-control-allow-headers": "Content-Type, X-Trace",
    "access-control-allow-credentials": "true",
    "access-control-max-age": "600",
    vary: ["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"],
  });
});

Deno.test("cors: a preflight with a refused origin, method or header gets 403 JSON, or passes with forwardPreflight", async () => {
  const cors = await instantiate("cors", { allowedOrigins: origins, allowedMethods: ["GET", "PUT"] });
  for (
    const [request, reason] of [
      [preflight("https://evil.example"), "origin https://evil.example is not allowed"],
      [preflight("https://app.example.com", "DELETE"), "method DELETE is not allowed"],
      [preflight("https://app.example.com", "PUT", "x-secret"), "request headers not allowed: x-secret"],
    ] as const
  ) {
    const answer = await onRequest(cors, request);
    assert.ok(answer instanceof ImmediateResponse);
    assert.equal(answer.statusCode, 403);
    assert.deepEqual(jsonBody(answer), {
      error: "cors_rejected",
      message: `CORS preflight refused: ${reason}`,
    });
    assert.equal(answer.headers?.["access-control-allow-origin"], undefined);
  }
  const forwarding = await instantiate("cors", { allowedOrigins: origins, forwardPreflight: true });
  assert.equal(await onRequest(forwarding, preflight("https://evil.example")), undefined);
});

Deno.test("cors: OPTIONS without Access-Control-Request-Method, and other methods, pass untouched", async () => {
  const cors = await instantiate("cors", { allowedOrigins: origins });
  assert.equal(
    await onRequest(cors, { method: "OPTIONS", headers: { origin: "https://app.example.com" } }),
    undefined,
  );
  assert.equal(
    await onRequest(cors, { method: "GET", headers: { origin: "https://evil.example" } }),
    undefined,
  );
});

Deno.test("cors: origins match exactly, by wildcard subdomain or by a whole-origin RE2 regex", async () => {
  const cors = await instantiate("cors", { allowedOrigins: origins });
  const allowed = async (origin: string) => immediateStatus(await onRequest(cors, preflight(origin))) === 204;
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
  const cors = await instantiate("cors", {
    allowedOrigins: origins,
    exposedHeaders: ["X-Total"],
    allowCredentials: true,
  });
  const action = await onResponse(cors, { headers: { origin: "https://app.example.com" } }, {
    headers: { "access-control-allow-origin": "*", vary: "Accept-Encoding" },
  });
  assert.ok(action instanceof UpstreamResponseModifications);
  assert.ok(action.removeHeaders?.includes("access-control-allow-origin"));
  assert.deepEqual(action.setHeaders, {
    "access-control-allow-origin": "https://app.example.com",
    "access-control-allow-credentials": "true",
    "access-control-expose-headers": "X-Total",
  });
  assert.deepEqual(action.appendHeaders, { vary: ["Origin"] });
});

Deno.test("cors: a disallowed origin, or none, gets no CORS headers but Vary: Origin (once)", async () => {
  const cors = await instantiate("cors", { allowedOrigins: origins });
  const refused = await onResponse(cors, { headers: { origin: "https://evil.example" } }, {
    headers: { "access-control-allow-origin": "https://evil.example" },
  });
  assert.ok(refused instanceof UpstreamResponseModifications);
  assert.equal(refused.setHeaders, undefined);
  assert.ok(
    refused.removeHeaders?.includes("access-control-allow-origin"),
    "the upstream's header is removed",
  );
  assert.deepEqual(refused.appendHeaders, { vary: ["Origin"] });
  const none = await onResponse(cors, {}, { headers: { vary: "accept-encoding, origin" } });
  assert.equal(
    none?.kind === "upstream-response" && none.appendHeaders,
    undefined,
    "already varies by origin",
  );
});

Deno.test("cors: allowedOrigins * without credentials answers * and needs no Vary", async () => {
  const cors = await instantiate("cors", { allowedOrigins: ["*"], allowedHeaders: ["*"] });
  const answer = await onRequest(cors, preflight("https://any.example", "POST", "x-anything"));
  assert.equal(answer?.kind, "immediate-response");
  assert.equal((answer as ImmediateResponse).headers?.["access-control-allow-origin"], "*");
  assert.equal(
    (answer as ImmediateResponse).headers?.["access-control-allow-headers"],
    "x-anything",
    "the requested names: a literal * would not cover Authorization",
  );
  const action = await onResponse(cors, { headers: { origin: "https://any.example" } });
  assert.ok(action instanceof UpstreamResponseModifications);
  assert.equal(action.setHeaders?.["access-control-allow-origin"], "*");
  assert.equal(action.appendHeaders, undefined);
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
    await assert.rejects(instantiate("cors", parameters), message);
  }
});
