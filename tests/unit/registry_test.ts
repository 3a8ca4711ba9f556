import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/load.ts";
import { formatProblem, ProblemsError } from "../../src/config/problem.ts";
import { parseYamlSource } from "../../src/config/yaml_source.ts";
import { compileCondition } from "../../src/chain/condition.ts";
import { buildRouteTable } from "../../src/kernel/build.ts";
import { resolveTemplate } from "../../src/registry/config_refs.ts";
import { parseDefinition, type PolicyDefinition, registryKey } from "../../src/registry/definition.ts";
import { compileParameters } from "../../src/registry/params.ts";
import { type GeneratedPolicy, PolicyRegistry } from "../../src/registry/registry.ts";
import { generatedPolicies } from "../../src/gen/test/registry.ts";

function definition(yaml: string): PolicyDefinition {
  const source = parseYamlSource(yaml, "policy-definition.yaml");
  assert.ok(!Array.isArray(source));
  const parsed = parseDefinition(source);
  assert.ok(!Array.isArray(parsed), JSON.stringify(parsed));
  return parsed;
}

function definitionProblems(yaml: string): string[] {
  const source = parseYamlSource(yaml, "policy-definition.yaml");
  assert.ok(!Array.isArray(source));
  const parsed = parseDefinition(source);
  assert.ok(Array.isArray(parsed), "expected problems");
  return parsed.map(formatProblem);
}

Deno.test("a definition gets the typescript runtime and headers-only mode by default", () => {
  const def = definition("name: my-policy\nversion: v1.2.3\n");
  assert.equal(def.runtime, "typescript");
  assert.deepEqual(def.processingMode, {
    requestHeaderMode: "PROCESS",
    requestBodyMode: "SKIP",
    responseHeaderMode: "SKIP",
    responseBodyMode: "SKIP",
  });
  assert.equal(registryKey(def.name, def.version), "my-policy:v1");
});

Deno.test("definition problems: name, version, runtime, modes and invalid schemas, each located", () => {
  assert.deepEqual(
    definitionProblems([
      "name: MyPolicy",
      'version: "1.0"',
      "runtime: ruby",
      "processingMode:",
      "  requestBodyMode: STREAMED",
    ].join("\n")),
    [
      "policy-definition.yaml:1:7: name: must match ^[a-z0-9]+(-[a-z0-9]+)*$",
      "policy-definition.yaml:2:10: version: must match ^v(\\d+)\\.(\\d+)\\.(\\d+)$",
      'policy-definition.yaml:3:10: runtime: must be one of "typescript", "python"',
      'policy-definition.yaml:5:20: processingMode.requestBodyMode: must be one of "SKIP", "BUFFER", "STREAM"',
    ],
  );
  const [schemaProblem] = definitionProblems("name: p\nversion: v1.0.0\nparameters:\n  type: objekt\n");
  assert.deepEqual(definitionProblems("name: p\nversion: v1.0.0\nstreaming: { accumulate: line }\n"), [
    "policy-definition.yaml:3:12: streaming: is only for policies with a STREAM body mode",
  ]);
  assert.match(schemaProblem, /^policy-definition\.yaml:4:3: parameters: is not a valid JSON Schema/);
});

const withRefs = definition(`
name: limits
version: v1.0.0
parameters:
  type: object
  additionalProperties: false
  properties:
    header: { type: string, default: x-limit }
    burst: { type: integer, minimum: 1 }
systemParameters:
  type: object
  properties:
    redisPort:
      type: integer
      "wso2/defaultValue": "\${config.redis.port}"
    endpoint:
      type: string
      "wso2/defaultValue": "redis://\${config.redis.host}:\${config.redis.port}"
    mode:
      type: string
      default: lenient
      "wso2/defaultValue": "\${config.limits.mode}"
`);

Deno.test("\${config} references keep the referenced type, interpolate inside strings, fall back to default", () => {
  const result = compileParameters(withRefs).resolve({ burst: 5 }, { redis: { port: 6379, host: "cache" } });
  assert.ok(result.ok);
  assert.deepEqual(result.params, {
    redisPort: 6379,
    endpoint: "redis://cache:6379",
    mode: "lenient",
    header: "x-limit",
    burst: 5,
  });
  assert.ok(Object.isFrozen(result.params));
  assert.deepEqual(resolveTemplate("${config.a}", { a: { nested: [1, true] } }), {
    ok: true,
    value: { nested: [1, true] },
  });
});

Deno.test("missing references and invalid parameters are problems with JSON paths", () => {
  const result = compileParameters(withRefs).resolve({ burst: 0, extra: 1 }, { redis: { host: "cache" } });
  assert.ok(!result.ok);
  assert.deepEqual(result.problems.map((p) => `${p.segments.join(".")}: ${p.message}`), [
    "systemParameters.redisPort: ${config.redis.port} is not set in policyConfig and the schema has no default",
    "systemParameters.endpoint: ${config.redis.port} is not set in policyConfig and the schema has no default",
    "parameters.extra: is not a known field",
    "parameters.burst: must be >= 1",
  ]);
});

Deno.test("the registry rejects duplicate keys and TypeScript modules without getPolicy", () => {
  const def = definition("name: dup\nversion: v1.0.0\n");
  const entries: GeneratedPolicy[] = [
    { definition: def, source: "a", module: { getPolicy: () => ({}) } },
    { definition: { ...def, version: "v1.1.0" }, source: "b", module: { getPolicy: () => ({}) } },
    { definition: { ...def, name: "nofactory" }, source: "c", module: {} },
  ];
  assert.throws(() => new PolicyRegistry(entries), (error: unknown) => {
    assert.ok(error instanceof ProblemsError);
    assert.deepEqual(error.problems.map((p) => `${p.file}: ${p.message}`), [
      "b: duplicate policy dup:v1 (also a)",
      "c: TypeScript policy module does not export getPolicy()",
    ]);
    return true;
  });
});

Deno.test("version lookup: vN matches any vN.x.y; a full version must match exactly", () => {
  const registry = new PolicyRegistry(generatedPolicies);
  assert.ok(registry.find("set-headers", "v1").ok);
  assert.ok(registry.find("set-headers", "v1.0.0").ok);
  const wrong = registry.find("set-headers", "v1.2.0");
  assert.ok(!wrong.ok && /has v1\.0\.0/.test(wrong.message));
  const missing = registry.find("set-headers", "v2");
  assert.ok(!missing.ok && /no version v2.*available: v1\.0\.0/.test(missing.message));
  const unknown = registry.find("nope", "v1");
  assert.ok(!unknown.ok && /unknown policy nope/.test(unknown.message));
});

Deno.test("chain build errors name the route, the policy, the YAML path and the reason", async () => {
  const config = parseConfig(
    [
      "routes:",
      "  - name: users",
      "    policies:",
      "      - name: set-headers",
      "        version: v1",
      "        parameters:",
      "          requestHeaders: [{ value: x }]",
      "      - { name: nope, version: v1 }",
      "      - name: trace",
      "        version: v1",
      "        parameters: { label: a }",
      "        executionCondition: 'request.method =='",
    ].join("\n"),
    "routes.yaml",
    {},
    { pythonInterpreter: "python3", pythonHome: "." },
  );
  const registry = new PolicyRegistry(generatedPolicies);
  await assert.rejects(
    buildRouteTable(config, { registry, factoryFor: (p) => p.factory, compileCondition }),
    (error: unknown) => {
      assert.ok(error instanceof ProblemsError);
      const lines = error.problems.map(formatProblem);
      assert.equal(lines.length, 3);
      assert.equal(
        lines[0],
        'routes.yaml:7:28: routes[0].policies[0].parameters.requestHeaders[0].name: is required (route "users", policy set-headers:v1)',
      );
      assert.equal(
        lines[1],
        'routes.yaml:8:17: routes[0].policies[1].name: unknown policy nope (not in this build\'s registry) (route "users", policy nope:v1)',
      );
      assert.match(
        lines[2],
        /^routes\.yaml:12:29: routes\[0\]\.policies\[2\]\.executionCondition: invalid CEL expression/,
      );
      return true;
    },
  );
});

Deno.test("instance modes narrow the definition's: set-headers with request headers only skips the response", async () => {
  const config = parseConfig(
    "routes:\n  - name: r\n    policies:\n      - { name: set-headers, version: v1, parameters: { requestHeaders: [{ name: a, value: b }] } }\n",
    "c.yaml",
    {},
    { pythonInterpreter: "python3", pythonHome: "." },
  );
  const table = await buildRouteTable(config, {
    registry: new PolicyRegistry(generatedPolicies),
    factoryFor: (p) => p.factory,
    compileCondition,
  });
  const chain = table.chains.get("r")!;
  assert.equal(chain.needsResponse, false);
  assert.equal(chain.request.length, 1);
});

Deno.test("python.blocking: false declares a non-blocking Python policy; a default or misplaced one is refused", () => {
  const inline = definition("name: quick\nversion: v1.0.0\nruntime: python\npython:\n  blocking: false\n");
  assert.deepEqual(inline.python, { blocking: false });
  assert.equal(definition("name: p\nversion: v1.0.0\nruntime: python\n").python, undefined);
  assert.deepEqual(
    definition("name: p\nversion: v1.0.0\nruntime: python\npython: {}\n").python,
    { blocking: true },
    "blocking defaults to true",
  );
  const misplaced = definitionProblems("name: t\nversion: v1.0.0\npython:\n  blocking: false\n");
  assert.equal(misplaced.length, 1);
  assert.match(misplaced[0], /python.*only for policies with runtime: python/);
  const wrongType = definitionProblems(
    "name: p\nversion: v1.0.0\nruntime: python\npython:\n  blocking: sometimes\n",
  );
  assert.equal(wrongType.length, 1);
  assert.match(wrongType[0], /blocking/);
});
