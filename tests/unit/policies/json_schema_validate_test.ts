import assert from "node:assert/strict";
import { parseConfig } from "../../../src/config/load.ts";
import { formatProblem, ProblemsError } from "../../../src/config/problem.ts";
import { compileCondition } from "../../../src/chain/condition.ts";
import { generatedPolicies } from "../../../src/gen/test/registry.ts";
import { buildRouteTable } from "../../../src/kernel/build.ts";
import { PolicyRegistry } from "../../../src/registry/registry.ts";
import { policy } from "../../support/policies.ts";

const schema = {
  type: "object",
  additionalProperties: false,
  required: ["name", "email"],
  properties: {
    name: { type: "string", minLength: 1 },
    email: { type: "string", format: "email" },
    "a/b": { type: "integer" },
    tags: { type: "array", items: { type: "string" } },
  },
};

Deno.test("json-schema-validate: a matching body passes", async () => {
  await using validate = await policy("json-schema-validate", { schema });
  const body = '{"name":"a","email":"a@example.com"}';
  const result = await validate.request({ method: "POST", body });
  assert.equal(result.immediate, undefined);
  assert.equal(result.upstream?.text(), body, "the body goes upstream unchanged");
  assert.equal(result.trace[0].outcome, "passed");
});

Deno.test("json-schema-validate: errors as {path, message} JSON Pointers, pointing at missing and extra properties", async () => {
  await using validate = await policy("json-schema-validate", { schema });
  const answer = await validate.request({
    method: "POST",
    body: { email: "nope", "a/b": "x", tags: [1], extra: true },
  });
  assert.equal(answer.upstream, undefined);
  assert.equal(answer.immediate?.status, 400);
  assert.deepEqual(answer.response.json(), {
    error: "invalid_request_body",
    message: "the request body does not match the schema",
    errors: [
      { path: "/name", message: "must have required property 'name'" },
      { path: "/extra", message: "must NOT have additional properties" },
      { path: "/email", message: 'must match format "email"' },
      { path: "/a~1b", message: "must be integer" },
      { path: "/tags/0", message: "must be string" },
    ],
  });
});

Deno.test("json-schema-validate: at most maxErrors errors are listed, and the message says how many there were", async () => {
  await using validate = await policy("json-schema-validate", {
    schema: { type: "array", items: { type: "integer" } },
    maxErrors: 2,
  });
  const body = (await validate.request({ method: "POST", body: '["a","b","c","d"]' })).response.json<
    { errors: unknown[]; message: string }
  >();
  assert.equal(body.errors.length, 2);
  assert.equal(body.message, "the request body does not match the schema (first 2 of 4 errors)");
});

Deno.test("json-schema-validate: a body that is not JSON, not UTF-8, or absent is 400 invalid_json", async () => {
  await using validate = await policy("json-schema-validate", { schema });
  for (const body of ["{not json", new Uint8Array([0x22, 0xff, 0x22]), ""]) {
    const answer = await validate.request({ method: "POST", body });
    assert.equal(answer.immediate?.status, 400);
    assert.equal(answer.response.json<{ error: string }>().error, "invalid_json");
  }
  assert.equal((await validate.request({ method: "GET" })).immediate?.status, 400);
  await using lenient = await policy("json-schema-validate", { schema, allowEmptyBody: true });
  assert.equal((await lenient.request({ method: "GET" })).immediate, undefined);
});

Deno.test("json-schema-validate: a schema given as a JSON string (WSO2's form) works", async () => {
  await using validate = await policy("json-schema-validate", {
    schema: '{"type":"object","required":["id"]}',
  });
  assert.equal((await validate.request({ method: "POST", body: '{"id":1}' })).immediate, undefined);
  assert.equal((await validate.request({ method: "POST", body: "{}" })).immediate?.status, 400);
});

Deno.test("json-schema-validate: an invalid schema fails the chain build with the reason", async () => {
  await assert.rejects(
    policy("json-schema-validate", { schema: { type: "objekt" } }),
    /not a valid JSON Schema/,
  );
  await assert.rejects(
    policy("json-schema-validate", { schema: { type: "object", requried: ["a"] } }),
    /not a valid JSON Schema: strict mode: unknown keyword: "requried"/,
  );
  await assert.rejects(policy("json-schema-validate", { schema: "{oops" }), /the string is not JSON/);
  await assert.rejects(
    policy("json-schema-validate", { schema: { type: "string", format: "emial" } }),
    /unknown format/,
  );
});

Deno.test("json-schema-validate: a bad schema in a config is reported with its route, policy and place", async () => {
  const config = parseConfig(
    "routes:\n  - name: orders\n    policies:\n      - { name: json-schema-validate, version: v1, parameters: { schema: { type: objekt } } }\n",
    "routes.yaml",
    {},
    { pythonInterpreter: "python3", pythonHome: "." },
  );
  await assert.rejects(
    buildRouteTable(config, {
      registry: new PolicyRegistry(generatedPolicies),
      factoryFor: (p) => p.factory,
      compileCondition,
    }),
    (error: unknown) => {
      assert.ok(error instanceof ProblemsError);
      assert.match(
        formatProblem(error.problems[0]),
        /^routes\.yaml:4:9: routes\[0\]\.policies\[0\]: getPolicy failed: schema: not a valid JSON Schema: .* \(route "orders", policy json-schema-validate:v1\)$/,
      );
      return true;
    },
  );
});
