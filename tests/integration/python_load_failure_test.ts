/**
 * A Python policy that cannot be loaded is never a policy that silently answers 500: it
 * fails `serve` at startup and `validate`, naming the policy and the cause; one that stops
 * loading after an executor restart makes /readyz fail and a reload using it is rejected.
 *
 * These builds have broken policies on purpose, so they are built apart from the test build
 * (which every other test's engine loads) into a scratch directory inside the repository.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { buildManifest } from "../../scripts/build.ts";
import { formatProblem } from "../../src/config/problem.ts";
import { repoRoot } from "../../scripts/lib/venv.ts";
import { EngineProcess } from "../support/engine_process.ts";
import { ExtProcClient, requestHeaders } from "../support/extproc_client.ts";
import { waitFor } from "../support/ports.ts";
import { runDeno } from "../support/run.ts";

const DEFINITION = (name: string) =>
  [
    `name: ${name}`,
    "version: v1.0.0",
    "description: Test policy (Python) for load failures.",
    "runtime: python",
    "",
  ].join("\n");

const LOADS = [
  "from sdk.policy import Policy, UpstreamRequestModifications",
  "",
  "",
  "class Fine(Policy):",
  "    def on_request(self, ctx, params):",
  '        return UpstreamRequestModifications(set_headers={"x-fine": "yes"})',
  "",
  "    def on_response(self, ctx, params):",
  "        return None",
  "",
  "",
  "def get_policy(metadata, params):",
  "    return Fine(metadata, params)",
  "",
].join("\n");

const MISSING_REQUIREMENT =
  "import tollgate_absent_requirement\n\n\ndef get_policy(metadata, params):\n    return None\n";

/** A build of `policies` (name → policy.py) in a scratch directory; returns its entry point. */
async function scratchBuild(policies: Record<string, string>): Promise<{ dir: string; entry: string }> {
  const dir = join(repoRoot, "src", `.gen-load-${crypto.randomUUID()}`);
  const manifest = ["version: v1", "policies:"];
  for (const [name, code] of Object.entries(policies)) {
    await Deno.mkdir(join(dir, "policies", name), { recursive: true });
    await Deno.writeTextFile(join(dir, "policies", name, "policy-definition.yaml"), DEFINITION(name));
    await Deno.writeTextFile(join(dir, "policies", name, "policy.py"), code);
    manifest.push(`  - { name: ${name}, filePath: policies/${name} }`);
  }
  await Deno.writeTextFile(join(dir, "build.yaml"), manifest.join("\n") + "\n");
  const problems = await buildManifest(join(dir, "build.yaml"), join(dir, "gen"));
  assert.deepEqual(problems.map(formatProblem), []);
  const entry = join(dir, "main.ts");
  await Deno.writeTextFile(
    entry,
    [
      `import { runCli } from ${JSON.stringify(pathToFileURL(join(repoRoot, "src/cli.ts")).href)};`,
      `import { policyDefinitions, pythonRegistry } from "./gen/definitions.ts";`,
      "Deno.exit(await runCli(Deno.args, {",
      "  policies: policyDefinitions,",
      '  registryModule: import.meta.resolve("./gen/registry.ts"),',
      "  pythonRegistry,",
      "}));",
      "",
    ].join("\n"),
  );
  return { dir, entry };
}

const route = (name: string, policy: string) => ({ name, policies: [{ name: policy, version: "v1" }] });

Deno.test("a Python policy that fails to import fails serve (exit 2) and validate, naming it and the cause", async () => {
  const { dir, entry } = await scratchBuild({
    "py-fine": LOADS,
    "py-missing-requirement": MISSING_REQUIREMENT,
  });
  const cause = "ModuleNotFoundError: No module named 'tollgate_absent_requirement'";
  try {
    const engine = await EngineProcess.start({
      config: { routes: [route("r", "py-fine")] },
      entry,
      noWait: true,
    });
    const code = await engine.exited();
    const output = engine.lines.join("\n");
    await Deno.remove(engine.dir, { recursive: true });
    assert.equal(code, 2, output);
    assert.match(output, /1 Python policy failed to load in the executor/);
    assert.ok(output.includes(`Python policy py-missing-requirement:v1 failed to load: ${cause}`), output);
    assert.doesNotMatch(output, /ext_proc listening/, "nothing served");

    const validate = await runDeno(["run", "-A", entry, "validate"], {
      TOLLGATE_PYTHON: engine.layout.python,
    });
    assert.equal(validate.code, 2, validate.stderr);
    assert.ok(
      validate.stderr.includes(`Python policy py-missing-requirement:v1 failed to load: ${cause}`),
      validate.stderr,
    );
    assert.ok(!validate.stderr.includes("py-fine:v1"), validate.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a policy that stops loading after an executor restart: /readyz fails and a reload using it is rejected", async () => {
  const { dir, entry } = await scratchBuild({ "py-flaky": LOADS });
  const engine = await EngineProcess.start({ config: { routes: [route("flaky", "py-flaky")] }, entry });
  try {
    const client = new ExtProcClient(`unix:${engine.layout.extprocSocket}`);
    const stream = client.open();
    assert.equal((await stream.exchange(requestHeaders("flaky", "/"))).response.case, "requestHeaders");
    await stream.finish();
    client.close();

    // The policy breaks on disk (e.g. a requirement removed); the executor restarts and now fails it.
    await Deno.writeTextFile(join(dir, "policies", "py-flaky", "policy.py"), MISSING_REQUIREMENT);
    const pid = Number(/started the Python executor \(pid (\d+)\)/.exec(engine.lines.join("\n"))![1]);
    Deno.kill(pid, "SIGKILL");
    const reason = "python policy py-flaky:v1 failed to load: ModuleNotFoundError: " +
      "No module named 'tollgate_absent_requirement'";
    await waitFor("/readyz to report the policy", async () => {
      const response = await fetch(`${engine.adminUrl}/readyz`);
      const body = await response.json();
      return response.status === 503 && body.reasons.includes(reason);
    }, 15_000);

    await engine.writeConfig({ routes: [route("flaky", "py-flaky"), route("again", "py-flaky")] });
    await waitFor(
      "the reload to be rejected",
      () =>
        engine.records().some((r) =>
          r.message?.toString().startsWith("config change rejected") &&
          String(r.problems).includes("the Python executor failed to load it: ModuleNotFoundError")
        ),
      10_000,
    );
    const routes = await (await fetch(`${engine.adminUrl}/routes`)).json();
    assert.deepEqual(
      routes.routes.map((r: { name: string }) => r.name),
      ["flaky"],
      "the previous table serves",
    );
  } finally {
    assert.equal(await engine.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});
