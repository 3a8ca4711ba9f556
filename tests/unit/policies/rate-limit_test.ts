/**
 * The rate-limit policy's logic: the three algorithms with an injected clock, held to the
 * same cases in the memory store and in a real Redis (the Lua script), the memory bound,
 * Redis failures, keys and the response fields.
 */
import assert from "node:assert/strict";
import type { RequestContext } from "@tollgate/sdk";
import type { Algorithm, Decision } from "../../../policies/rate-limit/algorithms.ts";
import { compileKey } from "../../../policies/rate-limit/keys.ts";
import { durationMs, type Limit, parseLimits } from "../../../policies/rate-limit/limits.ts";
import { type LimitStore, MemoryStore, StoreUnavailable } from "../../../policies/rate-limit/memory_store.ts";
import { RedisStore } from "../../../policies/rate-limit/redis_store.ts";
import { limitedResponse, policyField, rateLimitHeaders } from "../../../policies/rate-limit/response.ts";
import { RedisServer } from "../../support/redis.ts";

type StoreFactory = (algorithm: Algorithm, limits: Limit[], now: () => number) => Promise<LimitStore>;

/** One request at a time `at`, and what it must get: allowed, remaining per limit, retry-after. */
interface Step {
  readonly at: number;
  readonly allowed: boolean;
  readonly remaining: readonly number[];
  readonly retryAfterMs?: number;
  readonly resetMs?: readonly number[];
}

const T0 = 1_700_000_000_000; // a whole second, so window boundaries fall on round times

interface Case {
  readonly name: string;
  readonly algorithm: Algorithm;
  readonly limits: { limit: number; duration: string; burst?: number }[];
  readonly steps: readonly Step[];
}

const CASES: readonly Case[] = [
  {
    name: "fixed window: the limit per window, then a fresh window",
    algorithm: "fixed-window",
    limits: [{ limit: 3, duration: "1s" }],
    steps: [
      { at: 100, allowed: true, remaining: [2], resetMs: [900] },
      { at: 200, allowed: true, remaining: [1] },
      { at: 300, allowed: true, remaining: [0] },
      { at: 400, allowed: false, remaining: [0], retryAfterMs: 600 },
      { at: 1000, allowed: true, remaining: [2], resetMs: [1000] },
    ],
  },
  {
    name: "token bucket: a burst, then one token per refill interval",
    algorithm: "token-bucket",
    limits: [{ limit: 2, duration: "1s" }],
    steps: [
      { at: 0, allowed: true, remaining: [1], resetMs: [500] },
      { at: 0, allowed: true, remaining: [0], resetMs: [1000] },
      { at: 0, allowed: false, remaining: [0], retryAfterMs: 500 },
      { at: 250, allowed: false, remaining: [0], retryAfterMs: 250 },
      { at: 500, allowed: true, remaining: [0] },
      { at: 5000, allowed: true, remaining: [1], resetMs: [500] },
    ],
  },
  {
    name: "token bucket: burst above the rate",
    algorithm: "token-bucket",
    limits: [{ limit: 1, duration: "1s", burst: 3 }],
    steps: [
      { at: 0, allowed: true, remaining: [2] },
      { at: 0, allowed: true, remaining: [1] },
      { at: 0, allowed: true, remaining: [0] },
      { at: 0, allowed: false, remaining: [0], retryAfterMs: 1000 },
    ],
  },
  {
    name: "sliding window: the previous window still counts, weighted (no boundary burst)",
    algorithm: "sliding-window",
    limits: [{ limit: 4, duration: "1s" }],
    steps: [
      { at: 100, allowed: true, remaining: [3] },
      { at: 100, allowed: true, remaining: [2] },
      { at: 100, allowed: true, remaining: [1] },
      { at: 100, allowed: true, remaining: [0] },
      { at: 100, allowed: false, remaining: [0], retryAfterMs: 900 + 250 },
      // At 1500 the previous window (4) weighs half: estimate 2.
      { at: 1500, allowed: true, remaining: [1] },
      { at: 1500, allowed: true, remaining: [0] },
      { at: 1500, allowed: false, remaining: [0], retryAfterMs: 250 },
      { at: 1750, allowed: true, remaining: [0] },
      { at: 3000, allowed: true, remaining: [3] },
    ],
  },
  {
    name: "several limits: all must pass; a denied request uses up nothing",
    algorithm: "fixed-window",
    limits: [{ limit: 2, duration: "1s" }, { limit: 3, duration: "10s" }],
    steps: [
      { at: 0, allowed: true, remaining: [1, 2] },
      { at: 0, allowed: true, remaining: [0, 1] },
      { at: 0, allowed: false, remaining: [0, 1], retryAfterMs: 1000 },
      { at: 1000, allowed: true, remaining: [1, 0] },
      { at: 2000, allowed: false, remaining: [2, 0], retryAfterMs: 8000 },
      { at: 10_000, allowed: true, remaining: [1, 2] },
    ],
  },
];

async function runCase(factory: StoreFactory, c: Case, key: string): Promise<void> {
  let now = T0;
  const store = await factory(c.algorithm, parseLimits(c.limits), () => now);
  try {
    for (const [i, step] of c.steps.entries()) {
      now = T0 + step.at;
      const decision: Decision = await store.take(key);
      const where = `step ${i} (t=${step.at})`;
      assert.equal(decision.allowed, step.allowed, `${where}: allowed`);
      assert.deepEqual(decision.limits.map((l) => l.remaining), step.remaining, `${where}: remaining`);
      assert.equal(decision.retryAfterMs, step.retryAfterMs ?? 0, `${where}: retry after`);
      if (step.resetMs) {
        assert.deepEqual(decision.limits.map((l) => l.resetMs), step.resetMs, `${where}: reset`);
      }
    }
  } finally {
    await store.close();
  }
}

const memory: StoreFactory = (algorithm, limits, now) =>
  Promise.resolve(new MemoryStore(algorithm, limits, 100, now));

for (const c of CASES) {
  Deno.test(`rate-limit memory store: ${c.name}`, () => runCase(memory, c, "k"));
}

Deno.test("rate-limit Redis store: the same cases through the Lua script", async (t) => {
  const redis = await RedisServer.start();
  try {
    const factory: StoreFactory = (algorithm, limits, now) =>
      RedisStore.open(algorithm, limits, redisOptions(redis), now);
    for (const [i, c] of CASES.entries()) {
      await t.step(c.name, () => runCase(factory, c, `case-${i}`));
    }
  } finally {
    await redis.stop();
  }
});

function redisOptions(redis: RedisServer) {
  return {
    host: "127.0.0.1",
    port: redis.port,
    db: 0,
    keyPrefix: "test:",
    connectTimeoutMs: 500,
    commandTimeoutMs: 200,
  };
}

Deno.test("rate-limit Redis store: unreachable is StoreUnavailable at once, and it recovers", async () => {
  const redis = await RedisServer.start();
  const limits = parseLimits([{ limit: 5, duration: "1m" }]);
  const store = await RedisStore.open("fixed-window", limits, redisOptions(redis));
  try {
    assert.equal((await store.take("k")).limits[0].remaining, 4);
    await redis.stop();
    await assert.rejects(() => store.take("k"), StoreUnavailable);
    await redis.restart();
    // The client reconnects by itself; the restarted server has no data (nothing persisted).
    let decision: Decision | undefined;
    for (let i = 0; i < 100 && !decision; i++) {
      decision = await store.take("k").catch(() => undefined);
      if (!decision) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(decision?.limits[0].remaining, 4);
  } finally {
    await store.close();
    await redis.stop();
  }
});

Deno.test("rate-limit Redis store: a server that does not answer times out as StoreUnavailable", async () => {
  const redis = await RedisServer.start();
  const store = await RedisStore.open("fixed-window", parseLimits([{ limit: 5, duration: "1m" }]), {
    ...redisOptions(redis),
    commandTimeoutMs: 100,
  });
  try {
    await store.take("k");
    redis.pause();
    await assert.rejects(
      () => store.take("k"),
      (e) => e instanceof StoreUnavailable && /100ms/.test(e.message),
    );
  } finally {
    redis.resume();
    await store.close();
    await redis.stop();
  }
});

Deno.test("rate-limit memory store: bounded; the least recently used key goes first", async () => {
  const store = new MemoryStore("fixed-window", parseLimits([{ limit: 2, duration: "1h" }]), 100);
  await store.take("keep");
  for (let i = 0; i < 150; i++) {
    await store.take(`client-${i}`);
    await store.take("keep");
  }
  assert.equal(store.size, 100);
  const kept = await store.take("keep");
  assert.equal(kept.allowed, false, "the busy key kept its count");
});

Deno.test("rate-limit durations: units add up; zero and bad text are refused", () => {
  assert.equal(durationMs("1h30m"), 5_400_000);
  assert.equal(durationMs("500ms"), 500);
  assert.equal(durationMs("1d"), 86_400_000);
  assert.throws(() => durationMs("0s"), /longer than 0/);
  assert.throws(() => durationMs("1 s"), /invalid duration/);
  assert.throws(() => parseLimits([{ limit: 1, duration: "0ms" }]), /limits\[0\]/);
});

function request(init: {
  headers?: Record<string, string>;
  metadata?: Record<string, unknown>;
  clientAddress?: string;
}): RequestContext {
  const headers = new Map(Object.entries(init.headers ?? {}));
  return {
    shared: { requestId: "r", route: { name: "users" }, metadata: init.metadata ?? {} },
    headers: {
      get: (name: string) => headers.get(name),
      getAll: (name: string) => (headers.has(name) ? [headers.get(name)!] : []),
      has: (name: string) => headers.has(name),
    },
    clientAddress: init.clientAddress,
  } as unknown as RequestContext;
}

Deno.test("rate-limit keys: parts joined unambiguously; absent values share one key", () => {
  const key = compileKey([{ type: "header", key: "X-User" }, { type: "metadata", key: "auth.claims.sub" }]);
  assert.equal(
    key(request({ headers: { "x-user": "a:b" }, metadata: { auth: { claims: { sub: "c" } } } })),
    "a%3Ab:c",
  );
  assert.equal(
    key(request({ headers: { "x-user": "a" }, metadata: { auth: { claims: { sub: "b:c" } } } })),
    "a:b%3Ac",
  );
  assert.equal(key(request({})), "-:-");
  assert.equal(compileKey([])(request({})), "users", "the route by default");
  assert.equal(
    compileKey([{ type: "metadata", key: "auth.subject" }])(
      request({ metadata: { auth: { subject: 7 } } }),
    ),
    "7",
  );
});

Deno.test("rate-limit keys: a long value is hashed, so keys stay small", () => {
  const key = compileKey([{ type: "header", key: "x-user" }])(
    request({ headers: { "x-user": "x".repeat(10_000) } }),
  );
  assert.match(key, /^sha256=[0-9a-f]{64}$/);
});

Deno.test("rate-limit keys: the client address; unknown is an error, never one shared key", () => {
  const key = compileKey([{ type: "ip" }]);
  assert.equal(key(request({ clientAddress: "2001:db8::1" })), "2001%3Adb8%3A%3A1");
  assert.throws(() => key(request({})), /source\.address/);
  assert.throws(() => compileKey([{ type: "header" }]), /keyExtraction\[0\].*needs a "key"/);
});

Deno.test("rate-limit fields: the limit closest to running out, and a 429 with Retry-After", () => {
  const limits = parseLimits([{ limit: 10, duration: "1s" }, { limit: 1000, duration: "1h" }]);
  const policy = policyField(limits, false);
  assert.equal(policy, "10;w=1, 1000;w=3600");
  const allowed: Decision = {
    allowed: true,
    retryAfterMs: 0,
    limits: [{ remaining: 9, resetMs: 400 }, { remaining: 3, resetMs: 1_800_000 }],
  };
  assert.deepEqual(rateLimitHeaders(limits, allowed, policy), {
    "ratelimit-limit": "1000",
    "ratelimit-remaining": "3",
    "ratelimit-reset": "1800",
    "ratelimit-policy": policy,
  });
  const denied: Decision = {
    allowed: false,
    retryAfterMs: 1_500,
    limits: [{ remaining: 0, resetMs: 1_500 }, { remaining: 3, resetMs: 1_800_000 }],
  };
  const response = limitedResponse(limits, denied, rateLimitHeaders(limits, denied, policy));
  assert.equal(response.statusCode, 429);
  assert.equal(response.headers?.["retry-after"], "2");
  assert.equal(response.headers?.["ratelimit-remaining"], "0");
  assert.equal(response.headers?.["content-type"], "application/json");
  const body = JSON.parse(response.body as string);
  assert.equal(body.error, "rate_limited");
  assert.match(body.message, /10 per 1s/);
});

Deno.test("rate-limit example.yaml: every example builds with the real registry and schema", async () => {
  const { PolicyRegistry } = await import("../../../src/registry/registry.ts");
  const { generatedPolicies } = await import("../../../src/gen/registry.ts");
  const { parse } = await import("yaml");
  const registry = new PolicyRegistry(generatedPolicies);
  const examples = parse(
    await Deno.readTextFile(new URL("../../../policies/rate-limit/example.yaml", import.meta.url)),
  );
  assert.ok(examples.length >= 2);
  for (const example of examples) {
    const found = registry.find(example.name, example.version);
    assert.ok(found.ok, "rate-limit is in the default build");
    const resolved = found.policy.parameters.resolve(example.parameters, {});
    assert.ok(resolved.ok, JSON.stringify(!resolved.ok && resolved.problems));
    const instance = await found.policy.factory!({
      routeName: "example",
      policyName: "rate-limit",
      policyVersion: "v1.0.0",
      attachedTo: "route",
    }, resolved.params);
    await instance.close?.();
  }
});

Deno.test("rate-limit parameters: defaults filled in; a bad duration or key type is refused", async () => {
  const { PolicyRegistry } = await import("../../../src/registry/registry.ts");
  const { generatedPolicies } = await import("../../../src/gen/registry.ts");
  const found = new PolicyRegistry(generatedPolicies).find("rate-limit", "v1");
  assert.ok(found.ok);
  const resolved = found.policy.parameters.resolve({ limits: [{ limit: 1, duration: "1s" }] }, {});
  assert.ok(resolved.ok);
  assert.equal(resolved.params.algorithm, "token-bucket");
  assert.equal(resolved.params.backend, "memory");
  assert.equal(resolved.params.failOpen, false);
  assert.deepEqual(resolved.params.memory, { maxEntries: 10000 });
  assert.equal((resolved.params.redis as { commandTimeout: string }).commandTimeout, "100ms");
  const bad = found.policy.parameters.resolve({ limits: [{ limit: 1, duration: "1 sec" }] }, {});
  assert.ok(!bad.ok);
  assert.deepEqual(bad.problems[0].segments, ["parameters", "limits", 0, "duration"]);
  assert.ok(
    !found.policy.parameters.resolve({
      limits: [{ limit: 1, duration: "1s" }],
      keyExtraction: [{ type: "cel" }],
    }, {}).ok,
  );
  assert.ok(!found.policy.parameters.resolve({}, {}).ok, "limits are required");
});

Deno.test("rate-limit policy: fields wait for the response phase; without them the response phase is skipped", async () => {
  const { getPolicy } = await import("../../../policies/rate-limit/mod.ts");
  const metadata = {
    routeName: "users",
    policyName: "rate-limit",
    policyVersion: "v1.0.0",
    attachedTo: "route",
  } as const;
  const params = {
    limits: [{ limit: 1, duration: "1h" }],
    algorithm: "fixed-window",
    keyExtraction: [],
    backend: "memory",
    failOpen: false,
    memory: { maxEntries: 100 },
    redis: {
      host: "127.0.0.1",
      port: 6379,
      db: 0,
      keyPrefix: "t:",
      connectTimeout: "1s",
      commandTimeout: "100ms",
    },
    headers: { includeIETF: true },
  } as const;
  const { instanceMode } = await import("../../../src/registry/modes.ts");
  const { generatedPolicies } = await import("../../../src/gen/registry.ts");
  const { definition } = generatedPolicies.find((p) => p.definition.name === "rate-limit")!;
  const policy = await getPolicy(metadata, params);
  assert.equal(instanceMode(definition.processingMode, params).responseHeaderMode, "PROCESS");
  const ctx = request({});
  assert.equal(await policy.onRequest!(ctx, params), undefined, "an allowed request passes unchanged");
  const response = { shared: ctx.shared } as unknown as Parameters<NonNullable<typeof policy.onResponse>>[0];
  const changes = await policy.onResponse!(response, params);
  assert.equal(changes?.kind, "upstream-response");
  assert.equal(changes?.setHeaders?.["ratelimit-remaining"], "0");
  assert.equal(await policy.onResponse!(response, params), undefined, "the fields are sent once");
  const limited = await policy.onRequest!(request({}), params);
  assert.equal(limited?.kind, "immediate-response");
  await policy.close?.();

  const quietParams = { ...params, headers: { includeIETF: false } };
  assert.equal(instanceMode(definition.processingMode, quietParams).responseHeaderMode, "SKIP");
  const quiet = await getPolicy(metadata, quietParams);
  await quiet.close?.();
});
