import assert from "node:assert/strict";
import { parseConfig } from "../../src/config/load.ts";
import { formatProblem, ProblemsError } from "../../src/config/problem.ts";
import { parseYamlSource } from "../../src/config/yaml_source.ts";
import { compileCondition } from "../../src/chain/condition.ts";
import { buildRouteTable } from "../../src/kernel/build.ts";
import { resolveTemplate } from "../../src/registry/config_refs.ts";
import { parseDefinition, type PolicyDefinition, registryKey } from "../../src/registry/definition.ts";
import { instanceMode } from "../../src/registry/modes.ts";
import { compileParameters } from "../../src/registry/params.ts";
import { PolicyCatalog } from "../../src/registry/catalog.ts";
import { type GeneratedPolicy, PolicyRegistry } from "../../src/registry/registry.ts";
import { policyDefinitions } from "../../src/gen/test/definitions.ts";
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
      "policy-definition.yaml:1:7: name: must match ^[a-z0-9]+(-[a-z0-9]+)*$ (names are kebab-case: lower-case " +
      'letters and digits joined by single hyphens, e.g. set-headers), not "MyPolicy"',
      'policy-definition.yaml:2:10: version: "1.0" is not a version: versions are written vMAJOR.MINOR.PATCH, e.g. v1.0.0',
      'policy-definition.yaml:3:10: runtime: must be one of "typescript", "python"',
      'policy-definition.yaml:5:20: processingMode.requestBodyMode: must be one of "SKIP", "BUFFER", "STREAM" (did you mean STREAM?)',
    ],
  );
  const [schemaProblem] = definitionProblems("name: p\nversion: v1.0.0\nparameters:\n  type: objekt\n");
  assert.deepEqual(definitionProblems("name: p\nversion: v1.0.0\nstreaming: { accumulate: line }\n"), [
    "policy-definition.yaml:3:12: streaming: is only for policies with a STREAM body mode",
  ]);
  assert.match(
    schemaProblem,
    /^policy-definition\.yaml:4:9: parameters\.type: is not a JSON Schema type: use one of .* \(did you mean object\?\)$/,
  );
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

Deno.test("the control plane's catalog needs no module, and rejects duplicate keys as the registry does", () => {
  const catalog = new PolicyCatalog(policyDefinitions);
  assert.deepEqual(
    catalog.list().map((p) => p.key),
    new PolicyRegistry(generatedPolicies).list().map((p) => p.key),
  );
  assert.ok(catalog.hasPythonPolicies());
  assert.ok(policyDefinitions.every((p) => !("module" in p)));
  const def = definition("name: dup\nversion: v1.0.0\n");
  assert.throws(
    () =>
      new PolicyCatalog([{ definition: def, source: "a" }, {
        definition: { ...def, version: "v1.2.0" },
        source: "b",
      }]),
    (error: unknown) => {
      assert.ok(error instanceof ProblemsError);
      assert.deepEqual(error.problems.map((p) => `${p.file}: ${p.message}`), [
        "b: duplicate policy dup:v1 (also a)",
      ]);
      return true;
    },
  );
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

Deno.test("a broken definition reports every problem at once, each at its key, with did-you-mean", () => {
  assert.deepEqual(
    definitionProblems([
      "name: p",
      "version: 1.0",
      "descripton: typo",
      "processingMode:",
      "  requestBodyMode: BUFER",
      "  responseBodyMode: { value: BUFFER, when: logBody }",
      "parameters:",
      "  type: object",
      "  properties:",
      "    limit: { type: integer, minimun: 1 }",
      "    level: { enum: [debug, info], default: verbose }",
      "    size: { type: integer, minimum: 10, default: 5 }",
    ].join("\n")),
    [
      "policy-definition.yaml:3:13: descripton: is not a known field (did you mean description?)",
      "policy-definition.yaml:2:10: version: is the number 1, not a version: versions are written " +
      "vMAJOR.MINOR.PATCH, e.g. v1.0.0",
      'policy-definition.yaml:5:20: processingMode.requestBodyMode: must be one of "SKIP", "BUFFER", "STREAM" ' +
      "(did you mean BUFFER?)",
      "policy-definition.yaml:10:38: parameters.properties.limit.minimun: is not a JSON Schema keyword " +
      "(did you mean minimum?)",
      'policy-definition.yaml:11:44: parameters.properties.level.default: the default must be one of "debug", "info"',
      "policy-definition.yaml:12:50: parameters.properties.size.default: the default must be >= 10",
      "policy-definition.yaml:6:44: processingMode.responseBodyMode.when: names no parameter of the definition: " +
      "logBody is not in parameters or systemParameters",
    ],
  );
});

Deno.test("processingMode fields may depend on a parameter; each instance gets its own resolved mode", () => {
  const def = definition([
    "name: p",
    "version: v1.0.0",
    "processingMode:",
    "  requestBodyMode: { value: BUFFER, when: payload }",
    "  responseHeaderMode: { value: PROCESS, when: [headers, opts.timing] }",
    "  responseBodyMode: { value: BUFFER, when: phase, in: [body] }",
    "parameters:",
    "  type: object",
    "  properties:",
    "    payload: { type: boolean, default: false }",
    "    headers: { type: array }",
    "    phase: { enum: [headers, body] }",
    "    opts: { type: object, properties: { timing: { type: boolean } } }",
  ].join("\n"));
  assert.deepEqual(instanceMode(def.processingMode, { payload: false, headers: [] }), {
    requestHeaderMode: "PROCESS",
    requestBodyMode: "SKIP",
    responseHeaderMode: "SKIP",
    responseBodyMode: "SKIP",
  });
  assert.deepEqual(
    instanceMode(def.processingMode, { payload: true, opts: { timing: true }, phase: "body" }),
    {
      requestHeaderMode: "PROCESS",
      requestBodyMode: "BUFFER",
      responseHeaderMode: "PROCESS",
      responseBodyMode: "BUFFER",
    },
  );
  assert.equal(instanceMode(def.processingMode, { headers: ["x"] }).responseHeaderMode, "PROCESS");
});

Deno.test("an unknown policy name in a config gets the closest known name", () => {
  const unknown = new PolicyRegistry(generatedPolicies).find("set-header", "v1");
  assert.ok(!unknown.ok);
  assert.equal(
    unknown.message,
    "unknown policy set-header (not in this build's registry) (did you mean set-headers?)",
  );
});

Deno.test("a TypeScript instance that still has mode() fails the chain build: the definition decides", async () => {
  const def = definition("name: stale\nversion: v1.0.0\n");
  const registry = new PolicyRegistry([{
    definition: def,
    source: "policies/stale",
    module: {
      getPolicy: () => ({ mode: () => ({ requestBodyMode: "BUFFER" }), onRequest: () => undefined }),
    },
  }]);
  const config = parseConfig(
    "routes:\n  - name: r\n    policies:\n      - { name: stale, version: v1 }\n",
    "c.yaml",
    {},
    { pythonInterpreter: "python3", pythonHome: "." },
  );
  await assert.rejects(
    buildRouteTable(config, { registry, factoryFor: (p) => p.factory, compileCondition }),
    /policies\[0\]: the policy instance has a mode\(\) method, which the engine does not read: processingMode in policy-definition\.yaml decides/,
  );
});
