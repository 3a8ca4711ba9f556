/**
 * The generated policy reference: up to date with the policies, every policy documented,
 * every example.yaml a valid chain for the real registry, and the schema flattening.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { stringify } from "yaml";
import { parseConfig } from "../../src/config/load.ts";
import { compileCondition } from "../../src/chain/condition.ts";
import { generatedPolicies } from "../../src/gen/registry.ts";
import { buildRouteTable, checkOnlyFactory } from "../../src/kernel/build.ts";
import { PolicyRegistry } from "../../src/registry/registry.ts";
import { parseManifest } from "../../scripts/lib/manifest.ts";
import { discoverManifest } from "../../scripts/build.ts";
import { cell, demoteHeadings, parameterRows } from "../../scripts/lib/policy_reference.ts";
import { repoRoot } from "../../scripts/lib/venv.ts";
import { policyReference, REFERENCE_FILE } from "../../scripts/policy_docs.ts";
import { parse } from "yaml";

Deno.test("docs/policy-reference.md is what `deno task docs:policies` renders from the policies", async () => {
  assert.equal(
    await Deno.readTextFile(REFERENCE_FILE),
    await policyReference(),
    "docs/policy-reference.md is stale: run `npx -y deno@2.9.3 task docs:policies`",
  );
});

Deno.test("every built-in policy has an example.yaml and a docs.md, and every example builds", async () => {
  const manifest = parseManifest(await Deno.readTextFile(join(repoRoot, "build.yaml")), "build.yaml");
  const { built } = await discoverManifest(join(repoRoot, "build.yaml"));
  assert.equal(built.length, manifest.entries.length);
  const routes = [];
  for (const { policy } of built) {
    const name = policy.definition.name;
    const docs = await Deno.readTextFile(join(policy.dir, "docs.md"));
    assert.ok(docs.trim().length > 0, `${name}: docs.md is empty`);
    const example = parse(await Deno.readTextFile(join(policy.dir, "example.yaml")));
    assert.ok(
      Array.isArray(example) && example.length > 0,
      `${name}: example.yaml must be a list of policy refs`,
    );
    assert.ok(example.every((ref) => ref.name === name), `${name}: example.yaml uses only ${name}`);
    routes.push({ name: `example-${name}`, policies: example });
  }
  const config = parseConfig(stringify({ routes }), "examples.yaml", {}, {
    pythonInterpreter: "python3",
    pythonHome: ".",
  });
  // TypeScript policies are instantiated for real (getPolicy runs); Python ones are checked
  // against their schemas.
  const table = await buildRouteTable(config, {
    registry: new PolicyRegistry(generatedPolicies),
    factoryFor: checkOnlyFactory,
    compileCondition,
  });
  for (const route of routes) assert.ok(!table.chains.get(route.name)!.isEmpty, route.name);
});

Deno.test("docs/policies.md lists every built-in policy of build.yaml, linked to its reference, and no other", async () => {
  const manifest = parseManifest(await Deno.readTextFile(join(repoRoot, "build.yaml")), "build.yaml");
  const guide = await Deno.readTextFile(join(repoRoot, "docs", "policies.md"));
  const listed = [...guide.matchAll(/^\| \[`([a-z0-9-]+)`\]\(policy-reference\.md#\1\)/gm)].map((m) => m[1]);
  assert.deepEqual(listed.toSorted(), manifest.entries.map((e) => e.name).toSorted());
});

Deno.test("parameter tables: nested objects and arrays of objects flattened with dotted paths", () => {
  const rows = parameterRows({
    type: "object",
    required: ["path"],
    properties: {
      path: {
        type: "object",
        description: "How the\n  path changes.",
        properties: { prefix: { type: "string", default: "/", description: "Prefix." } },
      },
      headers: {
        type: "array",
        items: { type: "object", required: ["name"], properties: { name: { type: "string" } } },
      },
      tags: { type: "array", items: { type: "string" }, maxItems: 3 },
      mode: { type: "string", enum: ["a", "b"], default: "a" },
      schema: { oneOf: [{ type: "object" }, { type: "string" }] },
    },
  });
  assert.deepEqual(rows, [
    { name: "path", type: "object", required: true, default: "", description: "How the path changes." },
    { name: "path.prefix", type: "string", required: false, default: '`"/"`', description: "Prefix." },
    { name: "headers", type: "array of objects", required: false, default: "", description: "" },
    { name: "headers[].name", type: "string", required: true, default: "", description: "" },
    { name: "tags", type: "array of string", required: false, default: "", description: "At most 3 items." },
    { name: "mode", type: "string", required: false, default: '`"a"`', description: 'One of `"a"`, `"b"`.' },
    { name: "schema", type: "object \\| string", required: false, default: "", description: "" },
  ]);
});

Deno.test("a policy's docs.md headings go below the section's, code blocks untouched", () => {
  assert.equal(
    demoteHeadings("# Title\ntext\n```sh\n# comment\n```\n## Sub", 3),
    "#### Title\ntext\n```sh\n# comment\n```\n##### Sub",
  );
});

Deno.test("table cells: Markdown characters escaped outside code spans, pipes everywhere", () => {
  assert.equal(
    cell('"*" or "https://*.example.com", <b>, a_b, [x], `$<name> | *`, a|b, \\.'),
    '"\\*" or "https://\\*.example.com", \\<b\\>, a\\_b, \\[x\\], `$<name> \\| *`, a\\|b, \\\\.',
  );
});
