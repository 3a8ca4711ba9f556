/**
 * `tollgate run` and `tollgate config print-default`: a configured route's chain run on a
 * request file, printed readably and as JSON; usage and file errors exit 2 with the place.
 */
import assert from "node:assert/strict";
import { venvPython } from "../../scripts/lib/venv.ts";
import { DEFAULT_CONFIG_YAML } from "../../src/config/default_config.ts";
import { runDeno } from "../support/run.ts";

const FIXTURES = "tests/fixtures/run";
const tollgate = (...args: string[]) =>
  runDeno(["run", "-A", "main.ts", ...args], { TOLLGATE_PYTHON: venvPython });

Deno.test("tollgate run prints what the upstream and the client receive, and each decision", async () => {
  const { code, stdout, stderr } = await tollgate(
    "run",
    "--route",
    "users-v1",
    "--request",
    `${FIXTURES}/order.yaml`,
    "--response",
    `${FIXTURES}/upstream.json`,
  );
  assert.equal(code, 0, stderr);
  const expected = [
    "route users-v1",
    "upstream receives:",
    "  POST https://api.example.com/orders?expand=items",
    "  x-team: users",
    '  {"item":1,"internalNote":"for staff only"}',
    "client receives:",
    "  201",
    "  x-served-by: tollgate",
    "  created",
    "decisions:",
  ];
  for (const line of expected) assert.ok(stdout.split("\n").includes(line), `missing ${line}\n${stdout}`);
  assert.ok(!stdout.includes("x-powered-by"), "remove-headers removed it from the client's response");
  assert.match(stdout, /request {2}set-headers v1\.0\.0 +modified/);
  assert.match(stdout, /response remove-headers v1\.0\.0 +modified/);
});

Deno.test("tollgate run --json: a chain with Python policies runs in a real executor", async () => {
  const { code, stdout, stderr } = await tollgate(
    "run",
    "--route",
    "orders",
    "--request",
    `${FIXTURES}/order.yaml`,
    "--json",
  );
  assert.equal(code, 0, stderr);
  const result = JSON.parse(stdout);
  assert.equal(result.upstream.path, "/orders?expand=items");
  assert.deepEqual(JSON.parse(result.upstream.body), { item: 1, source: "gateway" });
  assert.deepEqual(result.upstream.headers["x-python-policy"], ["hello-from-python"]);
  assert.deepEqual(result.upstream.headers["content-length"], [String(result.upstream.body.length)]);
  assert.equal(result.response.status, 200);
  assert.deepEqual(result.response.headers, { "x-served-by": ["tollgate"] });
  assert.equal(result.immediate, null);
  assert.deepEqual(
    result.trace.map((d: { policy: string; phase: string; outcome: string }) =>
      `${d.phase} ${d.policy} ${d.outcome}`
    ),
    [
      "request json-body-rewrite modified",
      "request add-python-header modified",
      "response set-headers modified",
    ],
  );
});

Deno.test("tollgate run: an answering policy means the upstream receives nothing", async () => {
  const { code, stdout, stderr } = await tollgate(
    "run",
    "-r",
    "legacy",
    "--request",
    `${FIXTURES}/order.yaml`,
  );
  assert.equal(code, 0, stderr);
  assert.match(stdout, /upstream receives: nothing \(answered by respond:v1 in the request phase\)/);
  assert.match(stdout, /client receives, answered by respond:v1 in the request phase:\n {2}410\n/);
  assert.match(stdout, /\{"error":"gone","use":"\/users"\}/);
});

Deno.test("tollgate run: a missing option, an unknown route or a bad request file exits 2 with the reason", async () => {
  const noRoute = await tollgate("run", "--request", `${FIXTURES}/order.yaml`);
  assert.equal(noRoute.code, 2);
  assert.match(noRoute.stderr, /run needs --route NAME\n\nUsage: tollgate run/);

  const unknown = await tollgate("run", "--route", "nope", "--request", `${FIXTURES}/order.yaml`);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /has no route named "nope" \(its routes: users-v1, orders, legacy\)/);

  const badFile = await tollgate("run", "--route", "users-v1", "--request", `${FIXTURES}/upstream.json`);
  assert.equal(badFile.code, 2);
  assert.match(badFile.stderr, /upstream\.json:1:\d+: status: is not a known field/);

  const missing = await tollgate("run", "--route", "users-v1", "--request", `${FIXTURES}/absent.json`);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read the request file\n {2}tests\/fixtures\/run\/absent\.json: /);

  const elsewhere = await tollgate("validate", "--route", "users-v1");
  assert.equal(elsewhere.code, 2);
  assert.match(elsewhere.stderr, /Unknown option '--route'/);
});

Deno.test("tollgate config print-default prints the embedded default config", async () => {
  const { code, stdout, stderr } = await tollgate("config", "print-default");
  assert.equal(code, 0, stderr);
  assert.equal(stdout, DEFAULT_CONFIG_YAML.trimEnd() + "\n");
  const wrong = await tollgate("config", "show");
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /config takes one subcommand, print-default \(got show\)/);
});
