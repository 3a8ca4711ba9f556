/**
 * The engine's schema annotations: `x-tollgate-secret` values redacted wherever parameters
 * are shown, `x-tollgate-access` values found for the permission check; both accepted by
 * Ajv's strict mode and checked there.
 */
import assert from "node:assert/strict";
import { createAjv, REDACTED } from "../../src/config/ajv.ts";
import { accessHost, urlHost } from "../../src/config/scope.ts";
import { generatedPolicies } from "../../src/gen/registry.ts";
import { scrubSecrets } from "../../src/observe/scrub.ts";
import { accessNeeds, redactSecrets, secretStrings } from "../../src/registry/annotations.ts";
import { PolicyRegistry } from "../../src/registry/registry.ts";

const schema = {
  type: "object",
  properties: {
    name: { type: "string" },
    token: { type: "string", "x-tollgate-secret": true },
    keys: {
      type: "array",
      items: {
        type: "object",
        properties: { caller: { type: "string" }, key: { type: "string", "x-tollgate-secret": true } },
      },
    },
    byName: { type: "object", additionalProperties: { type: "string", "x-tollgate-secret": true } },
    whole: { type: "object", "x-tollgate-secret": true },
    either: { anyOf: [{ type: "string", "x-tollgate-secret": true }, { type: "number" }] },
    url: { type: "string", "x-tollgate-access": "net" },
    files: { type: "array", items: { type: "string", "x-tollgate-access": "read" } },
  },
};

Deno.test("redactSecrets replaces every marked value, at any depth, and nothing else", () => {
  const value = {
    name: "shown",
    token: "s1",
    keys: [{ caller: "a", key: "s2" }, { caller: "b", key: "s3" }],
    byName: { x: "s4" },
    whole: { nested: "s5" },
    either: "s6",
    url: "https://idp.test/jwks",
  };
  assert.deepEqual(redactSecrets(schema, value), {
    name: "shown",
    token: REDACTED,
    keys: [{ caller: "a", key: REDACTED }, { caller: "b", key: REDACTED }],
    byName: { x: REDACTED },
    whole: REDACTED,
    either: REDACTED,
    url: "https://idp.test/jwks",
  });
  assert.equal(value.token, "s1", "the input is not changed");
});

Deno.test("accessNeeds lists the URLs and files the parameters name, with their paths", () => {
  assert.deepEqual(accessNeeds(schema, { url: "http://127.0.0.1:8080/k", files: ["/a", "/b"], name: "/c" }), [
    { kind: "net", segments: ["url"], value: "http://127.0.0.1:8080/k" },
    { kind: "read", segments: ["files", 0], value: "/a" },
    { kind: "read", segments: ["files", 1], value: "/b" },
  ]);
  assert.equal(urlHost("https://idp.test/jwks"), "idp.test:443");
  assert.equal(urlHost("http://127.0.0.1:8080/x"), "127.0.0.1:8080");
  assert.equal(urlHost("ftp://x"), undefined);
});

Deno.test("accessNeeds: a tcp object's host and port, only in the if/then branch the value takes", () => {
  const conditional = {
    type: "object",
    properties: {
      backend: { type: "string" },
      server: { type: "object", properties: { host: { type: "string" }, port: { type: "integer" } } },
    },
    if: { required: ["backend"], properties: { backend: { const: "remote" } } },
    then: { properties: { server: { "x-tollgate-access": "tcp" } } },
  };
  assert.doesNotThrow(() => createAjv().compile(conditional));
  const server = { host: "cache.internal", port: 6380 };
  assert.deepEqual(accessNeeds(conditional, { backend: "remote", server }), [
    { kind: "tcp", segments: ["server"], value: "cache.internal:6380" },
  ]);
  assert.deepEqual(
    accessNeeds(conditional, { backend: "local", server }),
    [],
    "the other branch needs nothing",
  );
  assert.deepEqual(accessNeeds(conditional, { server }), [], "no backend: the if does not hold");
  assert.deepEqual(accessNeeds(conditional, { backend: "remote", server: { host: "::1", port: 1 } }), [
    { kind: "tcp", segments: ["server"], value: "[::1]:1" },
  ]);
  assert.equal(
    accessHost({ kind: "tcp", segments: [], value: "cache.internal:6380" }),
    "cache.internal:6380",
  );
  assert.equal(accessHost({ kind: "net", segments: [], value: "https://idp.test/k" }), "idp.test:443");
  assert.equal(accessHost({ kind: "read", segments: [], value: "/k" }), undefined);
});

Deno.test("rate-limit needs its Redis server only with the redis backend; its password is redacted", () => {
  const found = new PolicyRegistry(generatedPolicies).find("rate-limit", "v1");
  assert.ok(found.ok);
  const limits = [{ limit: 10, duration: "1s" }];
  const redis = found.policy.parameters.resolve({
    backend: "redis",
    limits,
    redis: { host: "redis.internal", password: "redis-password-1" },
  }, {});
  assert.ok(redis.ok, JSON.stringify(redis));
  assert.deepEqual(redis.access, [{
    kind: "tcp",
    segments: ["parameters", "redis"],
    value: "redis.internal:6379",
  }], "the port's default counts");
  assert.equal((redis.shown.redis as Record<string, unknown>).password, REDACTED);
  assert.equal((redis.shown.redis as Record<string, unknown>).host, "redis.internal");
  assert.deepEqual(redis.secrets, ["redis-password-1"]);
  assert.equal((redis.params.redis as Record<string, unknown>).password, "redis-password-1");
  const memory = found.policy.parameters.resolve({ limits, redis: { host: "redis.internal" } }, {});
  assert.ok(memory.ok);
  assert.deepEqual(memory.access, [], "the memory backend (the default) connects to nothing");
});

Deno.test("Ajv accepts the annotations in strict mode and rejects a wrong value for them", () => {
  assert.doesNotThrow(() => createAjv().compile(schema));
  assert.throws(() => createAjv().compile({ type: "string", "x-tollgate-secret": "yes" }));
  assert.throws(() => createAjv().compile({ type: "string", "x-tollgate-access": "exec" }));
  assert.doesNotThrow(() => createAjv().compile({ type: "object", "x-tollgate-access": "tcp" }));
});

Deno.test("resolved parameters of the auth policies show secrets redacted, from routes and from policyConfig", () => {
  const registry = new PolicyRegistry(generatedPolicies);
  const resolve = (name: string, params: Record<string, unknown>, policyConfig = {}) => {
    const found = registry.find(name, "v1");
    assert.ok(found.ok);
    const resolved = found.policy.parameters.resolve(params, policyConfig);
    assert.ok(resolved.ok, JSON.stringify(resolved));
    return resolved;
  };
  const jwt = resolve("jwt-auth", {
    secret: "route-secret-route-secret-route-secret",
    allowedAlgorithms: ["HS256"],
  }, {
    jwtAuth: { secret: "config-secret-config-secret-config-secret" },
  });
  assert.equal(jwt.shown.secret, REDACTED);
  assert.equal(jwt.shown.secretFromConfig, REDACTED);
  assert.equal(jwt.params.secret, "route-secret-route-secret-route-secret", "the policy gets the real value");
  const keys = resolve("api-key-auth", { keys: [{ caller: "c", key: "k-0123456789abcdef" }] }, {
    apiKeyAuth: { keys: [{ caller: "d", key: "k-fedcba9876543210" }] },
  });
  assert.deepEqual(keys.shown.keys, [{ caller: "c", key: REDACTED }]);
  assert.equal(keys.shown.keysFromConfig, REDACTED);
  const users = resolve("basic-auth", { users: [{ username: "u", passwordHash: "$2a$10$x" }] });
  assert.deepEqual(users.shown.users, [{ username: "u", passwordHash: REDACTED }]);
  assert.doesNotMatch(JSON.stringify([jwt.shown, keys.shown, users.shown]), /secret-|k-0|k-f|\$2a/);
  const url = resolve("jwt-auth", { jwksUrl: "https://idp.test/jwks", jwksFile: "" });
  assert.deepEqual(url.access, [{
    kind: "net",
    segments: ["parameters", "jwksUrl"],
    value: "https://idp.test/jwks",
  }]);
});

Deno.test("secretStrings finds every secret string; scrubSecrets replaces them in messages", () => {
  const secrets = secretStrings(schema, {
    name: "shown",
    token: "s-token",
    keys: [{ caller: "a", key: "s-key" }],
    whole: { nested: "s-nested", list: ["s-item"] },
  });
  assert.deepEqual(secrets, ["s-token", "s-key", "s-nested", "s-item"]);
  assert.equal(
    scrubSecrets("bad s-token and s-token-2 near s-key; a", [...secrets, "s-token-2", "a"]),
    "bad <redacted> and <redacted> near <redacted>; a",
    "every occurrence, the longest first; values under 4 characters are left alone",
  );
});
