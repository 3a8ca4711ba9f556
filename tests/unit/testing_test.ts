/**
 * `@tollgate/sdk/testing`: chains built by the engine's builder and run as Envoy drives
 * them; what the upstream and the client receive; parameter errors as `validate` words
 * them; the decision trace; policies from their directories; Python through a real executor.
 */
import assert from "node:assert/strict";
import { generatedPolicies, pythonRegistry } from "../../src/gen/test/registry.ts";
import { runPolicy, testChain, testPolicy } from "@tollgate/sdk/testing";

const build = { policies: generatedPolicies, pythonRegistry };

Deno.test("harness: the upstream gets the request with the policies' changes, the client the changed response", async () => {
  await using harness = await testChain([
    {
      name: "set-headers",
      parameters: {
        requestHeaders: [{ name: "x-team", value: "users" }],
        responseHeaders: [{ name: "x-served-by", value: "tollgate" }],
      },
    },
    { name: "remove-headers", parameters: { requestHeaders: [{ name: "cookie" }] } },
  ]);
  const result = await harness.request(
    { method: "POST", path: "/users?id=1", headers: { cookie: "a=1", accept: "*/*" }, body: "hello" },
    { status: 201, headers: { "content-type": "text/plain" }, body: "made" },
  );
  assert.equal(result.immediate, undefined);
  assert.equal(result.upstream?.method, "POST");
  assert.equal(result.upstream?.query.get("id"), "1");
  assert.deepEqual(result.upstream?.headers.toJSON(), { accept: ["*/*"], "x-team": ["users"] });
  assert.equal(
    result.upstream?.text(),
    "hello",
    "no policy buffers the body: it reaches the upstream as sent",
  );
  assert.equal(result.response.status, 201);
  assert.deepEqual(result.response.headers.toJSON(), {
    "content-type": ["text/plain"],
    "x-served-by": ["tollgate"],
  });
  assert.equal(result.response.text(), "made");
  assert.deepEqual(
    result.trace.map((d) => [d.policy, d.version, d.phase, d.outcome]),
    [
      ["set-headers", "v1.0.0", "request", "modified"],
      ["remove-headers", "v1.0.0", "request", "modified"],
      ["set-headers", "v1.0.0", "response", "modified"],
    ],
  );
});

Deno.test("harness: an immediate response ends the chain; the upstream is never called", async () => {
  const result = await runPolicy("respond", {
    parameters: {
      statusCode: 410,
      headers: [{ name: "content-type", value: "application/json" }],
      body: '{"a":1}',
    },
    request: { path: "/legacy" },
  });
  assert.equal(result.upstream, undefined);
  assert.equal(result.immediate?.status, 410);
  assert.equal(result.immediate?.policy, "respond:v1");
  assert.equal(result.immediate?.phase, "request");
  assert.deepEqual(result.response.json(), { a: 1 });
  assert.equal(result.response.headers.get("content-type"), "application/json");
  assert.deepEqual(result.trace.map((d) => [d.outcome, d.reason]), [["denied", "410"]]);
});

Deno.test("harness: a bad parameter throws the chain-build message validate prints", async () => {
  await assert.rejects(
    testPolicy("set-headers", { parameters: { requestHeaders: [{ name: "x" }] } }),
    (error: Error) => {
      assert.match(error.message, /cannot build the routes of <test chain>/);
      assert.match(
        error.message,
        /routes\[0\]\.policies\[0\]\.parameters\.requestHeaders\[0\]\.value: is required \(route "test-route", policy set-headers:v1\)/,
      );
      return true;
    },
  );
  await assert.rejects(testPolicy("no-such-policy"), /unknown policy no-such-policy/);
});

Deno.test("harness: a body policy's change rewrites content-length; defaults come from the schema", async () => {
  await using harness = await testPolicy("replace-body", { build });
  const result = await harness.request({
    method: "POST",
    headers: { "content-type": "application/json", "content-length": "9" },
    body: { a: "b" },
  });
  assert.deepEqual(result.upstream?.json(), { a: "b", originalLength: 9 });
  assert.equal(result.upstream?.headers.get("content-length"), String(result.upstream?.body.byteLength));
});

Deno.test("harness: conditions, failure rules, shared metadata and analytics show in the result", async () => {
  await using harness = await testChain([
    { name: "trace", parameters: { label: "A" } },
    { name: "fail", onFailure: "continue" },
    { name: "trace", parameters: { label: "B" }, executionCondition: 'request.method == "POST"' },
    { name: "tag", parameters: { key: "tier", value: "gold" } },
  ], { build });
  const result = await harness.request({ method: "GET" });
  assert.deepEqual(
    result.trace.filter((d) => d.phase === "request").map((d) => [d.policy, d.outcome, d.reason]),
    [
      ["trace", "modified", undefined],
      ["fail", "failed", "error"],
      ["trace", "skipped", "condition_false"],
      ["tag", "passed", undefined],
    ],
  );
  assert.deepEqual(result.analytics, { tier: "gold" });
  assert.ok(Object.keys(result.metadata).length > 0, "the trace policy wrote the shared metadata");

  await using denying = await testChain([{ name: "fail" }, { name: "trace", parameters: { label: "A" } }], {
    build,
  });
  const denied = await denying.request({ headers: { "x-request-id": "r-7" } });
  assert.equal(denied.immediate?.status, 500);
  assert.deepEqual(denied.response.json(), { error: "policy_error", policy: "fail:v1", requestId: "r-7" });
  assert.deepEqual(denied.trace.map((d) => [d.outcome, d.reason]), [["failed", "error"], [
    "skipped",
    "short_circuit",
  ]]);
});

Deno.test("harness: a policy from its directory (not in the build)", async () => {
  const dir = new URL("../fixtures/policies/tag/", import.meta.url);
  const result = await runPolicy(dir, { parameters: { key: "k", value: "v" } });
  assert.deepEqual(result.analytics, { k: "v" });
  assert.equal(result.trace[0].policy, "tag");
  await assert.rejects(
    testPolicy("./tests/fixtures/policies/tag", { parameters: {} }),
    /parameters\.key: is required \(route "test-route", policy tag:v1\)/,
  );
  await assert.rejects(testPolicy("./tests/fixtures/no-such-dir"), /policy-definition\.yaml: .*No such file/);
});

Deno.test("harness: a policy directory replaces the compiled-in policy of the same name and major version", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tollgate-harness-policy-" });
  try {
    await Deno.writeTextFile(`${dir}/policy-definition.yaml`, "name: respond\nversion: v1.9.0\n");
    await Deno.writeTextFile(
      `${dir}/mod.ts`,
      `import { UpstreamRequestModifications } from "@tollgate/sdk";
export const getPolicy = () => ({ onRequest: () => new UpstreamRequestModifications({ setHeaders: { "x-edited": "yes" } }) });
`,
    );
    const result = await runPolicy(dir);
    assert.equal(result.immediate, undefined, "the edited code ran, not the compiled-in respond");
    assert.equal(result.upstream?.headers.get("x-edited"), "yes");
    assert.deepEqual([result.trace[0].policy, result.trace[0].version], ["respond", "v1.9.0"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("harness: a body replaced without buffering goes upstream without content-length, as Envoy sends it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tollgate-harness-policy-" });
  try {
    await Deno.writeTextFile(`${dir}/policy-definition.yaml`, "name: blind-body\nversion: v1.0.0\n");
    await Deno.writeTextFile(
      `${dir}/mod.ts`,
      `import { UpstreamRequestModifications } from "@tollgate/sdk";
export const getPolicy = () => ({ onRequest: () => new UpstreamRequestModifications({ body: "replaced" }) });
`,
    );
    const result = await runPolicy(dir, {
      request: { method: "POST", headers: { "content-length": "3" }, body: "old" },
    });
    assert.equal(result.upstream?.text(), "replaced");
    assert.equal(
      result.upstream?.headers.has("content-length"),
      false,
      "CONTINUE_AND_REPLACE: Envoy drops it",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("harness: a skipRemaining failure skips the rest of the phase, and the trace says so", async () => {
  await using harness = await testChain([
    { name: "fail", onFailure: "skipRemaining" },
    { name: "trace", parameters: { label: "A" } },
  ], { build });
  const result = await harness.request({ headers: { "x-trace": "client" } });
  assert.equal(result.immediate, undefined);
  assert.deepEqual(result.upstream?.headers.getAll("x-trace"), ["client"], "trace did not run");
  assert.deepEqual(
    result.trace.filter((d) => d.phase === "request").map((d) => [d.policy, d.outcome, d.reason]),
    [["fail", "failed", "error"], ["trace", "skipped", "skip_remaining"]],
  );
});

Deno.test({
  name: "harness: Python policies run in a real executor, in the same chain as TypeScript ones",
  async fn() {
    await using harness = await testChain([
      { name: "json-body-rewrite", parameters: { remove: ["internalNote"], set: { source: "gateway" } } },
      { name: "add-python-header" },
      { dir: new URL("../fixtures/policies/py-stamp/", import.meta.url), parameters: { label: "P" } },
      { name: "set-headers", parameters: { responseHeaders: [{ name: "x-served-by", value: "tollgate" }] } },
    ]);
    const result = await harness.request({
      method: "POST",
      path: "/orders",
      headers: { "content-type": "application/json" },
      body: { item: 1, internalNote: "x" },
    });
    assert.deepEqual(result.upstream?.json(), { item: 1, source: "gateway" });
    assert.equal(result.upstream?.headers.get("x-python-policy"), "hello-from-python");
    assert.equal(result.upstream?.headers.get("x-trace"), "P");
    assert.deepEqual(result.metadata.trace, ["P"]);
    assert.equal(result.response.headers.get("x-py-metadata"), "P");
    assert.equal(result.response.headers.get("x-served-by"), "tollgate");
    assert.deepEqual(
      result.trace.filter((d) => d.phase === "request").map((d) => [d.policy, d.outcome]),
      [["json-body-rewrite", "modified"], ["add-python-header", "modified"], ["py-stamp", "modified"]],
    );
  },
});
