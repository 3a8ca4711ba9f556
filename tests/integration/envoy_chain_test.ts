/**
 * TypeScript chains through a real Envoy: headers, order, short-circuit, re-routing, body
 * rewrite and multi-valued headers, with Tollgate as a child process under its production
 * permission flags and Envoy started from docs/examples/envoy.yaml.
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../support/engine_process.ts";
import { Envoy } from "../support/envoy.ts";
import { waitFor } from "../support/ports.ts";
import { Upstream } from "../support/upstream.ts";

const policy = (name: string, parameters: Record<string, unknown> = {}) => ({
  name,
  version: "v1",
  parameters,
});

const config = {
  routes: [
    {
      name: "hdr",
      policies: [
        policy("set-headers", {
          requestHeaders: [{ name: "X-Added", value: "from-tollgate" }],
          responseHeaders: [{ name: "x-resp", value: "1" }],
        }),
        policy("remove-headers", { responseHeaders: [{ name: "x-powered-by" }] }),
      ],
    },
    {
      name: "order",
      policies: [
        policy("trace", { label: "A" }),
        policy("trace", { label: "B" }),
        policy("trace", { label: "C" }),
      ],
    },
    {
      name: "respond",
      policies: [
        policy("respond", {
          statusCode: 403,
          headers: [{ name: "content-type", value: "application/json" }],
          body: '{"denied":true}',
        }),
        policy("trace", { label: "never" }),
      ],
    },
    { name: "old", policies: [policy("rewrite-path", { from: "/old", to: "/new" })] },
    {
      name: "body",
      policies: [policy("trace", { label: "before-body" }), policy("replace-body", { add: { added: true } })],
    },
    {
      name: "cookies",
      policies: [policy("set-headers", { responseHeaders: [{ name: "x-cookie-test", value: "1" }] })],
    },
    { name: "analytics", policies: [policy("tag", { key: "decision", value: "allowed-by-tag" })] },
    {
      name: "method",
      policies: [policy("rewrite-path", { from: "/method", to: "/method-changed", method: "PUT" })],
    },
    { name: "status", policies: [policy("override-status", { status: 299 })] },
  ],
};

const envoyRoutes = [
  { name: "hdr", prefix: "/hdr" },
  { name: "order", prefix: "/order" },
  { name: "respond", prefix: "/respond" },
  { name: "old", prefix: "/old", addRequestHeaders: { "x-route": "old" } },
  { name: "new", prefix: "/new", addRequestHeaders: { "x-route": "new" } },
  { name: "body", prefix: "/body" },
  { name: "cookies", prefix: "/cookies" },
  { name: "plain", prefix: "/plain" },
  { name: "analytics", prefix: "/analytics" },
  { name: "method", prefix: "/method" },
  { name: "status", prefix: "/status" },
];

Deno.test("TypeScript chains through a real Envoy", async (t) => {
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({ config });
  const envoy = await Envoy.start({
    routes: envoyRoutes,
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  try {
    await t.step(
      "a request header set by a policy arrives upstream; response headers set and removed",
      async () => {
        const response = await fetch(`${envoy.url}/hdr/users`);
        await response.body?.cancel();
        assert.equal(response.status, 200);
        assert.equal(upstream.requestsTo("/hdr/users")[0].headers.get("x-added"), "from-tollgate");
        assert.equal(response.headers.get("x-resp"), "1");
        assert.equal(
          response.headers.get("x-powered-by"),
          null,
          "remove-headers removed the upstream's header",
        );
      },
    );

    await t.step(
      "request policies run in chain order, response policies in reverse, sharing metadata",
      async () => {
        const response = await fetch(`${envoy.url}/order`);
        await response.body?.cancel();
        assert.equal(upstream.requestsTo("/order")[0].headers.get("x-trace"), "A, B, C");
        assert.equal(response.headers.get("x-trace"), "C, B, A");
        assert.equal(
          response.headers.get("x-trace-metadata"),
          "A,B,C",
          "metadata written in the request phase",
        );
      },
    );

    await t.step("respond short-circuits without touching the upstream", async () => {
      const response = await fetch(`${envoy.url}/respond/anything`);
      assert.equal(response.status, 403);
      assert.equal(response.headers.get("content-type"), "application/json");
      assert.deepEqual(await response.json(), { denied: true });
      assert.equal(upstream.requestsTo("/respond").length, 0);
    });

    await t.step("a path rewrite re-routes the request", async () => {
      const response = await fetch(`${envoy.url}/old/thing?q=1`);
      await response.body?.cancel();
      assert.equal(response.status, 200);
      const received = upstream.requestsTo("/new/thing");
      assert.equal(received.length, 1);
      assert.equal(received[0].path, "/new/thing?q=1");
      assert.equal(received[0].headers.get("x-route"), "new", "Envoy matched the route of the new path");
    });

    await t.step("a body change reaches the upstream with a correct content-length", async () => {
      const sent = JSON.stringify({ a: 1 });
      const response = await fetch(`${envoy.url}/body`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: sent,
      });
      await response.body?.cancel();
      assert.equal(response.status, 200);
      const [received] = upstream.requestsTo("/body");
      const text = new TextDecoder().decode(received.body);
      assert.deepEqual(JSON.parse(text), { a: 1, added: true, originalLength: sent.length });
      assert.equal(received.headers.get("content-length"), String(received.body.length));
      assert.equal(
        received.headers.get("x-trace"),
        "before-body",
        "the header policy before the body policy ran",
      );
    });

    await t.step("two set-cookie headers from upstream reach the client as two", async () => {
      const response = await fetch(`${envoy.url}/cookies`);
      await response.body?.cancel();
      assert.equal(response.headers.get("x-cookie-test"), "1", "the response phase was processed");
      assert.deepEqual(response.headers.getSetCookie(), ["a=1; Path=/", "b=2; Path=/"]);
    });

    await t.step("a route without a chain passes through untouched", async () => {
      const response = await fetch(`${envoy.url}/plain/x`);
      await response.body?.cancel();
      assert.equal(response.status, 200);
      const [received] = upstream.requestsTo("/plain/x");
      assert.equal(received.headers.get("x-added"), null);
      assert.equal(received.headers.get("x-trace"), null);
    });

    await t.step("a policy changes the method; another replaces the response status and body", async () => {
      const changed = await fetch(`${envoy.url}/method/x`, { method: "POST", body: "payload" });
      await changed.body?.cancel();
      assert.equal(changed.status, 200);
      const [received] = upstream.requestsTo("/method-changed/x");
      assert.equal(received.method, "PUT");
      assert.equal(new TextDecoder().decode(received.body), "payload", "the body is kept");
      const status = await fetch(`${envoy.url}/status`);
      assert.equal(status.status, 299);
      assert.equal(await status.text(), "replaced with 299");
    });

    await t.step("analytics metadata and immediate-response details reach Envoy's access log", async () => {
      const response = await fetch(`${envoy.url}/analytics`);
      await response.body?.cancel();
      await waitFor(
        "the access log",
        async () => (await envoy.accessLog()).some((l) => l.includes("/analytics")),
      );
      const log = await envoy.accessLog();
      const analytics = log.find((l) => l.includes('"GET /analytics"'))!;
      assert.match(analytics, /tollgate=\{"decision":"allowed-by-tag","trace":"tag:v1=passed:[\d.]+ms"\}/);
      const respond = log.find((l) => l.includes('"GET /respond/anything"'))!;
      assert.match(respond, / 403 tollgate_respond_v1 route=respond /);
    });

    await t.step("Envoy saw no spurious messages, errors or ignored route-cache clears", async () => {
      for (
        const stat of [
          "spurious_msgs_received",
          "streams_failed",
          "failure_mode_allowed",
          "clear_route_cache_ignored",
        ]
      ) {
        assert.equal(await envoy.stat(`http.ingress_http.ext_proc.${stat}`), 0, stat);
      }
      const started = await envoy.stat("http.ingress_http.ext_proc.streams_started");
      assert.equal(started, 10, "every request of this test opened one ext_proc stream");
    });
  } finally {
    await envoy.stop();
    const code = await engine.stop();
    await upstream.stop();
    assert.equal(code, 0, `engine exited with ${code}:\n${engine.lines.join("\n")}`);
  }
});
