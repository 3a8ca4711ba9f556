/**
 * Many concurrent requests through a real Envoy with the shipped bootstrap: none may fail.
 * (This caught a real failure mode: Envoy >= 1.37 resets finished ext_proc streams, and
 * bursts of resets make Tollgate's HTTP/2 server drop the connection unless the bootstrap
 * enables ext_proc_graceful_grpc_close, as docs/examples/envoy.yaml does.)
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../support/engine_process.ts";
import { Envoy } from "../support/envoy.ts";
import { Upstream } from "../support/upstream.ts";

const config = {
  routes: [
    {
      name: "headers",
      policies: [{
        name: "set-headers",
        version: "v1",
        parameters: {
          requestHeaders: [{ name: "x-a", value: "1" }],
          responseHeaders: [{ name: "x-b", value: "2" }],
        },
      }],
    },
  ],
};

Deno.test("64 concurrent clients for 3 seconds: every request succeeds", async () => {
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({ config });
  const envoy = await Envoy.start({
    routes: [{ name: "headers", prefix: "/headers" }, { name: "plain", prefix: "/plain" }],
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  try {
    const statuses = new Map<number, number>();
    const deadline = Date.now() + 3000;
    await Promise.all(Array.from({ length: 64 }, async (_, i) => {
      while (Date.now() < deadline) {
        const response = await fetch(`${envoy.url}/${i % 2 ? "headers" : "plain"}`);
        await response.body?.cancel();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      }
    }));
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    assert.ok(total > 500, `only ${total} requests`);
    assert.deepEqual([...statuses.keys()], [200], JSON.stringify(Object.fromEntries(statuses)));
    assert.equal(await envoy.stat("http.ingress_http.ext_proc.streams_failed"), 0);
  } finally {
    await envoy.stop();
    assert.equal(await engine.stop(), 0);
    await upstream.stop();
  }
});
