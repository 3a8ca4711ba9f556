/**
 * What the SDK tells policies about a request beyond its headers, through a real Envoy:
 * the client address (Envoy's `source.address` attribute, asked for by the shipped
 * example), the parsed query, and query and authority changes reaching the upstream.
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../support/engine_process.ts";
import { Envoy } from "../support/envoy.ts";
import { Upstream } from "../support/upstream.ts";

const facts = (parameters: Record<string, unknown> = {}) => ({
  policies: [{ name: "request-facts", version: "v1", parameters }],
});

Deno.test("client address, query and authority through a real Envoy", async (t) => {
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({
    config: {
      routes: [
        { name: "facts", ...facts() },
        {
          name: "rewrite",
          ...facts({
            query: { remove: ["api_key"], set: { v: "2" }, add: { tag: "gw" } },
            authority: "internal.example:8443",
          }),
        },
      ],
    },
  });
  const envoy = await Envoy.start({
    routes: [{ name: "facts", prefix: "/facts" }, { name: "rewrite", prefix: "/rewrite" }],
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  try {
    await t.step("the client address and the query are visible to policies", async () => {
      const response = await fetch(`${envoy.url}/facts?q=a%20b&q=c`);
      await response.body?.cancel();
      assert.equal(response.status, 200);
      const [received] = upstream.requestsTo("/facts");
      assert.equal(received.headers.get("x-client-address"), "127.0.0.1");
      assert.match(received.headers.get("x-source-attribute") ?? "", /^127\.0\.0\.1:\d+$/);
      assert.equal(received.headers.get("x-query-q"), "a b|c");
    });

    await t.step("query and authority changes reach the upstream", async () => {
      const response = await fetch(`${envoy.url}/rewrite?api_key=secret&v=1&keep=yes`);
      await response.body?.cancel();
      assert.equal(response.status, 200);
      const [received] = upstream.requestsTo("/rewrite");
      const url = new URL(received.path, "http://x");
      assert.equal(
        url.searchParams.has("api_key"),
        false,
        "the removed parameter never reaches the upstream",
      );
      assert.deepEqual([...url.searchParams], [["v", "2"], ["keep", "yes"], ["tag", "gw"]]);
      assert.equal(received.headers.get("host"), "internal.example:8443");
    });
  } finally {
    await envoy.stop();
    assert.equal(await engine.stop(), 0);
    await upstream.stop();
  }
});
