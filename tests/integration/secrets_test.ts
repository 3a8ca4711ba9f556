/**
 * Secrets in policy parameters (x-tollgate-secret) are never shown: /routes lists every
 * instance's parameters with secrets as "<redacted>", and the engine's log (startup, a
 * rejected reload with bad secret values, a policy's error quoting its secret) never
 * contains one.
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../support/engine_process.ts";
import { ExtProcClient, requestHeaders } from "../support/extproc_client.ts";
import { waitFor } from "../support/ports.ts";

const HMAC = "hmac-secret-that-is-long-enough-0001";
const CONFIG_HMAC = "hmac-secret-from-policy-config-0002";
const API_KEY = "api-key-secret-0003";
const HASH = "$2a$10$rvYhlzehn18OfuGtEJ7saenx.b5lwnAiHsJITGEqsp4JTpbpLtafa";
const LEAKED = "careless-policy-secret-0006";
const REDIS_PASSWORD = "redis-password-0007";
const SECRETS = [
  HMAC,
  CONFIG_HMAC,
  API_KEY,
  HASH,
  "plain-password-0004",
  "short-0005",
  LEAKED,
  REDIS_PASSWORD,
];

const config = (overrides: Record<string, unknown> = {}, leakyOverrides: Record<string, unknown> = {}) => ({
  policyConfig: { jwtAuth: { secret: CONFIG_HMAC } },
  routes: [{
    name: "secured",
    policies: [
      { name: "jwt-auth", version: "v1", parameters: { allowedAlgorithms: ["HS256"], secret: HMAC } },
      { name: "api-key-auth", version: "v1", parameters: { keys: [{ caller: "partner", key: API_KEY }] } },
      {
        name: "basic-auth",
        version: "v1",
        parameters: { users: [{ username: "alice", passwordHash: HASH }], ...overrides },
      },
      // The memory backend: the Redis settings are kept (and shown) but no server is needed.
      {
        name: "rate-limit",
        version: "v1",
        parameters: { limits: [{ limit: 1000, duration: "1s" }], redis: { password: REDIS_PASSWORD } },
      },
    ],
  }, {
    name: "leaky",
    policies: [{ name: "leaky", version: "v1", parameters: { password: LEAKED, ...leakyOverrides } }],
  }],
});

Deno.test("secrets are redacted in /routes and never logged, also when a reload is rejected", async () => {
  const engine = await EngineProcess.start({ config: config() });
  const client = new ExtProcClient(`unix:${engine.layout.extprocSocket}`);
  try {
    // A policy whose request error quotes its secret: the logged failure has it scrubbed.
    const stream = client.open();
    const response = await stream.exchange(requestHeaders("leaky", "/x"));
    assert.equal(response.response.case, "immediateResponse");
    await stream.finish();
    await waitFor(
      "the failure log",
      () => engine.lines.some((l) => l.includes(`"policy":"leaky:v1"`)),
    );
    assert.ok(engine.lines.some((l) => l.includes("login with <redacted> refused")));

    const routes = await (await fetch(`${engine.adminUrl}/routes`)).json();
    const [jwt, apiKey, basic, rateLimit] = routes.routes[0].policies;
    assert.equal(jwt.policy, "jwt-auth:v1");
    assert.equal(jwt.parameters.secret, "<redacted>");
    assert.equal(jwt.parameters.secretFromConfig, "<redacted>");
    assert.deepEqual(jwt.parameters.allowedAlgorithms, ["HS256"], "other parameters are shown");
    assert.deepEqual(apiKey.parameters.keys, [{ caller: "partner", key: "<redacted>" }]);
    assert.deepEqual(basic.parameters.users, [{ username: "alice", passwordHash: "<redacted>" }]);
    assert.equal(rateLimit.parameters.redis.password, "<redacted>");
    assert.equal(rateLimit.parameters.redis.host, "127.0.0.1", "other Redis settings are shown");
    const text = JSON.stringify(routes);
    for (const secret of SECRETS) assert.ok(!text.includes(secret), `/routes shows ${secret}`);

    // A reload with a plain-text password and a too-short HMAC secret is rejected loudly.
    const bad = config({ users: [{ username: "alice", passwordHash: "plain-password-0004" }] }, {
      failAtBuild: true,
    });
    (bad.routes[0].policies[0].parameters as Record<string, unknown>).secret = "short-0005";
    await engine.writeConfig(bad);
    await waitFor("the rejection", () => engine.lines.some((l) => l.includes("config change rejected")));
    const rejection = engine.lines.find((l) => l.includes("config change rejected"))!;
    assert.match(rejection, /passwordHash is not a bcrypt or argon2id hash/);
    assert.match(rejection, /HS256 secret must be at least 32 bytes/);
    assert.match(rejection, /getPolicy failed: cannot log in with <redacted>/);
  } finally {
    client.close();
    assert.equal(await engine.stop(), 0);
  }
  const log = engine.lines.join("\n");
  for (const secret of SECRETS) assert.ok(!log.includes(secret), `the log shows ${secret}`);
});
