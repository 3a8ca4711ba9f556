/**
 * basic-auth through a real Envoy, with hash-wasm's WebAssembly bcrypt and argon2id running
 * under the engine's production permissions (no FFI): users pass with Authorization removed,
 * refusals carry the Basic challenge and never reach the upstream.
 */
import assert from "node:assert/strict";
import { argon2id, bcrypt } from "hash-wasm";
import { EngineProcess } from "../../support/engine_process.ts";
import { Envoy } from "../../support/envoy.ts";
import { Upstream } from "../../support/upstream.ts";

Deno.test("basic-auth through a real Envoy", async (t) => {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const users = [
    {
      username: "alice",
      passwordHash: await bcrypt({ password: "alice-pw", salt, costFactor: 6, outputType: "encoded" }),
    },
    {
      username: "bob",
      passwordHash: await argon2id({
        password: "bob-pw",
        salt,
        parallelism: 1,
        iterations: 2,
        memorySize: 4096,
        hashLength: 32,
        outputType: "encoded",
      }),
    },
  ];
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({
    config: {
      routes: [{
        name: "office",
        policies: [{ name: "basic-auth", version: "v1", parameters: { users, realm: "Office" } }],
      }],
    },
  });
  const envoy = await Envoy.start({
    routes: [{ name: "office", prefix: "/office" }],
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  const basic = (user: string, password: string) => ({
    authorization: `Basic ${btoa(`${user}:${password}`)}`,
  });
  try {
    await t.step("bcrypt and argon2id users pass; Authorization does not reach the upstream", async () => {
      for (const [user, password] of [["alice", "alice-pw"], ["bob", "bob-pw"], ["alice", "alice-pw"]]) {
        const response = await fetch(`${envoy.url}/office/${user}`, { headers: basic(user, password) });
        await response.body?.cancel();
        assert.equal(response.status, 200, user);
      }
      assert.ok(upstream.requestsTo("/office/").every((r) => r.headers.get("authorization") === null));
    });

    await t.step("missing, malformed and wrong credentials get 401 with the challenge", async () => {
      const before = upstream.received.length;
      for (
        const headers of [{}, basic("alice", "nope"), basic("eve", "alice-pw"), {
          authorization: "Basic %%%",
        }]
      ) {
        const response = await fetch(`${envoy.url}/office/x`, { headers });
        assert.equal(response.status, 401);
        assert.equal(response.headers.get("www-authenticate"), 'Basic realm="Office", charset="UTF-8"');
        assert.equal((await response.json()).error, "unauthorized");
      }
      assert.equal(upstream.received.length, before);
    });
  } finally {
    await envoy.stop();
    assert.equal(await engine.stop(), 0);
    await upstream.stop();
  }
});
