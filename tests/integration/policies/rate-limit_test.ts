/**
 * rate-limit through a real Envoy, with Tollgate as a child process under its production
 * permission flags: limited requests get a 429 and never reach the upstream; a Redis
 * counter is shared by two engines; an unreachable Redis answers 503 (failOpen false) or
 * passes (failOpen true), and service comes back with Redis.
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../../support/engine_process.ts";
import { Envoy } from "../../support/envoy.ts";
import { waitFor } from "../../support/ports.ts";
import { RedisServer } from "../../support/redis.ts";
import { Upstream } from "../../support/upstream.ts";

const rateLimit = (parameters: Record<string, unknown>) => ({
  policies: [{ name: "rate-limit", version: "v1", parameters }],
});

/** An engine whose permissions grant `policyHosts` (the Redis servers), and an Envoy in front of it. */
async function stack(config: Record<string, unknown>, upstream: Upstream, policyHosts: string[] = []) {
  const engine = await EngineProcess.start({ config, policyHosts });
  const routes = (config.routes as { name: string }[]).map((r) => ({ name: r.name, prefix: `/${r.name}` }));
  const envoy = await Envoy.start({ routes, upstreamPort: upstream.port, extproc: engine.extproc });
  return {
    envoy,
    engine,
    async stop() {
      await envoy.stop();
      await engine.stop();
    },
  };
}

async function get(url: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, { headers });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text };
}

Deno.test("rate-limit (memory) through a real Envoy: headers, 429, upstream not called", async (t) => {
  const upstream = Upstream.start();
  const s = await stack({
    routes: [
      {
        name: "per-user",
        ...rateLimit({
          algorithm: "fixed-window",
          limits: [{ limit: 2, duration: "1h" }, { limit: 100, duration: "1d" }],
          keyExtraction: [{ type: "header", key: "x-user" }],
        }),
      },
      {
        name: "per-ip",
        ...rateLimit({ limits: [{ limit: 1, duration: "1h" }], keyExtraction: [{ type: "ip" }] }),
      },
    ],
  }, upstream);
  try {
    await t.step("allowed responses carry the RateLimit fields of the closest limit", async () => {
      const first = await get(`${s.envoy.url}/per-user/a`, { "x-user": "alice" });
      assert.equal(first.status, 200);
      assert.equal(first.headers.get("ratelimit-limit"), "2");
      assert.equal(first.headers.get("ratelimit-remaining"), "1");
      assert.ok(Number(first.headers.get("ratelimit-reset")) > 0);
      assert.equal(first.headers.get("ratelimit-policy"), "2;w=3600, 100;w=86400");
      const second = await get(`${s.envoy.url}/per-user/a`, { "x-user": "alice" });
      assert.equal(second.headers.get("ratelimit-remaining"), "0");
    });

    await t.step("past the limit: 429, JSON, Retry-After, and the upstream is not called", async () => {
      const before = upstream.requestsTo("/per-user").length;
      const limited = await get(`${s.envoy.url}/per-user/a`, { "x-user": "alice" });
      assert.equal(limited.status, 429);
      assert.equal(limited.headers.get("content-type"), "application/json");
      assert.ok(Number(limited.headers.get("retry-after")) >= 1);
      assert.equal(limited.headers.get("ratelimit-remaining"), "0");
      assert.equal(JSON.parse(limited.text).error, "rate_limited");
      assert.equal(upstream.requestsTo("/per-user").length, before);
    });

    await t.step("another key has its own counter", async () => {
      assert.equal((await get(`${s.envoy.url}/per-user/a`, { "x-user": "bob" })).status, 200);
    });

    await t.step("by client address (Envoy's source.address)", async () => {
      assert.equal((await get(`${s.envoy.url}/per-ip`)).status, 200);
      assert.equal((await get(`${s.envoy.url}/per-ip`)).status, 429);
      assert.equal(upstream.requestsTo("/per-ip").length, 1);
    });
  } finally {
    await s.stop();
    await upstream.stop();
  }
});

Deno.test("rate-limit (redis): one limit shared by two engines", async () => {
  const redis = await RedisServer.start();
  const upstream = Upstream.start();
  const config = {
    routes: [{
      name: "shared",
      ...rateLimit({
        backend: "redis",
        algorithm: "sliding-window",
        limits: [{ limit: 5, duration: "1h" }],
        redis: { host: "127.0.0.1", port: redis.port },
      }),
    }],
  };
  const one = await stack(config, upstream, [redis.address]);
  const two = await stack(config, upstream, [redis.address]);
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const envoy = i % 2 === 0 ? one.envoy : two.envoy;
      statuses.push((await get(`${envoy.url}/shared`)).status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    assert.equal(upstream.requestsTo("/shared").length, 5);
  } finally {
    await one.stop();
    await two.stop();
    await upstream.stop();
    await redis.stop();
  }
});

Deno.test("rate-limit (redis): Redis stopped mid-test; failOpen false 503, true passes; then recovers", async (t) => {
  const redis = await RedisServer.start();
  const upstream = Upstream.start();
  const route = (name: string, failOpen: boolean) => ({
    name,
    ...rateLimit({
      backend: "redis",
      failOpen,
      limits: [{ limit: 1000, duration: "1m" }],
      redis: { host: "127.0.0.1", port: redis.port, commandTimeout: "200ms" },
    }),
  });
  const s = await stack({ routes: [route("closed", false), route("open", true)] }, upstream, [redis.address]);
  try {
    await t.step("with Redis up, both pass", async () => {
      assert.equal((await get(`${s.envoy.url}/closed`)).status, 200);
      assert.equal((await get(`${s.envoy.url}/open`)).status, 200);
    });
    await redis.stop();

    await t.step("failOpen false: 503 with a JSON body, upstream not called", async () => {
      const before = upstream.requestsTo("/closed").length;
      const response = await get(`${s.envoy.url}/closed`);
      assert.equal(response.status, 503);
      assert.equal(JSON.parse(response.text).error, "rate_limit_unavailable");
      assert.equal(upstream.requestsTo("/closed").length, before);
    });

    await t.step("failOpen true: the request passes, and a warning says so", async () => {
      const response = await get(`${s.envoy.url}/open`);
      assert.equal(response.status, 200);
      await waitFor(
        "the unchecked-requests warning",
        () => s.engine.lines.some((line) => line.includes("passed unchecked (failOpen)")),
      );
    });

    await t.step("Redis back: the fail-closed route serves again", async () => {
      await redis.restart();
      await waitFor(
        "the route to pass again",
        async () => (await get(`${s.envoy.url}/closed`)).status === 200,
      );
    });
  } finally {
    await s.stop();
    await upstream.stop();
    await redis.stop();
  }
});

Deno.test("rate-limit (redis): a reload that drops the chain closes its Redis connection", async () => {
  const redis = await RedisServer.start();
  const upstream = Upstream.start();
  const config = (backend: string) => ({
    routes: [{
      name: "reloaded",
      ...rateLimit({ backend, limits: [{ limit: 100, duration: "1m" }], redis: { port: redis.port } }),
    }],
  });
  const s = await stack(config("redis"), upstream, [redis.address]);
  try {
    assert.equal((await get(`${s.envoy.url}/reloaded`)).status, 200);
    assert.equal(await redis.otherClients(), 1);
    await s.engine.writeConfig(config("memory"));
    await waitFor("the old chain's connection to close", async () => (await redis.otherClients()) === 0);
    assert.equal((await get(`${s.envoy.url}/reloaded`)).status, 200);
  } finally {
    await s.stop();
    await upstream.stop();
    await redis.stop();
  }
});

Deno.test("rate-limit (redis): a server outside the engine's permissions fails startup, naming it", async () => {
  const { dir, layout } = await EngineProcess.layout();
  const engine = await EngineProcess.start({
    config: {
      routes: [{
        name: "denied",
        ...rateLimit({ backend: "redis", limits: [{ limit: 1, duration: "1s" }], redis: { port: 6999 } }),
      }],
    },
    layout: { dir, layout },
    noWait: true,
  });
  const code = await engine.exited();
  await engine.stop();
  assert.notEqual(code, 0);
  const output = engine.lines.join("\n");
  assert.match(output, /host 127\.0\.0\.1:6999 is outside the permissions/);
  assert.match(output, /parameters\.redis.*route "denied"/);
});
