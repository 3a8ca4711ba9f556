/**
 * Execution conditions are type-checked when compiled, and one that cannot be evaluated at
 * request time is a policy failure under the policy's rule, never a skip.
 */
import assert from "node:assert/strict";
import { compileCondition } from "../../src/chain/condition.ts";
import { runPolicies } from "../../src/chain/run.ts";
import { ExchangeState } from "../../src/chain/state.ts";
import { type Policy, UpstreamRequestModifications } from "../../src/sdk/mod.ts";
import { chain, entry } from "../support/chains.ts";

function state(method = "GET") {
  const s = new ExchangeState({ name: "users-v1" });
  s.shared.requestId = "req-1";
  s.method = method;
  s.path = "/users/1";
  s.requestHeaders.set("x-tenant", ["a"]);
  return s;
}

const marker = (name: string): Policy => ({
  onRequest: () => new UpstreamRequestModifications({ setHeaders: { [name]: "1" } }),
});

Deno.test("conditions over every declared variable compile and evaluate", () => {
  const s = state("POST");
  s.shared.metadata.user = { role: "admin" };
  const holds = (expression: string) => compileCondition(expression)(s, "request");
  assert.equal(holds('request.method == "POST"'), true);
  assert.equal(holds('request.path.startsWith("/users") && request.scheme == ""'), true);
  assert.equal(holds('request.headers["x-tenant"] == "a"'), true);
  assert.equal(holds('"x-missing" in request.headers'), false);
  assert.equal(holds('request.headers[?"x-missing"].orValue("") == ""'), true);
  assert.equal(holds('metadata.user.role == "admin"'), true);
  assert.equal(holds('route.name == "users-v1"'), true);
  assert.equal(holds("response.status >= 400"), false, "the request phase sees response zero values");
  s.status = 503;
  assert.equal(compileCondition("response.status >= 500")(s, "response"), true);
});

Deno.test("unknown variables and fields, type errors and non-bool results are rejected at compile time", () => {
  const rejected: [string, RegExp][] = [
    ['request.methd == "POST"', /does not type-check: No such key: methd/],
    ["request.method == 1", /does not type-check: .*string == int/],
    ['req.method == "GET"', /does not type-check: Unknown variable: req/],
    ["response.status == 200.0", /does not type-check/],
    ["request.method", /is of type string, not bool/],
    ["metadata.flag", /is of type dyn, not bool \(compare the value/],
    ['request.method == "a" ||', /invalid CEL expression/],
  ];
  for (const [expression, message] of rejected) {
    assert.throws(() => compileCondition(expression), (error: Error) => {
      assert.match(error.message, message);
      assert.ok(error.message.includes(JSON.stringify(expression)), "the message names the expression");
      return true;
    });
  }
});

Deno.test("an evaluation error at request time denies under the default rule", async () => {
  const c = chain(
    entry("jwt:v1", marker("x-jwt"), { condition: compileCondition('request.headers["x-api"] == "1"') }),
    entry("next:v1", marker("x-next")),
  );
  const s = state();
  const outcome = await runPolicies(c.request, 0, 2, "request", s);
  assert.equal(outcome?.statusCode, 500);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(outcome?.body)), {
    error: "policy_error",
    policy: "jwt:v1",
    requestId: "req-1",
  });
  assert.equal(s.requestHeaders.has("x-next"), false);
});

Deno.test("an evaluation error continues under onFailure: continue, skipping only that policy", async () => {
  const seen: string[] = [];
  const c = chain(
    entry("jwt:v1", marker("x-jwt"), {
      condition: compileCondition('request.headers["x-api"] == "1"'),
      onFailure: "continue",
    }),
    entry("next:v1", marker("x-next")),
  );
  const s = state();
  assert.equal(
    await runPolicies(c.request, 0, 2, "request", s, {
      policyDecided: (entry, decision) => seen.push(`${entry.label}/${decision.outcome}`),
    }),
    undefined,
  );
  assert.equal(s.requestHeaders.has("x-jwt"), false);
  assert.equal(s.requestHeaders.get("x-next"), "1");
  assert.deepEqual(seen, ["jwt:v1/failed", "next:v1/modified"]);
});

Deno.test("a true condition runs the policy and a false one skips it", async () => {
  const post = compileCondition('request.method == "POST"');
  const c = chain(entry("post-only:v1", marker("x-post"), { condition: post }));
  const get = state("GET");
  assert.equal(await runPolicies(c.request, 0, 1, "request", get), undefined);
  assert.equal(get.requestHeaders.has("x-post"), false);
  const postState = state("POST");
  await runPolicies(c.request, 0, 1, "request", postState);
  assert.equal(postState.requestHeaders.get("x-post"), "1");
});
