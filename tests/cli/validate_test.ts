/**
 * `deno task validate` (scripts/validate.ts) and `tollgate validate` on good and broken
 * fixtures: exit codes, and every problem reported with its file and path.
 */
import assert from "node:assert/strict";
import { repoRoot } from "../../scripts/lib/venv.ts";
import { runDeno } from "../support/run.ts";

const FIXTURES = "tests/fixtures/validate";

Deno.test("deno task validate reports every kind of mistake, each with file and path, and exits 2", async () => {
  const { code, stderr } = await runDeno([
    "run",
    "-A",
    "scripts/validate.ts",
    "--manifest",
    `${FIXTURES}/build.yaml`,
    "--config",
    `${FIXTURES}/config.yaml`,
  ]);
  assert.equal(code, 2, stderr);
  const expected = [
    // manifest entries
    `${FIXTURES}/build.yaml:13:5: policies[9]: entry two-sources: needs exactly one of filePath, pythonmodule, npm (has filePath, npm)`,
    `${FIXTURES}/build.yaml:14:39: policies[10].pythonmodule: entry bad-module: "gitlab.com/acme/x@v1" is not github.com/<owner>/<repo>[/<path>]@<tag>`,
    `${FIXTURES}/build.yaml:11:13: policies[7].name: entry name-mismatch: the policy in ${FIXTURES}/policies/name-mismatch is named something-else`,
    `${FIXTURES}/policies/does-not-exist/policy-definition.yaml: policies[8] (missing-dir): file not found`,
    // definitions
    `${FIXTURES}/policies/bad-name/policy-definition.yaml:1:7: name: policies[0] (bad-name): must match`,
    `${FIXTURES}/policies/bad-version/policy-definition.yaml:2:10: version: policies[1] (bad-version): "1.0" is not a version: versions are written vMAJOR.MINOR.PATCH`,
    `${FIXTURES}/policies/runtime-mismatch/policy-definition.yaml:3:10: runtime: policies[2] (runtime-mismatch): runtime is python but policy.py is missing`,
    `${FIXTURES}/policies/runtime-mismatch/policy-definition.yaml:3:10: runtime: policies[2] (runtime-mismatch): runtime is python but the directory has mod.ts`,
    `${FIXTURES}/policies/bad-mode/policy-definition.yaml:4:20: processingMode.requestBodyMode: policies[3] (bad-mode): must be one of "SKIP", "BUFFER", "STREAM"`,
    `${FIXTURES}/policies/bad-schema/policy-definition.yaml:4:9: parameters.type: policies[4] (bad-schema): is not a JSON Schema type: use one of "array", "boolean", "integer", "null", "number", "object", "string" (did you mean object?)`,
    // a definition broken in every part, and its code, reported in one run
    `${FIXTURES}/policies/many-problems/policy-definition.yaml:5:13: descripton: policies[14] (many-problems): is not a known field (did you mean description?)`,
    `${FIXTURES}/policies/many-problems/policy-definition.yaml:2:7: name: policies[14] (many-problems): must match`,
    `${FIXTURES}/policies/many-problems/policy-definition.yaml:3:10: version: policies[14] (many-problems): is the number 1, not a version: versions are written vMAJOR.MINOR.PATCH`,
    `${FIXTURES}/policies/many-problems/policy-definition.yaml:7:20: processingMode.requestBodyMode: policies[14] (many-problems): must be one of "SKIP", "BUFFER", "STREAM" (did you mean BUFFER?)`,
    `${FIXTURES}/policies/many-problems/policy-definition.yaml:14:16: parameters.properties.limit.minimun: policies[14] (many-problems): is not a JSON Schema keyword (did you mean minimum?)`,
    `${FIXTURES}/policies/many-problems/policy-definition.yaml:17:16: parameters.properties.level.default: policies[14] (many-problems): the default must be one of "debug", "info"`,
    `${FIXTURES}/policies/many-problems/policy-definition.yaml:8:47: processingMode.responseHeaderMode.when: policies[14] (many-problems): names no parameter of the definition: logResponses`,
    `${FIXTURES}/policies/many-problems/mod.ts: does not export getPolicy(metadata, params)`,
    // code shape
    `${FIXTURES}/policies/no-factory/mod.ts: does not export getPolicy(metadata, params)`,
    `${FIXTURES}/policies/py-no-factory/policy.py: does not define get_policy(metadata, params)`,
    `${FIXTURES}/policies/py-missing-requirement/policy.py: cannot be loaded: ModuleNotFoundError: No module named 'tollgate_absent_requirement' (a missing requirement? list it in the policy's requirements.txt`,
    `${FIXTURES}/policies/py-stale-mode/policy.py: cannot be loaded: StaleModePolicy defines mode(), which the engine does not read: processingMode in policy-definition.yaml decides the phases`,
    // config routes
    `${FIXTURES}/config.yaml:7:17: routes[0].policies[0].name: unknown policy does-not-exist`,
    `${FIXTURES}/config.yaml:10:17: routes[1].policies[0].name: policy good-policy has no version v2 in this build (available: v1.2.0)`,
    `${FIXTURES}/config.yaml:13:9: routes[2].policies[0].systemParameters.endpoint: \${config.quota.endpoint} is not set in policyConfig`,
    `${FIXTURES}/config.yaml:15:40: routes[2].policies[0].parameters.extra: is not a known field (route "bad-parameters", policy good-policy:v1)`,
    `${FIXTURES}/config.yaml:15:30: routes[2].policies[0].parameters.limit: must be >= 1 (route "bad-parameters", policy good-policy:v1)`,
  ];
  const lines = stderr.split("\n");
  for (const line of expected) {
    assert.ok(lines.some((l) => l.startsWith(line)), `missing: ${line}\n---\n${stderr}`);
  }
  assert.match(stderr, /validate: 27 problems found/);
  assert.ok(!/python-ok/.test(stderr), "the valid Python route is accepted without the executor");
});

Deno.test("deno task validate type-checks TypeScript policies: a setHeader typo is an error with file and line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tollgate-typo-" });
  try {
    await Deno.mkdir(`${dir}/typo`);
    await Deno.writeTextFile(
      `${dir}/typo/policy-definition.yaml`,
      "name: typo\nversion: v1.0.0\nparameters:\n  type: object\n  properties: { team: { type: string } }\n",
    );
    await Deno.writeTextFile(
      `${dir}/typo/mod.ts`,
      [
        'import { type PolicyFactory, UpstreamRequestModifications } from "@tollgate/sdk";',
        "",
        "export const getPolicy: PolicyFactory<{ team: string }> = (_metadata, params) => ({",
        '  onRequest: () => new UpstreamRequestModifications({ setHeader: { "x-team": params.team } }),',
        "});",
        "",
      ].join("\n"),
    );
    await Deno.writeTextFile(
      `${dir}/build.yaml`,
      "version: v1\npolicies:\n  - { name: typo, filePath: typo }\n",
    );
    const { code, stderr } = await runDeno([
      "run",
      "-A",
      "scripts/validate.ts",
      "--manifest",
      `${dir}/build.yaml`,
    ]);
    assert.equal(code, 2, stderr);
    assert.match(
      stderr,
      new RegExp(
        `${dir}/typo/mod\\.ts:4:55: type error TS2561: Object literal may only specify known properties, ` +
          "but 'setHeader' does not exist in type 'UpstreamRequestModificationsInit'\\. Did you mean to write 'setHeaders'\\?",
      ),
    );
    assert.match(stderr, /validate: 1 problem found/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task validate accepts valid policies and a valid config", async () => {
  const { code, stdout, stderr } = await runDeno([
    "run",
    "-A",
    "scripts/validate.ts",
    "--manifest",
    `${FIXTURES}/good.yaml`,
    "--config",
    `${FIXTURES}/config-good.yaml`,
  ]);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /good\.yaml: 2 policies ok; .*config-good\.yaml: ok/);
});

Deno.test("the default build's policies validate", async () => {
  const { code, stdout, stderr } = await runDeno(["run", "-A", "scripts/validate.ts"]);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /build\.yaml: \d+ policies ok/);
});

Deno.test("tollgate validate checks a config against the compiled-in policies", async () => {
  const bad = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(
    bad,
    "routes:\n  - name: r\n    policies:\n      - { name: respond, version: v1, parameters: { statusCode: 99 } }\n",
  );
  try {
    const failed = await runDeno(["run", "-A", "main.ts", "validate", "--config", bad]);
    assert.equal(failed.code, 2);
    assert.match(
      failed.stderr,
      /:4:65: routes\[0\]\.policies\[0\]\.parameters\.statusCode: must be >= 200 \(route "r", policy respond:v1\)/,
    );
    const ok = await runDeno(["run", "-A", "main.ts", "validate"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /<embedded default config>: ok \(3 routes\)/);
  } finally {
    await Deno.remove(bad);
  }
});

Deno.test("tollgate validate names bad secret parameters without showing their values", async () => {
  const secrets = ["plain-text-password-1", "short-hmac-2", "short-key-3", 12345678901];
  const config = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(
    config,
    `routes:
  - name: r
    policies:
      - { name: basic-auth, version: v1, parameters: { users: [{ username: u, passwordHash: ${
      secrets[0]
    } }] } }
      - { name: jwt-auth, version: v1, parameters: { allowedAlgorithms: [HS256], secret: ${secrets[1]} } }
      - { name: api-key-auth, version: v1, parameters: { keys: [{ caller: c, key: ${secrets[2]} }] } }
      - { name: api-key-auth, version: v1, parameters: { keys: [{ caller: c, key: ${secrets[3]} }] } }
`,
  );
  try {
    const { code, stdout, stderr } = await runDeno(["run", "-A", "main.ts", "validate", "--config", config]);
    assert.equal(code, 2, stderr);
    assert.match(
      stderr,
      /policies\[0\]: getPolicy failed: users\[0\]\.passwordHash is not a bcrypt or argon2id hash/,
    );
    assert.match(stderr, /policies\[1\]: getPolicy failed: the HS256 secret must be at least 32 bytes/);
    assert.match(stderr, /policies\[2\]\.parameters\.keys\[0\]\.key: must NOT have fewer than 16 characters/);
    assert.match(stderr, /policies\[3\]\.parameters\.keys\[0\]\.key: must be of type string/);
    for (const secret of secrets) {
      assert.ok(!`${stdout}${stderr}`.includes(String(secret)), `shows ${secret}`);
    }
  } finally {
    await Deno.remove(config);
  }
});

Deno.test("tollgate --help, version and a bad command", async () => {
  const help = await runDeno(["run", "-A", "main.ts", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Commands:\n {2}serve/);
  const serveHelp = await runDeno(["run", "-A", "main.ts", "serve", "--help"]);
  assert.match(serveHelp.stdout, /Usage: tollgate serve \[--config PATH\]/);
  const version = await runDeno(["run", "-A", "main.ts", "version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^tollgate \d+\.\d+\.\d+\n/);
  assert.ok(version.stdout.includes(`deno ${Deno.version.deno} `), version.stdout);
  assert.match(version.stdout, /set-headers v1\.0\.0 \(typescript\)/);
  const bad = await runDeno(["run", "-A", "main.ts", "frobnicate"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown command "frobnicate"/);
  const badFlag = await runDeno(["run", "-A", "main.ts", "serve", "--nope"]);
  assert.equal(badFlag.code, 2);
});

Deno.test("tollgate validate rejects an executionCondition typo, naming route, policy and expression", async () => {
  const typo = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(
    typo,
    [
      "routes:",
      "  - name: users-v1",
      "    policies:",
      "      - name: set-headers",
      "        version: v1",
      "        parameters: { requestHeaders: [{ name: x-a, value: b }] }",
      "        executionCondition: 'request.methd == \"POST\"'",
      "      - name: set-headers",
      "        version: v1",
      "        parameters: { requestHeaders: [{ name: x-b, value: c }] }",
      "        executionCondition: 'request.method == 1'",
      "",
    ].join("\n"),
  );
  try {
    const { code, stderr } = await runDeno(["run", "-A", "main.ts", "validate", "--config", typo]);
    assert.equal(code, 2, stderr);
    assert.match(
      stderr,
      /:7:29: routes\[0\]\.policies\[0\]\.executionCondition: CEL expression "request\.methd == \\"POST\\"" does not type-check: No such key: methd \(route "users-v1", policy set-headers:v1\)/,
    );
    assert.match(
      stderr,
      /:11:29: routes\[0\]\.policies\[1\]\.executionCondition: CEL expression "request\.method == 1" does not type-check: no such overload: string == int \(route "users-v1", policy set-headers:v1\)/,
    );
  } finally {
    await Deno.remove(typo);
  }
});

Deno.test("tollgate validate rejects an empty config and one without routes", async () => {
  const empty = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    const failed = await runDeno(["run", "-A", "main.ts", "validate", "--config", empty]);
    assert.equal(failed.code, 2);
    assert.match(failed.stderr, /the config is empty \(a file caught mid-write\?\)/);
    await Deno.writeTextFile(empty, "log: { level: info }\n");
    const noRoutes = await runDeno(["run", "-A", "main.ts", "validate", "--config", empty]);
    assert.equal(noRoutes.code, 2);
    assert.match(noRoutes.stderr, /:1:1: routes: is required/);
    await Deno.writeTextFile(empty, "routes: []\n");
    const none = await runDeno(["run", "-A", "main.ts", "validate", "--config", empty]);
    assert.equal(none.code, 0, none.stderr);
  } finally {
    await Deno.remove(empty);
  }
});

Deno.test("deno task validate finishes after building chains that hold connections (closes them)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/validate.ts", "--config", `${FIXTURES}/config-redis.yaml`],
    cwd: repoRoot,
    env: { NO_COLOR: "1" },
    // A validate that hangs on the Redis client is killed, and fails the assertion below.
    signal: AbortSignal.timeout(30_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.match(new TextDecoder().decode(out.stdout), /config-redis\.yaml: ok/);
});
