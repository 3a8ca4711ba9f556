/**
 * Routes Envoy sends that have no chain in the config, behind a real Envoy: counted in
 * /metrics and /routes and logged once; refused with 404 under `unmatchedRoutes: deny`;
 * given the default chain under `defaultPolicies`; and a request without any route name
 * (Envoy configured without request_attributes) treated the same way.
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../support/engine_process.ts";
import { Envoy } from "../support/envoy.ts";
import { waitFor } from "../support/ports.ts";
import { Upstream } from "../support/upstream.ts";

const stamp = (name: string, value: string) => ({
  name: "set-headers",
  version: "v1",
  parameters: { requestHeaders: [{ name, value }], responseHeaders: [{ name, value }] },
});

/** Tollgate names the route `user-v1`; Envoy names it `users-v1`. */
const mistyped = (extra: Record<string, unknown> = {}) => ({
  ...extra,
  routes: [
    { name: "api", policies: [stamp("x-api", "1")] },
    { name: "user-v1", policies: [stamp("x-users", "1")] },
  ],
});

async function get(url: string): Promise<{ status: number; headers: Headers; body: string }> {
  const response = await fetch(url);
  return { status: response.status, headers: response.headers, body: await response.text() };
}

// deno-lint-ignore no-explicit-any
async function adminJson(engine: EngineProcess, path: string): Promise<any> {
  return await (await fetch(`${engine.adminUrl}${path}`)).json();
}

async function metric(engine: EngineProcess, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${engine.adminUrl}/metrics`)).text();
  const match = text.split("\n").find((line) => pattern.test(line));
  return match ? Number(match.split(" ").at(-1)) : 0;
}

const unmatchedMetric = (reason: string, action: string) =>
  new RegExp(`^tollgate_unmatched_requests_total\\{reason="${reason}",action="${action}"\\} `);

Deno.test("an unmatched route is counted, logged once, and refused or given the default chain", async (t) => {
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({ config: mistyped() });
  const envoy = await Envoy.start({
    routes: [{ name: "users-v1", prefix: "/users" }, { name: "api", prefix: "/" }],
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  const reloaded = async (count: number) =>
    await waitFor(
      "the reload",
      () => engine.lines.filter((l) => l.includes("config reloaded")).length === count,
    );
  try {
    await t.step("pass (the default): through untouched, but counted and logged once", async () => {
      for (let i = 0; i < 3; i++) {
        const response = await get(`${envoy.url}/users/${i}`);
        assert.equal(response.status, 200);
        assert.equal(response.headers.get("x-users"), null);
      }
      assert.equal((await get(`${envoy.url}/api`)).headers.get("x-api"), "1");
      assert.equal(await metric(engine, unmatchedMetric("unknown_route", "pass")), 3);
      const routes = await adminJson(engine, "/routes");
      assert.deepEqual(routes.routes.map((r: { name: string; requests: number }) => [r.name, r.requests]), [
        ["api", 1],
        ["user-v1", 0],
      ]);
      assert.equal(routes.unmatchedRoutes, "pass");
      assert.deepEqual(routes.unmatched, {
        requests: 3,
        withoutRouteName: 0,
        routes: { "users-v1": 3 },
        otherRoutes: 0,
      });
      const logged = engine.records().filter((r) =>
        r.route === "users-v1" && r.logger === "tollgate.kernel.unmatched"
      );
      assert.equal(logged.length, 1, "logged once, not per request");
      assert.match(String(logged[0].message), /users-v1.*has no chain/);
    });

    await t.step("deny: 404 with a JSON body naming the route; the upstream never sees it", async () => {
      await engine.writeConfig(mistyped({ unmatchedRoutes: "deny" }));
      await reloaded(1);
      const before = upstream.requestsTo("/users").length;
      const response = await get(`${envoy.url}/users/9`);
      assert.equal(response.status, 404);
      assert.equal(response.headers.get("content-type"), "application/json");
      const body = JSON.parse(response.body);
      assert.equal(body.error, "route_not_configured");
      assert.equal(body.route, "users-v1");
      assert.equal(typeof body.requestId, "string");
      assert.equal(upstream.requestsTo("/users").length, before);
      assert.equal((await get(`${envoy.url}/api`)).status, 200, "configured routes still pass");
      assert.equal(await metric(engine, unmatchedMetric("unknown_route", "deny")), 1);
      assert.equal(
        await metric(engine, /^tollgate_immediate_responses_total\{policy="unmatched-route",status="404"\} /),
        1,
      );
    });

    await t.step("defaultPolicies: the default chain runs for unmatched routes only", async () => {
      await engine.writeConfig(mistyped({ defaultPolicies: [stamp("x-default", "applied")] }));
      await reloaded(2);
      const unmatched = await get(`${envoy.url}/users/1`);
      assert.equal(unmatched.status, 200);
      assert.equal(unmatched.headers.get("x-default"), "applied");
      assert.equal(upstream.requestsTo("/users").at(-1)?.headers.get("x-default"), "applied");
      const matched = await get(`${envoy.url}/api`);
      assert.equal(matched.headers.get("x-default"), null);
      assert.equal(matched.headers.get("x-api"), "1");
      assert.equal(await metric(engine, unmatchedMetric("unknown_route", "default")), 1);
      const routes = await adminJson(engine, "/routes");
      assert.deepEqual(routes.defaultChain.policies.map((p: { policy: string }) => p.policy), [
        "set-headers:v1",
      ]);
      assert.equal(routes.unmatched.requests, 5);
    });
  } finally {
    await envoy.stop();
    assert.equal(await engine.stop(), 0);
    await upstream.stop();
  }
});

Deno.test("a request without a route name (Envoy without request_attributes) is unmatched too", async () => {
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({ config: mistyped({ unmatchedRoutes: "deny" }) });
  const envoy = await Envoy.start({
    routes: [{ name: "api", prefix: "/" }],
    upstreamPort: upstream.port,
    extproc: engine.extproc,
    extProcOverrides: { request_attributes: [] },
  });
  try {
    const response = await get(`${envoy.url}/api`);
    assert.equal(response.status, 404);
    assert.equal(JSON.parse(response.body).route, null);
    assert.equal(upstream.requestsTo("/api").length, 0);
    assert.equal(await metric(engine, unmatchedMetric("no_route_name", "deny")), 1);
    assert.equal((await adminJson(engine, "/routes")).unmatched.withoutRouteName, 1);
    assert.ok(engine.lines.some((l) => l.includes("without a route name")), "the cause is logged");
  } finally {
    await envoy.stop();
    assert.equal(await engine.stop(), 0);
    await upstream.stop();
  }
});
