/**
 * jwt-auth through a real Envoy, with the engine under its production permissions: keys
 * from a JWKS URL served by this test (its host granted to the engine), tokens refused with
 * RFC 6750 challenges and JSON bodies before the upstream, claims reaching the upstream.
 */
import assert from "node:assert/strict";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { EngineProcess } from "../../support/engine_process.ts";
import { Envoy } from "../../support/envoy.ts";
import { waitFor } from "../../support/ports.ts";
import { Upstream } from "../../support/upstream.ts";

Deno.test("jwt-auth through a real Envoy with a JWKS URL", async (t) => {
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256" };
  let fetches = 0;
  const jwksServer = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    fetches++;
    return Response.json({ keys: [jwk] });
  });
  const jwksHost = `127.0.0.1:${jwksServer.addr.port}`;
  const sign = (claims: Record<string, unknown>, expiresIn = "10m") =>
    new SignJWT({ sub: "user-7", iss: "https://idp.test/", aud: "orders", ...claims })
      .setProtectedHeader({ alg: "RS256", kid: "k1" })
      .setExpirationTime(expiresIn)
      .sign(privateKey);
  const upstream = Upstream.start();
  const config = (jwksUrl: string) => ({
    routes: [{
      name: "orders",
      policies: [{
        name: "jwt-auth",
        version: "v1",
        parameters: {
          jwksUrl,
          issuers: ["https://idp.test/"],
          audiences: ["orders"],
          claimMappings: { sub: "x-user-id" },
          removeToken: true,
        },
      }],
    }],
  });
  const engine = await EngineProcess.start({
    policyHosts: [jwksHost],
    config: config(`http://${jwksHost}/jwks.json`),
  });
  const envoy = await Envoy.start({
    routes: [{ name: "orders", prefix: "/orders" }],
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  try {
    await t.step(
      "a valid token reaches the upstream with its subject header and without the token",
      async () => {
        const token = await sign({});
        for (let i = 0; i < 3; i++) {
          const response = await fetch(`${envoy.url}/orders/${i}`, {
            headers: { authorization: `Bearer ${token}`, "x-user-id": "forged" },
          });
          await response.body?.cancel();
          assert.equal(response.status, 200);
          const [received] = upstream.requestsTo(`/orders/${i}`);
          assert.equal(received.headers.get("x-user-id"), "user-7", "the forged header was replaced");
          assert.equal(received.headers.get("authorization"), null);
        }
        assert.equal(fetches, 1, "the JWKS was fetched once");
      },
    );

    await t.step(
      "missing, malformed, expired and wrong-audience tokens get 401 and never reach the upstream",
      async () => {
        const before = upstream.received.length;
        const missing = await fetch(`${envoy.url}/orders/x`);
        assert.equal(missing.status, 401);
        assert.equal(missing.headers.get("www-authenticate"), 'Bearer realm="api"');
        assert.equal((await missing.json()).error, "missing_token");
        const cases = [
          "not-a-jwt",
          "e30.e30.",
          "a.b.c",
          await sign({}, "-10m"),
          await sign({ aud: "billing" }),
        ];
        for (const token of cases) {
          const response = await fetch(`${envoy.url}/orders/x`, {
            headers: { authorization: `Bearer ${token}` },
          });
          assert.equal(response.status, 401, token);
          assert.equal(response.headers.get("content-type"), "application/json");
          assert.match(
            response.headers.get("www-authenticate")!,
            /^Bearer realm="api", error="invalid_token"/,
          );
          assert.equal((await response.json()).error, "invalid_token");
        }
        assert.equal(upstream.received.length, before, "no refused request reached the upstream");
      },
    );

    await t.step(
      "a reload to a JWKS host outside the permissions is rejected; the running chain keeps serving",
      async () => {
        await engine.writeConfig(config("https://idp.elsewhere.test/jwks.json"));
        await waitFor("the rejection", () => engine.lines.some((l) => l.includes("config change rejected")));
        const rejection = engine.lines.find((l) => l.includes("config change rejected"))!;
        assert.match(
          rejection,
          /parameters\.jwksUrl: host idp\.elsewhere\.test:443 is outside the permissions/,
        );
        const response = await fetch(`${envoy.url}/orders/after`, {
          headers: { authorization: `Bearer ${await sign({})}` },
        });
        await response.body?.cancel();
        assert.equal(response.status, 200);
      },
    );
  } finally {
    await envoy.stop();
    assert.equal(await engine.stop(), 0);
    await upstream.stop();
    await jwksServer.shutdown();
  }
});

Deno.test("a JWKS URL or key file outside the engine's permissions is refused at startup, naming route and policy", async () => {
  const engine = await EngineProcess.start({
    noWait: true,
    config: {
      routes: [{
        name: "secured",
        policies: [
          { name: "jwt-auth", version: "v1", parameters: { jwksUrl: "https://idp.example.com/jwks.json" } },
          { name: "api-key-auth", version: "v1", parameters: { keysFile: "/etc/tollgate-test-keys.yaml" } },
        ],
      }],
    },
  });
  assert.equal(await engine.exited(), 2, engine.lines.join("\n"));
  const output = engine.lines.join("\n");
  assert.match(
    output,
    /routes\[0\]\.policies\[0\]\.parameters\.jwksUrl: host idp\.example\.com:443 is outside the permissions this engine runs with.*\(route "secured", policy jwt-auth:v1\)/,
  );
  assert.match(
    output,
    /routes\[0\]\.policies\[1\]\.parameters\.keysFile: file \/etc\/tollgate-test-keys\.yaml is outside the permissions.*\(route "secured", policy api-key-auth:v1\)/,
  );
  await Deno.remove(engine.dir, { recursive: true });
});
