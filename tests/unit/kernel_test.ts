/**
 * The kernel's route resolution: configured routes are counted, unmatched ones are counted,
 * logged once per name with bounded memory, and passed, denied or given the default chain;
 * and what a new table drops compared with the running one.
 */
import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { parseConfig } from "../../src/config/load.ts";
import { compileCondition } from "../../src/chain/condition.ts";
import { generatedPolicies } from "../../src/gen/test/registry.ts";
import { buildRouteTable } from "../../src/kernel/build.ts";
import { droppedProtection } from "../../src/kernel/dropped.ts";
import { Kernel, type RouteTable } from "../../src/kernel/routes.ts";
import { MAX_NAMES } from "../../src/kernel/unmatched.ts";
import { PolicyRegistry } from "../../src/registry/registry.ts";

const registry = new PolicyRegistry(generatedPolicies);
const removeServer = (enabled = true) => ({
  name: "remove-headers",
  version: "v1",
  parameters: { responseHeaders: [{ name: "server" }] },
  enabled,
});
const stamp = (value: string) => ({
  name: "set-headers",
  version: "v1",
  parameters: { requestHeaders: [{ name: "x-stamp", value }] },
});

async function table(config: Record<string, unknown>): Promise<RouteTable> {
  const parsed = parseConfig(JSON.stringify(config), "t.yaml", {}, {
    pythonInterpreter: "x",
    pythonHome: ".",
  });
  return await buildRouteTable(parsed, { registry, factoryFor: (p) => p.factory, compileCondition });
}

/** Runs `fn` with log records of the "tollgate" category collected. */
async function withLogs(fn: () => void | Promise<void>): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  await configure({
    sinks: { collect: (record) => records.push(record) },
    loggers: [
      { category: ["tollgate"], lowestLevel: "debug", sinks: ["collect"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
  });
  try {
    await fn();
  } finally {
    await reset();
  }
  return records;
}

const unmatchedLogs = (records: LogRecord[]) =>
  records.filter((r) => r.category.join(".") === "tollgate.kernel.unmatched");

Deno.test("configured routes are counted; unmatched names pass, logged once each", async () => {
  const kernel = new Kernel(await table({ routes: [{ name: "api", policies: [stamp("1")] }] }));
  const records = await withLogs(() => {
    assert.ok(kernel.resolve("api").chain);
    assert.ok(kernel.resolve("api").chain);
    for (let i = 0; i < 3; i++) {
      const resolution = kernel.resolve("user-v1");
      assert.equal(resolution.chain, undefined);
      assert.equal(resolution.unmatched, "pass");
    }
    assert.equal(kernel.resolve(undefined).unmatched, "pass");
    kernel.resolve(undefined);
  });
  assert.equal(kernel.requestCounts().get("api"), 2);
  assert.deepEqual(kernel.unmatched.snapshot(), {
    requests: 5,
    withoutRouteName: 2,
    routes: { "user-v1": 3 },
    otherRoutes: 0,
  });
  const logs = unmatchedLogs(records);
  assert.equal(logs.length, 2, "one line for the name, one for the missing attribute");
  assert.equal(logs[0].properties.route, "user-v1");
  assert.match(String(logs[1].message.join("")), /without a route name.*request_attributes/);
});

Deno.test("deny refuses unmatched routes; a default chain runs for them", async () => {
  const deny = new Kernel(await table({ unmatchedRoutes: "deny", routes: [] }));
  await withLogs(() => {
    assert.deepEqual(deny.resolve("x").unmatched, "deny");
    assert.deepEqual(deny.resolve(undefined).unmatched, "deny");
  });
  const fallback = new Kernel(await table({ defaultPolicies: [stamp("default")], routes: [] }));
  await withLogs(() => {
    const resolution = fallback.resolve("anything");
    assert.equal(resolution.unmatched, "default");
    assert.deepEqual(resolution.chain?.entries.map((e) => e.label), ["set-headers:v1"]);
  });
});

Deno.test("at most MAX_NAMES names are remembered; further ones are summed up in one line", async () => {
  const kernel = new Kernel(await table({ routes: [] }));
  const records = await withLogs(() => {
    for (let i = 0; i < MAX_NAMES + 50; i++) kernel.resolve(`route-${i}`);
  });
  const snapshot = kernel.unmatched.snapshot();
  assert.equal(Object.keys(snapshot.routes).length, MAX_NAMES);
  assert.equal(snapshot.otherRoutes, 50);
  assert.equal(snapshot.requests, MAX_NAMES + 50);
  const logs = unmatchedLogs(records);
  assert.equal(logs.length, MAX_NAMES + 1, "one per remembered name, then a single summary");
  assert.match(String(logs.at(-1)!.message.join("")), /more requests for route names with no chain/);
});

Deno.test("request counts survive a reload for routes that stay; a reload logs names anew", async () => {
  const kernel = new Kernel(
    await table({ routes: [{ name: "a", policies: [] }, { name: "b", policies: [] }] }),
  );
  await withLogs(() => {
    kernel.resolve("a");
    kernel.resolve("b");
    kernel.resolve("zzz");
  });
  kernel.swap(await table({ routes: [{ name: "a", policies: [] }, { name: "c", policies: [] }] }));
  assert.deepEqual([...kernel.requestCounts()], [["a", 1], ["c", 0]]);
  const records = await withLogs(() => void kernel.resolve("zzz"));
  assert.equal(unmatchedLogs(records).length, 1);
  assert.equal(kernel.unmatched.snapshot().requests, 2);
});

Deno.test("a new table's dropped routes, policies, default chain and deny → pass are named", async () => {
  const before = await table({
    unmatchedRoutes: "deny",
    routes: [
      { name: "api", policies: [stamp("1"), removeServer()] },
      { name: "gone", policies: [stamp("1")] },
      { name: "same", policies: [stamp("1")] },
    ],
  });
  const after = await table({
    defaultPolicies: [],
    routes: [
      { name: "api", policies: [stamp("2"), removeServer(false)] },
      { name: "same", policies: [stamp("2")] },
      { name: "new", policies: [] },
    ],
  });
  assert.deepEqual(droppedProtection(before, after), [
    'route "api": remove-headers:v1',
    'route "gone" (removed; it ran set-headers:v1)',
    "unmatchedRoutes: deny → pass",
  ]);
  assert.deepEqual(droppedProtection(after, before), [
    'route "new" (removed)',
  ]);
  const withDefault = await table({ defaultPolicies: [stamp("d")], routes: [] });
  const withoutDefault = await table({ routes: [] });
  assert.deepEqual(droppedProtection(withDefault, withoutDefault), ["defaultPolicies: set-headers:v1"]);
});

Deno.test("default chain problems are reported at defaultPolicies", async () => {
  await assert.rejects(
    table({ defaultPolicies: [{ name: "nope", version: "v1" }], routes: [] }),
    /defaultPolicies\[0\]\.name: unknown policy nope.*\(defaultPolicies, policy nope:v1\)/,
  );
});

Deno.test("a header name the engine always refuses is a config error at chain build, naming the parameter", async () => {
  const entry = (name: string, parameters: Record<string, unknown>) => ({ name, version: "v1", parameters });
  const build = table({
    routes: [{
      name: "api",
      policies: [
        entry("set-headers", {
          requestHeaders: [{ name: "x-ok", value: "1" }, { name: "Content-Length", value: "1" }],
        }),
        entry("add-headers", { responseHeaders: [{ name: "transfer-encoding", value: "chunked" }] }),
        entry("remove-headers", { requestHeaders: [{ name: "host" }] }),
        entry("respond", { statusCode: 200, body: "", headers: [{ name: "connection", value: "close" }] }),
        entry("jwt-auth", { jwksUrl: "https://idp.test/jwks", claimMappings: { sub: "upgrade" } }),
      ],
    }],
  });
  const error = await build.then(() => undefined, (e: Error) => e);
  assert.ok(error, "the build fails");
  for (
    const expected of [
      /routes\[0\]\.policies\[0\]\.parameters\.requestHeaders\[1\]\.name: header content-length: .*managed by Envoy.*refuse it on every request.*route "api", policy set-headers:v1/,
      /routes\[0\]\.policies\[1\]\.parameters\.responseHeaders\[0\]\.name: header transfer-encoding.*policy add-headers:v1/,
      /routes\[0\]\.policies\[2\]\.parameters\.requestHeaders\[0\]\.name: header host.*policy remove-headers:v1/,
      /routes\[0\]\.policies\[3\]\.parameters\.headers\[0\]\.name: header connection.*policy respond:v1/,
      /routes\[0\]\.policies\[4\]\.parameters\.claimMappings\.sub: header upgrade.*policy jwt-auth:v1/,
    ]
  ) assert.match(error.message, expected);
  assert.doesNotMatch(error.message, /x-ok/);
});
