/**
 * Auditing policies in the engine: the definition kind, what a chain build refuses of
 * them, and the bounded queue that keeps them off the request path.
 */
import assert from "node:assert/strict";
import { AuditQueue } from "../../src/chain/audit.ts";
import { compileCondition } from "../../src/chain/condition.ts";
import { parseConfig } from "../../src/config/load.ts";
import { formatProblem, ProblemsError } from "../../src/config/problem.ts";
import { parseYamlSource } from "../../src/config/yaml_source.ts";
import { buildRouteTable } from "../../src/kernel/build.ts";
import { parseDefinition } from "../../src/registry/definition.ts";
import { type GeneratedPolicy, PolicyRegistry } from "../../src/registry/registry.ts";

function parsed(yaml: string) {
  const source = parseYamlSource(yaml, "policy-definition.yaml");
  assert.ok(!Array.isArray(source));
  return parseDefinition(source);
}

Deno.test("kind: audit takes part in no phase; it is TypeScript only and declares no processingMode", () => {
  const audit = parsed("name: a\nversion: v1.0.0\nkind: audit\n");
  assert.ok(!Array.isArray(audit));
  assert.equal(audit.kind, "audit");
  assert.deepEqual(Object.values(audit.processingMode), ["SKIP", "SKIP", "SKIP", "SKIP"]);
  const inline = parsed("name: a\nversion: v1.0.0\n");
  assert.ok(!Array.isArray(inline) && inline.kind === "inline");
  const python = parsed("name: a\nversion: v1.0.0\nkind: audit\nruntime: python\n");
  assert.ok(Array.isArray(python));
  assert.match(python.map(formatProblem).join("\n"), /kind: auditing policies are TypeScript only/);
  const moded = parsed(
    "name: a\nversion: v1.0.0\nkind: audit\nprocessingMode: { requestHeaderMode: PROCESS }\n",
  );
  assert.ok(Array.isArray(moded));
  assert.match(
    moded.map(formatProblem).join("\n"),
    /processingMode: an auditing policy takes part in no phase/,
  );
});

function auditPolicy(name: string, instance: Record<string, unknown>): GeneratedPolicy {
  const definition = parsed(`name: ${name}\nversion: v1.0.0\nkind: audit\n`);
  assert.ok(!Array.isArray(definition));
  return { definition, source: `policies/${name}`, module: { getPolicy: () => instance } };
}

async function buildProblems(policies: GeneratedPolicy[], refs: unknown[]): Promise<string> {
  const config = parseConfig(JSON.stringify({ routes: [{ name: "r", policies: refs }] }), "t.yaml", {}, {
    pythonInterpreter: "x",
    pythonHome: ".",
  });
  const registry = new PolicyRegistry(policies);
  try {
    await buildRouteTable(config, { registry, factoryFor: (p) => p.factory, compileCondition });
  } catch (error) {
    assert.ok(error instanceof ProblemsError);
    return error.problems.map(formatProblem).join("\n");
  }
  return "";
}

Deno.test("a chain build refuses an auditing policy with inline hooks, without audit(), or with a condition", async () => {
  const policies = [
    auditPolicy("sneaky", { audit() {}, onRequest() {} }),
    auditPolicy("empty", {}),
    auditPolicy("fine", { audit() {} }),
  ];
  const problems = await buildProblems(policies, [
    { name: "sneaky", version: "v1" },
    { name: "empty", version: "v1" },
    { name: "fine", version: "v1", executionCondition: "true" },
  ]);
  assert.match(
    problems,
    /an auditing policy observes only: it cannot have onRequest \(route "r", policy sneaky:v1\)/,
  );
  assert.match(problems, /must return an object with audit\(\) \(route "r", policy empty:v1\)/);
  assert.match(problems, /auditing policies take no executionCondition/);
  assert.equal(await buildProblems(policies, [{ name: "fine", version: "v1" }]), "");
});

Deno.test("the audit queue runs one job at a time, holds `capacity` waiting and refuses more", async () => {
  const queue = new AuditQueue(1);
  const gate = Promise.withResolvers<void>();
  const ran: number[] = [];
  assert.equal(
    queue.offer(async () => {
      ran.push(1);
      await gate.promise;
    }),
    true,
  );
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(ran, [1], "the first started, on a later turn");
  assert.equal(queue.offer(() => Promise.resolve(void ran.push(2))), true, "one may wait");
  assert.equal(queue.offer(() => Promise.resolve(void ran.push(3))), false, "the queue is full: refused");
  gate.resolve();
  await queue.drain(1000);
  assert.deepEqual(ran, [1, 2]);
  assert.equal(queue.offer(() => Promise.resolve(void ran.push(4))), true, "room again");
  await queue.drain(1000);
  assert.deepEqual(ran, [1, 2, 4]);
});

Deno.test("draining a stuck queue gives up after its bound", async () => {
  const queue = new AuditQueue(1);
  queue.offer(() => new Promise(() => {}));
  await new Promise((resolve) => setTimeout(resolve, 0));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stuck = new Promise((resolve) => timer = setTimeout(() => resolve("stuck"), 5000));
  assert.equal(await Promise.race([queue.drain(20).then(() => "drained"), stuck]), "drained");
  clearTimeout(timer);
});
