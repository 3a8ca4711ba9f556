/**
 * `deno task new-policy NAME [--python]`: creates policies/NAME/ with a definition, the
 * code (a working policy that sets one header, to be replaced), a test using the harness
 * (`@tollgate/sdk/testing`, or `sdk.testing` for Python) and the build.yaml entry.
 * Refuses a name that is not kebab-case or that is already taken.
 */
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { isMap, isSeq, parseDocument } from "yaml";
import { POLICY_NAME_PATTERN } from "../src/registry/definition.ts";
import { repoRoot } from "./lib/venv.ts";

const USAGE = `Usage: deno task new-policy NAME [--python] [--root DIR]

Creates policies/NAME/ (definition, code, a test using the harness) and adds it to
build.yaml. NAME is kebab-case (lower-case letters, digits and single dashes).

Options:
  --python     a Python policy (policy.py and a pytest test) instead of TypeScript
  --root DIR   the checkout holding build.yaml and policies/ (default: this one)`;

/** A problem with the arguments or the checkout: printed, exit 2. */
class ScaffoldError extends Error {}

const pascal = (name: string) => name.split("-").map((w) => w[0].toUpperCase() + w.slice(1)).join("");

function definition(name: string, python: boolean): string {
  return `name: ${name}
version: v1.0.0
description: >-
  TODO: say what ${name} does. For now it sets the x-${name} header on the request the
  upstream receives.
runtime: ${python ? "python" : "typescript"}
# Which phases the policy takes part in: each one it needs costs a round trip with Envoy.
processingMode:
  requestHeaderMode: PROCESS
  requestBodyMode: SKIP
  responseHeaderMode: SKIP
  responseBodyMode: SKIP
# The parameters a route gives the policy, as JSON Schema (draft-7): validated, with
# defaults applied, when the route's chain is built.
parameters:
  type: object
  additionalProperties: false
  properties:
    headerValue:
      type: string
      minLength: 1
      default: hello
      description: The value of the x-${name} header the upstream receives.
`;
}

function typescriptModule(name: string): string {
  return `/** ${name}: sets the x-${name} header on the request the upstream receives. */
import { type PolicyFactory, UpstreamRequestModifications } from "@tollgate/sdk";

type Params = { readonly headerValue: string };

export const getPolicy: PolicyFactory<Params> = (_metadata, params) => ({
  onRequest: () => new UpstreamRequestModifications({ setHeaders: { "x-${name}": params.headerValue } }),
});
`;
}

function typescriptTest(name: string): string {
  return `/** ${name}, run by the harness exactly as a route would run it (see docs/policies.md). */
import assert from "node:assert/strict";
import { testPolicy } from "@tollgate/sdk/testing";

const policy = new URL(".", import.meta.url);

Deno.test("${name}: the upstream receives x-${name} with the configured value", async () => {
  await using harness = await testPolicy(policy, { parameters: { headerValue: "hi" } });
  const result = await harness.request({ path: "/users/1", headers: { accept: "*/*" } });
  assert.equal(result.upstream?.headers.get("x-${name}"), "hi");
  assert.equal(result.upstream?.headers.get("accept"), "*/*");
  assert.deepEqual(result.trace.map((d) => [d.policy, d.outcome]), [["${name}", "modified"]]);
});

Deno.test("${name}: headerValue defaults to hello", async () => {
  await using harness = await testPolicy(policy);
  const result = await harness.request();
  assert.equal(result.upstream?.headers.get("x-${name}"), "hello");
});

Deno.test("${name}: a bad parameter fails the chain build", async () => {
  await assert.rejects(testPolicy(policy, { parameters: { headerValue: "" } }), /parameters\\.headerValue: /);
});
`;
}

function pythonModule(name: string): string {
  return `"""${name}: sets the x-${name} header on the request the upstream receives."""

from typing import Any

from sdk.policy import (
    Policy,
    PolicyMetadata,
    RequestAction,
    RequestContext,
    ResponseAction,
    ResponseContext,
    UpstreamRequestModifications,
)


class ${pascal(name)}(Policy):
    """Sets the x-${name} header."""

    def on_request(self, ctx: RequestContext, params: dict[str, Any]) -> RequestAction:
        """Adds the header for the upstream."""
        return UpstreamRequestModifications(set_headers={"x-${name}": params["headerValue"]})

    def on_response(self, ctx: ResponseContext, params: dict[str, Any]) -> ResponseAction:
        """Leaves the response as it is."""
        return None


def get_policy(metadata: PolicyMetadata, params: dict[str, Any]) -> Policy:
    """Creates the policy for a route."""
    return ${pascal(name)}(metadata, params)
`;
}

function pythonTest(name: string): string {
  return `"""Tests of ${name}, run by pytest with sdk.testing (see docs/python.md)."""

from pathlib import Path

from sdk.testing import load_policy, run_policy

POLICY = load_policy(Path(__file__).parent)


def test_the_upstream_receives_the_header() -> None:
    """The request reaches the upstream with x-${name} set."""
    result = run_policy(POLICY, {"headerValue": "hi"}, request={"path": "/users/1"})
    assert result.upstream is not None
    assert result.upstream.headers.get("x-${name}") == "hi"
    assert [(d.phase, d.outcome) for d in result.trace] == [("request", "modified")]
`;
}

const RUFF_CONFIG = `# Ruff reads the configuration nearest to each file; this directory uses the project's.
extend = "../../python/pyproject.toml"
`;

/** Adds the policy to build.yaml's `policies:` list, keeping the file's comments. */
function withEntry(manifest: string, file: string, name: string): string {
  const doc = parseDocument(manifest);
  if (doc.errors.length > 0) throw new ScaffoldError(`${file}: ${doc.errors[0].message.split("\n")[0]}`);
  const policies = doc.get("policies", true);
  if (!isSeq(policies)) throw new ScaffoldError(`${file}: has no policies: list`);
  for (const item of policies.items) {
    if (isMap(item) && item.get("name") === name) {
      throw new ScaffoldError(`${file} already has a policy named ${name}`);
    }
  }
  policies.flow = false; // an empty `policies: []` becomes a block list
  policies.add(doc.createNode({ name, filePath: `policies/${name}` }));
  return doc.toString();
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Creates the policy; returns the files written, relative to `root`. */
export async function newPolicy(root: string, name: string, python: boolean): Promise<string[]> {
  if (!POLICY_NAME_PATTERN.test(name)) {
    throw new ScaffoldError(
      `"${name}" is not a valid policy name: use kebab-case (lower-case letters, digits and single dashes, e.g. add-tenant)`,
    );
  }
  const dir = join(root, "policies", name);
  if (await exists(dir)) throw new ScaffoldError(`${relative(root, dir)} already exists`);
  const manifestFile = join(root, "build.yaml");
  const manifest = withEntry(await Deno.readTextFile(manifestFile), manifestFile, name);
  const files: Record<string, string> = python
    ? {
      "policy-definition.yaml": definition(name, true),
      "policy.py": pythonModule(name),
      "test_policy.py": pythonTest(name),
      "ruff.toml": RUFF_CONFIG,
    }
    : {
      "policy-definition.yaml": definition(name, false),
      "mod.ts": typescriptModule(name),
      "mod_test.ts": typescriptTest(name),
    };
  await Deno.mkdir(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) await Deno.writeTextFile(join(dir, file), text);
  await Deno.writeTextFile(manifestFile, manifest);
  return [...Object.keys(files).map((file) => relative(root, join(dir, file))), "build.yaml"];
}

if (import.meta.main) {
  let args;
  try {
    args = parseArgs({
      args: Deno.args,
      options: {
        python: { type: "boolean" },
        root: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if (args.values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  if (args.positionals.length !== 1) {
    console.error(`new-policy takes one NAME\n\n${USAGE}`);
    Deno.exit(2);
  }
  const [name] = args.positionals;
  const python = args.values.python === true;
  try {
    const written = await newPolicy(args.values.root ?? repoRoot, name, python);
    console.log(`created ${name} (${python ? "Python" : "TypeScript"}):`);
    for (const file of written) console.log(`  ${file}`);
    console.log(
      python
        ? `next: edit policy.py and its test (deno task test runs it), then deno task build`
        : `next: edit mod.ts and its test (npx -y deno@2.9.3 test -A policies/${name}), then deno task build`,
    );
  } catch (error) {
    if (!(error instanceof ScaffoldError)) throw error;
    console.error(`new-policy: ${error.message}`);
    Deno.exit(2);
  }
}
