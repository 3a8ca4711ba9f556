/**
 * api-key-auth through a real Envoy: header and query keys, the query key removed before
 * the upstream (other parameters kept), refusals answered by the gateway.
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../../support/engine_process.ts";
import { Envoy } from "../../support/envoy.ts";
import { Upstream } from "../../support/upstream.ts";

const KEY = "k-integration-0123456789";

Deno.test("api-key-auth through a real Envoy", async (t) => {
  const upstream = Upstream.start();
  const keys = [{ caller: "partner", key: KEY }];
  const engine = await EngineProcess.start({
    config: {
      routes: [
        { name: "by-header", policies: [{ name: "api-key-auth", version: "v1", parameters: { keys } }] },
        {
          name: "by-query",
          policies: [{
            name: "api-key-auth",
            version: "v1",
            parameters: { key: "api_key", in: "query", keys },
          }],
        },
      ],
    },
  });
  const envoy = await Envoy.start({
    routes: [{ name: "by-header", prefix: "/header" }, { name: "by-query", prefix: "/query" }],
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  try {
    await t.step("a header key passes and is removed", async () => {
      const response = await fetch(`${envoy.url}/header/a`, { headers: { "x-api-key": KEY } });
      await response.body?.cancel();
      assert.equal(response.status, 200);
      assert.equal(upstream.requestsTo("/header/a")[0].headers.get("x-api-key"), null);
    });

    await t.step("a query key passes and is removed from the query, other parameters kept", async () => {
      const response = await fetch(`${envoy.url}/query/b?page=2&api_key=${KEY}&sort=asc`);
      await response.body?.cancel();
      assert.equal(response.status, 200);
      assert.equal(upstream.requestsTo("/query/b")[0].path, "/query/b?page=2&sort=asc");
    });

    await t.step(
      "missing and unknown keys get 401 with a JSON body; the upstream is not called",
      async () => {
        const before = upstream.received.length;
        for (
          const [url, headers, error] of [
            ["/header/c", {}, "missing_api_key"],
            ["/header/c", { "x-api-key": "wrong-key-wrong-key" }, "invalid_api_key"],
            ["/query/c?api_key=", {}, "missing_api_key"],
            ["/query/c?api_key=%ff%fe", {}, "invalid_api_key"],
          ] as const
        ) {
          const response = await fetch(`${envoy.url}${url}`, { headers });
          assert.equal(response.status, 401, url);
          assert.equal((await response.json()).error, error);
        }
        assert.equal(upstream.received.length, before);
      },
    );
  } finally {
    await envoy.stop();
    assert.equal(await engine.stop(), 0);
    await upstream.stop();
  }
});
