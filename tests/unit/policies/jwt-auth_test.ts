/** jwt-auth: token lookup, every algorithm, claim checks, errors, caching, key sources. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { UpstreamRequestModifications } from "@tollgate/sdk";
import {
  authPolicy,
  clientRequest,
  examples,
  instantiate,
  passes,
  refusal,
  request,
} from "./auth_support.ts";
import { hmacToken, segment, testKey } from "./jwt_keys.ts";

const SECRET = "a-test-secret-of-at-least-32-bytes!";
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

Deno.test("jwt-auth: every example builds", async () => {
  for (const example of await examples("jwt-auth")) {
    await (await authPolicy(example.name, example.parameters)).close();
  }
});

Deno.test("jwt-auth: a valid token passes, with its claims in shared metadata and mapped headers", async () => {
  const key = await testKey("RS256");
  await using policy = await authPolicy("jwt-auth", {
    jwks: { keys: [key.jwk] },
    claimMappings: { sub: "X-User-Id", roles: "x-roles" },
    removeToken: true,
  });
  const token = await key.sign({ roles: ["a", "b"], sub: "user-1\r\nx-admin: 1" });
  const result = await policy.request(
    clientRequest({ ...bearer(token), "x-user-id": "forged", "x-roles": "admin" }),
  );
  assert.deepEqual(
    result.upstream?.headers.toJSON(),
    { "x-user-id": ["user-1  x-admin: 1"], "x-roles": ['["a","b"]'] },
    "client copies of mapped headers and the token are removed",
  );
  const auth = result.metadata.auth as { method: string; subject: string; claims: { roles: string[] } };
  assert.equal(auth.method, "jwt");
  assert.equal(auth.subject, "user-1  x-admin: 1");
  assert.deepEqual(auth.claims.roles, ["a", "b"]);
});

Deno.test("jwt-auth: with nothing to map or remove, a valid token passes the request unchanged", async () => {
  const key = await testKey("ES256");
  await using policy = await authPolicy("jwt-auth", { jwks: { keys: [key.jwk] } });
  const token = await key.sign();
  const result = await policy.request(clientRequest(bearer(token)));
  assert.equal(result.trace[0].outcome, "passed");
  assert.deepEqual(result.upstream?.headers.toJSON(), { authorization: [`Bearer ${token}`] });
  assert.equal((result.metadata.auth as { subject: string }).subject, "user-1");
});

Deno.test("jwt-auth: RS256, RS384, PS256, ES256, ES384, EdDSA and HS256 verify", async () => {
  const algs = ["RS256", "RS384", "PS256", "ES256", "ES384", "EdDSA"];
  const keys = await Promise.all(algs.map((alg) => testKey(alg)));
  await using policy = await authPolicy("jwt-auth", {
    jwks: { keys: keys.map((k) => k.jwk) },
    secret: SECRET,
    allowedAlgorithms: [...algs, "HS256"],
  });
  for (const key of keys) {
    const result = await policy.request(clientRequest(bearer(await key.sign())));
    assert.ok(passes(result), key.alg);
    assert.equal((result.metadata.auth as { subject: string }).subject, "user-1", key.alg);
  }
  const hmac = await policy.request(clientRequest(bearer(await hmacToken(SECRET))));
  assert.ok(passes(hmac), "HS256");
  assert.ok(hmac.metadata.auth, "HS256");
});

Deno.test("jwt-auth: no token is 401 with a realm challenge and no error code (RFC 6750)", async () => {
  const key = await testKey("ES256");
  await using policy = await authPolicy("jwt-auth", { jwks: { keys: [key.jwk] }, realm: "orders" });
  for (const headers of [{}, { authorization: "Basic dXNlcjpwYXNz" }] as Record<string, string>[]) {
    const answer = refusal(await policy.request(clientRequest(headers)));
    assert.equal(answer.status, 401);
    assert.equal(answer.headers["www-authenticate"], 'Bearer realm="orders"');
    assert.deepEqual(answer.body, { error: "missing_token", message: "a bearer token is required" });
  }
});

Deno.test("jwt-auth: malformed, unsigned and wrongly signed tokens are 401 invalid_token, never a throw", async () => {
  const key = await testKey("RS256");
  const other = await testKey("RS256");
  await using policy = await authPolicy("jwt-auth", { jwks: { keys: [key.jwk] } });
  const unsigned = `${segment({ alg: "none" })}.${segment({ sub: "admin" })}.`;
  const forged = (await key.sign()).split(".").slice(0, 2).join(".") + "." +
    (await other.sign()).split(".")[2];
  const hmacWithPublicKey = await hmacToken(JSON.stringify(key.jwk));
  const tokens = [
    "",
    "garbage",
    "a.b.c",
    "...",
    `${segment({ alg: "RS256" })}.%%%.x`,
    unsigned,
    forged,
    hmacWithPublicKey,
    "x".repeat(10_000),
  ];
  for (const token of tokens) {
    const answer = refusal(await policy.request(clientRequest(bearer(token))));
    assert.equal(answer.status, 401, token.slice(0, 40));
    assert.equal((answer.body as { error: string }).error, "invalid_token");
    assert.match(
      String(answer.headers["www-authenticate"]),
      /^Bearer realm="api", error="invalid_token", error_description="/,
    );
  }
});

Deno.test("jwt-auth: exp and nbf are checked with the configured leeway", async () => {
  const key = await testKey("ES256");
  await using policy = await authPolicy("jwt-auth", { jwks: { keys: [key.jwk] }, leeway: "60s" });
  const now = Math.floor(Date.now() / 1000);
  const check = async (claims: Record<string, number>) =>
    await policy.request(clientRequest(bearer(await key.sign(claims))));
  assert.ok(
    passes(await check({ exp: now - 30 })),
    "expired within the leeway",
  );
  const expired = refusal(await check({ exp: now - 120 }));
  assert.deepEqual(expired.body, { error: "invalid_token", message: "the token has expired" });
  assert.ok(passes(await check({ nbf: now + 30 })), "nbf within the leeway");
  assert.equal(refusal(await check({ nbf: now + 120 })).status, 401);
});

Deno.test("jwt-auth: issuer, audience, required claims and scopes", async () => {
  const key = await testKey("ES256");
  await using policy = await authPolicy("jwt-auth", {
    jwks: { keys: [key.jwk] },
    issuers: ["https://idp.test/"],
    audiences: ["orders"],
    requiredClaims: { tenant: "acme" },
    requiredScopes: ["orders:read"],
  });
  const good = { iss: "https://idp.test/", aud: "orders", tenant: "acme", scope: "orders:read other" };
  const run = async (claims: Record<string, unknown>) =>
    await policy.request(clientRequest(bearer(await key.sign(claims))));
  assert.ok(passes(await run(good)));
  assert.ok(
    passes(await run({ ...good, scope: undefined, scp: ["orders:read"] })),
  );
  for (
    const bad of [{ iss: "https://evil.test/" }, { aud: "billing" }, { tenant: "other" }, {
      tenant: undefined,
    }]
  ) {
    const answer = refusal(await run({ ...good, ...bad }));
    assert.equal(answer.status, 401, JSON.stringify(bad));
  }
  const audience = refusal(await run({ ...good, aud: "billing" }));
  assert.deepEqual(audience.body, { error: "invalid_token", message: 'unexpected "aud" claim value' });
  assert.equal(
    audience.headers["www-authenticate"],
    `Bearer realm="api", error="invalid_token", error_description="unexpected 'aud' claim value"`,
    "RFC 6750: no double quote inside error_description",
  );
  const scope = refusal(await run({ ...good, scope: "other" }));
  assert.equal(scope.status, 403);
  assert.equal(
    scope.headers["www-authenticate"],
    'Bearer realm="api", error="insufficient_scope", scope="orders:read"',
  );
  await using named = await authPolicy("jwt-auth", { jwks: { keys: [key.jwk] }, requiredClaims: ["email"] });
  assert.equal(refusal(await named.request(clientRequest(bearer(await key.sign())))).status, 401);
  const withEmail = await named.request(clientRequest(bearer(await key.sign({ email: "a@b.c" }))));
  assert.ok(passes(withEmail));
});

Deno.test("jwt-auth: only allowed algorithms are accepted", async () => {
  const rsa = await testKey("RS256");
  const ec = await testKey("ES256");
  await using policy = await authPolicy("jwt-auth", {
    jwks: { keys: [rsa.jwk, ec.jwk] },
    allowedAlgorithms: ["ES256"],
  });
  assert.ok(
    passes(await policy.request(clientRequest(bearer(await ec.sign())))),
  );
  assert.equal(refusal(await policy.request(clientRequest(bearer(await rsa.sign())))).status, 401);
});

Deno.test("jwt-auth: a token from a cookie, removed from the cookie header when removeToken is set", async () => {
  const key = await testKey("ES256");
  await using policy = await authPolicy("jwt-auth", {
    jwks: { keys: [key.jwk] },
    cookieName: "session",
    removeToken: true,
  });
  const token = await key.sign();
  const result = await policy.request(
    clientRequest({ cookie: `a=1; session=${token}; b=2`, authorization: "Basic dXNlcjpwYXNz" }),
  );
  assert.deepEqual(
    result.upstream?.headers.toJSON(),
    { cookie: ["a=1; b=2"], authorization: ["Basic dXNlcjpwYXNz"] },
    "an Authorization header of another scheme is left alone",
  );
  const only = await policy.request(clientRequest({ cookie: `session=${token}` }));
  assert.equal(only.upstream?.headers.has("cookie"), false);
});

// Caching happens inside one instance: this calls it directly to see which calls verify.
Deno.test("jwt-auth: a repeated token is served from the cache; the cache is bounded", async () => {
  const key = await testKey("ES256");
  const policy = await instantiate("jwt-auth", {
    jwks: { keys: [key.jwk] },
    cacheSize: 1,
    claimMappings: { sub: "x-sub" },
  });
  const [a, b] = [await key.sign({ sub: "a" }), await key.sign({ sub: "b" })];
  const first = await policy.onRequest!(request(bearer(a)), {});
  const again = policy.onRequest!(request(bearer(a)), {});
  assert.ok(!(again instanceof Promise), "a cache hit answers synchronously");
  assert.ok(first instanceof UpstreamRequestModifications);
  assert.equal(again, first, "the cached outcome itself");
  await policy.onRequest!(request(bearer(b)), {});
  const evicted = policy.onRequest!(request(bearer(a)), {});
  assert.ok(evicted instanceof Promise, "a was dropped when b came in (cacheSize 1)");
  const noCache = await instantiate("jwt-auth", { jwks: { keys: [key.jwk] }, cacheMaxAge: "0ms" });
  await noCache.onRequest!(request(bearer(a)), {});
  assert.ok(
    noCache.onRequest!(request(bearer(a)), {}) instanceof Promise,
    "cacheMaxAge 0 verifies every time",
  );
});

Deno.test("jwt-auth: HMAC secrets from the route, a file or the engine config; bad key setups fail the build", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const secretFile = join(dir, "secret");
    await Deno.writeTextFile(secretFile, `${SECRET}\n`);
    const jwksFile = join(dir, "jwks.json");
    const key = await testKey("ES256");
    await Deno.writeTextFile(jwksFile, JSON.stringify({ keys: [key.jwk] }));
    const token = await hmacToken(SECRET);
    for (
      const [parameters, policyConfig] of [
        [{ allowedAlgorithms: ["HS256"], secret: SECRET }, {}],
        [{ allowedAlgorithms: ["HS256"], secretFile }, {}],
        [{ allowedAlgorithms: ["HS256"] }, { jwtAuth: { secret: SECRET } }],
      ]
    ) {
      await using policy = await authPolicy("jwt-auth", parameters, policyConfig);
      assert.ok(passes(await policy.request(clientRequest(bearer(token)))), JSON.stringify(parameters));
    }
    await using fromFile = await authPolicy("jwt-auth", { jwksFile });
    assert.ok(
      passes(await fromFile.request(clientRequest(bearer(await key.sign())))),
    );
    const refused: [Record<string, unknown>, RegExp][] = [
      [{}, /configure a key/],
      [{ allowedAlgorithms: ["HS256"], secret: "short" }, /at least 32 bytes \(it has 5\)/],
      [{ allowedAlgorithms: ["HS256"], jwksFile }, /HS256 but no secret/],
      [{ secret: SECRET }, /lacks HS256/],
      [{ jwksFile, jwks: { keys: [key.jwk] } }, /only one of jwks, jwksFile and jwksUrl/],
      [{ jwks: { keys: [{ ...key.jwk, alg: "RS256" }] } }, /jwks is not a valid JWKS/],
      [{ jwks: { keys: [{ kid: "no-kty" }] } }, /jwks is not a valid JWKS/],
    ];
    for (const [parameters, message] of refused) {
      await assert.rejects(authPolicy("jwt-auth", parameters), message, JSON.stringify(parameters));
    }
    await assert.rejects(
      authPolicy("jwt-auth", { allowedAlgorithms: ["none"], jwksFile }),
      /must be one of/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
