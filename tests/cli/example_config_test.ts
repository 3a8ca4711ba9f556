/**
 * docs/examples/tollgate.yaml: the complete example config validates against this build,
 * serves the embedded default's routes, and its chains do what its comments say.
 */
import assert from "node:assert/strict";
import { venvPython } from "../../scripts/lib/venv.ts";
import { DEFAULT_CONFIG_SOURCE, DEFAULT_CONFIG_YAML } from "../../src/config/default_config.ts";
import { parseConfig } from "../../src/config/load.ts";
import { testChain } from "@tollgate/sdk/testing";
import { runDeno } from "../support/run.ts";

const EXAMPLE = "docs/examples/tollgate.yaml";
const defaults = { pythonInterpreter: venvPython, pythonHome: "." };

Deno.test("the example config validates and has the embedded default's routes", async () => {
  const { code, stdout, stderr } = await runDeno(["run", "-A", "main.ts", "validate", "--config", EXAMPLE], {
    TOLLGATE_PYTHON: venvPython,
  });
  assert.equal(code, 0, stderr);
  assert.match(stdout, /docs\/examples\/tollgate\.yaml: ok \(3 routes\)/);
  const example = parseConfig(await Deno.readTextFile(EXAMPLE), EXAMPLE, {}, defaults);
  const embedded = parseConfig(DEFAULT_CONFIG_YAML, DEFAULT_CONFIG_SOURCE, {}, defaults);
  assert.deepEqual(example.routes.map((r) => r.name), embedded.routes.map((r) => r.name));
});

Deno.test("the example's users-v1 chain: reads pass anonymously, writes need a key", async () => {
  const example = parseConfig(await Deno.readTextFile(EXAMPLE), EXAMPLE, {}, defaults);
  const users = example.routes.find((r) => r.name === "users-v1")!;
  await using harness = await testChain(
    users.policies.map((p) => ({
      name: p.name,
      version: p.version,
      parameters: p.parameters,
      executionCondition: p.executionCondition,
    })),
    { route: "users-v1", policyConfig: example.policyConfig },
  );
  const read = await harness.request({ method: "GET", path: "/users/1" });
  assert.equal(read.upstream?.headers.get("x-team"), "users");
  const anonymousWrite = await harness.request({ method: "POST", path: "/users", body: "{}" });
  assert.equal(anonymousWrite.immediate?.status, 401);
  const write = await harness.request({
    method: "POST",
    path: "/users",
    headers: { "x-api-key": "ops-demo-key-change-me" },
    body: "{}",
  });
  assert.equal(write.immediate, undefined);
  assert.equal(write.upstream?.headers.get("x-api-key"), undefined, "the key does not go upstream");
  assert.equal(write.response.headers.get("x-served-by"), "tollgate");
});
