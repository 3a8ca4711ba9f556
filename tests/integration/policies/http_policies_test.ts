/**
 * The HTTP built-in policies (cors, ip-filter, request-rewrite, redirect, add-headers,
 * request-size-limit, json-schema-validate, log-message) through one real Envoy started from
 * docs/examples/envoy.yaml and one engine process (one start for all, to keep CI short).
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../../support/engine_process.ts";
import { Envoy, type EnvoyRoute } from "../../support/envoy.ts";
import { waitFor } from "../../support/ports.ts";
import { Upstream } from "../../support/upstream.ts";

const policy = (name: string, parameters: Record<string, unknown> = {}) => ({
  name,
  version: "v1",
  parameters,
});

const APP = "https://app.example.com";

const routes: { name: string; policies: unknown[] }[] = [
  {
    name: "cors",
    policies: [
      policy("cors", { allowedOrigins: [APP], allowCredentials: true, exposedHeaders: ["X-Total"] }),
    ],
  },
  { name: "ip-allow", policies: [policy("ip-filter", { allow: ["127.0.0.0/8", "::1"] })] },
  { name: "ip-deny", policies: [policy("ip-filter", { deny: ["127.0.0.1"] })] },
  {
    name: "ip-xff",
    policies: [policy("ip-filter", { source: "x-forwarded-for", deny: ["203.0.113.0/24"] })],
  },
  {
    name: "rw-old",
    policies: [policy("request-rewrite", {
      path: { prefix: { match: "/rw-old/", replacement: "/rw-new/" } },
      query: { remove: ["debug"], set: { source: "gateway" } },
      host: "users.internal",
    })],
  },
  {
    name: "rw-regex",
    policies: [policy("request-rewrite", {
      path: { regex: { pattern: "^/rw-regex/users/([0-9]+)/profile$", substitution: "/rw-new/profiles/$1" } },
      method: "PUT",
    })],
  },
  {
    name: "redirect",
    policies: [policy("redirect", { statusCode: 301, location: "https://{host}{path}{query}" })],
  },
  {
    name: "add",
    policies: [policy("add-headers", { requestHeaders: [{ name: "x-tag", value: "gateway" }] })],
  },
  { name: "size", policies: [policy("request-size-limit", { maxBytes: 10 })] },
  { name: "size-body", policies: [policy("request-size-limit", { maxBytes: 10, checkBody: true })] },
  {
    name: "json",
    policies: [policy("json-schema-validate", {
      schema: { type: "object", required: ["name"], properties: { name: { type: "string" } } },
    })],
  },
  {
    name: "log",
    policies: [policy("log-message", { logRequestHeaders: true, logResponseHeaders: true })],
  },
];

const envoyRoutes: EnvoyRoute[] = [
  ...routes.map((r) => ({ name: r.name, prefix: `/${r.name}/` })),
  { name: "rw-new", prefix: "/rw-new/", addRequestHeaders: { "x-route": "rw-new" } },
];

async function drained(response: Response): Promise<Response> {
  await response.body?.cancel();
  return response;
}

Deno.test("HTTP policies through a real Envoy", async (t) => {
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({ config: { routes } });
  const envoy = await Envoy.start({
    routes: envoyRoutes,
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  const url = (path: string) => `${envoy.url}${path}`;
  try {
    await t.step(
      "cors: an allowed preflight is answered by the gateway, the upstream is not called",
      async () => {
        const response = await drained(
          await fetch(url("/cors/items"), {
            method: "OPTIONS",
            headers: {
              origin: APP,
              "access-control-request-method": "PUT",
              "access-control-request-headers": "content-type",
            },
          }),
        );
        assert.equal(response.status, 204);
        assert.equal(response.headers.get("access-control-allow-origin"), APP);
        assert.equal(response.headers.get("access-control-allow-credentials"), "true");
        assert.equal(response.headers.get("access-control-allow-headers"), "Content-Type");
        assert.match(response.headers.get("vary") ?? "", /Origin/);
        assert.equal(upstream.requestsTo("/cors").length, 0);
      },
    );

    await t.step("cors: a preflight from another origin gets 403 JSON without CORS headers", async () => {
      const response = await fetch(url("/cors/items"), {
        method: "OPTIONS",
        headers: { origin: "https://evil.example", "access-control-request-method": "GET" },
      });
      assert.equal(response.status, 403);
      assert.equal(response.headers.get("access-control-allow-origin"), null);
      assert.equal((await response.json()).error, "cors_rejected");
      assert.equal(upstream.requestsTo("/cors").length, 0);
    });

    await t.step(
      "cors: actual requests: CORS headers for the allowed origin only, Vary: Origin on both",
      async () => {
        const allowed = await drained(await fetch(url("/cors/items"), { headers: { origin: APP } }));
        assert.equal(allowed.status, 200);
        assert.equal(allowed.headers.get("access-control-allow-origin"), APP);
        assert.equal(allowed.headers.get("access-control-expose-headers"), "X-Total");
        assert.match(allowed.headers.get("vary") ?? "", /Origin/);
        const other = await drained(
          await fetch(url("/cors/items"), { headers: { origin: "https://evil.example" } }),
        );
        assert.equal(other.status, 200, "the gateway does not block: browsers enforce CORS");
        assert.equal(other.headers.get("access-control-allow-origin"), null);
        assert.match(other.headers.get("vary") ?? "", /Origin/);
        assert.equal(upstream.requestsTo("/cors").length, 2);
      },
    );

    await t.step("ip-filter: Envoy's source.address is allowed or denied by the lists", async () => {
      assert.equal((await drained(await fetch(url("/ip-allow/x")))).status, 200);
      const denied = await fetch(url("/ip-deny/x"));
      assert.equal(denied.status, 403);
      assert.deepEqual(await denied.json(), {
        error: "forbidden",
        message: "client address 127.0.0.1 is not allowed",
      });
      assert.equal(upstream.requestsTo("/ip-deny").length, 0);
    });

    await t.step(
      "ip-filter: x-forwarded-for's last entry decides; a garbage entry fails closed",
      async () => {
        const status = async (xff: string) =>
          (await drained(await fetch(url("/ip-xff/x"), { headers: { "x-forwarded-for": xff } }))).status;
        assert.equal(
          await status("203.0.113.9, 198.51.100.1"),
          200,
          "a spoofed entry on the left is ignored",
        );
        assert.equal(await status("198.51.100.1, 203.0.113.9"), 403);
        assert.equal(await status("not-an-address"), 403);
        assert.equal((await drained(await fetch(url("/ip-xff/x")))).status, 403, "no header: fail closed");
        assert.equal(upstream.requestsTo("/ip-xff").length, 1);
        await waitFor(
          "the warning about the unparsable address",
          () =>
            Promise.resolve(
              engine.lines.some((l) =>
                l.includes("tollgate.policy.ip-filter") && l.includes("not-an-address")
              ),
            ),
          5_000,
        );
      },
    );

    await t.step(
      "request-rewrite: prefix, query and host rewritten; Envoy re-routes to the new path",
      async () => {
        const response = await drained(await fetch(url("/rw-old/list?debug=1&page=2")));
        assert.equal(response.status, 200);
        const [received] = upstream.requestsTo("/rw-new/list");
        assert.equal(received.path, "/rw-new/list?page=2&source=gateway");
        assert.equal(received.headers.get("host"), "users.internal");
        assert.equal(received.headers.get("x-route"), "rw-new", "Envoy matched the route of the new path");
      },
    );

    await t.step("request-rewrite: an RE2 regex with a capture group, and the method", async () => {
      const response = await drained(await fetch(url("/rw-regex/users/42/profile")));
      assert.equal(response.status, 200);
      const [received] = upstream.requestsTo("/rw-new/profiles/42");
      assert.equal(received.method, "PUT");
      assert.equal(received.headers.get("x-route"), "rw-new");
    });

    await t.step("redirect: 301 to the templated location; the upstream is not called", async () => {
      const response = await drained(await fetch(url("/redirect/a?b=1"), { redirect: "manual" }));
      assert.equal(response.status, 301);
      assert.equal(response.headers.get("location"), `https://127.0.0.1:${envoy.port}/redirect/a?b=1`);
      assert.equal(upstream.requestsTo("/redirect").length, 0);
    });

    await t.step("add-headers: the client's value stays, the gateway's is appended", async () => {
      await drained(await fetch(url("/add/x"), { headers: { "x-tag": "client" } }));
      assert.equal(upstream.requestsTo("/add/x")[0].headers.get("x-tag"), "client, gateway");
    });

    await t.step(
      "request-size-limit: 413 on content-length before the body; with checkBody on a chunked body",
      async () => {
        const tooLong = await fetch(url("/size/x"), { method: "POST", body: "12345678901" });
        assert.equal(tooLong.status, 413);
        assert.equal((await tooLong.json()).error, "payload_too_large");
        assert.equal(
          (await drained(await fetch(url("/size/x"), { method: "POST", body: "1234567890" }))).status,
          200,
        );
        const chunked = (text: string) =>
          new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode(text.slice(0, 4)));
              controller.enqueue(new TextEncoder().encode(text.slice(4)));
              controller.close();
            },
          });
        const streamed = await fetch(url("/size-body/x"), { method: "POST", body: chunked("x".repeat(20)) });
        assert.equal(streamed.status, 413);
        assert.match((await streamed.json()).message, /the request body \(20 bytes\)/);
        const small = await drained(
          await fetch(url("/size-body/x"), { method: "POST", body: chunked("x".repeat(8)) }),
        );
        assert.equal(small.status, 200);
        assert.equal(upstream.requestsTo("/size/x").length, 1);
        assert.equal(upstream.requestsTo("/size-body/x").length, 1);
      },
    );

    await t.step(
      "json-schema-validate: 400 with errors, 400 for non-JSON, a valid body reaches the upstream",
      async () => {
        const post = (body: string) =>
          fetch(url("/json/x"), { method: "POST", headers: { "content-type": "application/json" }, body });
        const invalid = await post('{"name": 42}');
        assert.equal(invalid.status, 400);
        assert.deepEqual((await invalid.json()).errors, [{ path: "/name", message: "must be string" }]);
        const notJson = await post("{oops");
        assert.equal(notJson.status, 400);
        assert.equal((await notJson.json()).error, "invalid_json");
        assert.equal(upstream.requestsTo("/json").length, 0);
        assert.equal((await drained(await post('{"name": "a"}'))).status, 200);
        assert.equal(new TextDecoder().decode(upstream.requestsTo("/json")[0].body), '{"name": "a"}');
      },
    );

    await t.step(
      "log-message: request and response records through the engine's logger, authorization redacted",
      async () => {
        await drained(
          await fetch(url("/log/x"), { headers: { authorization: "Bearer top-secret", "x-visible": "yes" } }),
        );
        const records = () =>
          engine.lines.filter((l) => l.includes("tollgate.policy.log-message")).map((l) => JSON.parse(l));
        await waitFor("two log-message records", () => Promise.resolve(records().length >= 2), 5_000);
        const [request, response] = records();
        assert.equal(request.path, "/log/x");
        assert.deepEqual(request.headers.authorization, ["[REDACTED]"]);
        assert.deepEqual(request.headers["x-visible"], ["yes"]);
        assert.equal(response.status, 200);
        assert.ok(!engine.lines.some((l) => l.includes("top-secret")), "the token is never logged");
      },
    );
  } finally {
    await envoy.stop();
    await engine.stop();
    await upstream.stop();
  }
});
