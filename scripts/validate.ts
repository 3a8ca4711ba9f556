/**
 * `deno task validate [--manifest build.yaml] [--config FILE]`: checks policies and configs
 * without starting the engine (and without `deno task build`):
 *
 *  - every policy of the manifest: its definition (schemas and their defaults, name and
 *    version format, processing modes: every problem at once), that its runtime matches its
 *    files, and its code, even when the definition has problems: a TypeScript module exports
 *    getPolicy and passes `deno check` (type errors with file and line); a Python policy.py
 *    defines get_policy and imports under the .venv interpreter, so import errors and
 *    missing requirements show;
 *  - with --config, every route of the config against those policies: unknown policies or
 *    versions, parameters against their schemas, `${config}` references, conditions.
 *
 * Prints every problem with file and path; exits 2 if there is any.
 */
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { configDefaults } from "../src/cli_build.ts";
import { readConfigEnv } from "../src/config/load.ts";
import { formatProblem, type Problem, ProblemsError } from "../src/config/problem.ts";
import { loadEngineConfig } from "../src/engine.ts";
import { compileCondition } from "../src/chain/condition.ts";
import { buildRouteTable, checkOnlyFactory } from "../src/kernel/build.ts";
import { closeChains } from "../src/kernel/routes.ts";
import { explainLoadFailure, pythonLoadFailures } from "../src/python/check.ts";
import { registryKey } from "../src/registry/definition.ts";
import { type GeneratedPolicy, PolicyRegistry } from "../src/registry/registry.ts";
import { discoverManifest, displayPath } from "./build.ts";
import type { BuiltPolicy } from "./lib/codegen.ts";
import type { PolicyCode } from "./lib/discover.ts";
import { typeCheck } from "./lib/type_check.ts";
import { repoRoot, venvPython } from "./lib/venv.ts";

/** Lists the top-level functions of a Python file using Python's own parser. */
const PYTHON_FUNCTIONS = [
  "import ast, json, sys",
  "tree = ast.parse(open(sys.argv[1]).read(), sys.argv[1])",
  "print(json.dumps([n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]))",
].join("\n");

const interpreter = () => Deno.stat(venvPython).then(() => venvPython, () => "python3");

async function pythonFunctions(file: string): Promise<string[] | string> {
  const python = await interpreter();
  const out = await new Deno.Command(python, { args: ["-c", PYTHON_FUNCTIONS, file] }).output();
  if (!out.success) {
    return new TextDecoder().decode(out.stderr).trim().split("\n").at(-1) ?? "cannot be parsed";
  }
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** Checks a policy's code has its factory; returns the TypeScript module when it does. */
async function checkShape(
  code: PolicyCode,
  importSpecifier: string | undefined,
  problems: Problem[],
): Promise<{ ok: boolean; module?: Record<string, unknown> }> {
  const moduleFile = displayPath(code.moduleFile);
  if (code.runtime === "python") {
    const functions = await pythonFunctions(code.moduleFile);
    if (typeof functions === "string") problems.push({ file: moduleFile, path: "", message: functions });
    else if (!functions.includes("get_policy")) {
      problems.push({ file: moduleFile, path: "", message: "does not define get_policy(metadata, params)" });
    } else return { ok: true };
    return { ok: false };
  }
  try {
    const module = await import(
      importSpecifier?.startsWith("npm:") ? importSpecifier : pathToFileURL(code.moduleFile).href
    );
    if (typeof module.getPolicy === "function") return { ok: true, module };
    problems.push({ file: moduleFile, path: "", message: "does not export getPolicy(metadata, params)" });
  } catch (error) {
    problems.push({
      file: moduleFile,
      path: "",
      message: `cannot be imported: ${(error as Error).message.split("\n")[0]}`,
    });
  }
  return { ok: false };
}

/**
 * Checks the code of each policy (also of those whose definitions have problems, so one
 * run reports everything): factories, TypeScript types, Python imports. Returns the
 * registry entries of the policies that load.
 */
async function checkCode(
  built: readonly BuiltPolicy[],
  unbuilt: readonly PolicyCode[],
  problems: Problem[],
): Promise<GeneratedPolicy[]> {
  const entries: GeneratedPolicy[] = [];
  const importable: BuiltPolicy[] = [];
  for (const b of built) {
    const { definition } = b.policy;
    const shape = await checkShape(
      { runtime: definition.runtime, moduleFile: b.policy.moduleFile },
      b.importSpecifier,
      problems,
    );
    if (!shape.ok) continue;
    if (definition.runtime === "python") importable.push(b);
    else entries.push({ definition, source: b.origin, module: shape.module });
  }
  for (const code of unbuilt) await checkShape(code, undefined, problems);
  const typescript = [
    ...built.filter((b) =>
      b.policy.definition.runtime === "typescript" && !b.importSpecifier?.startsWith("npm:")
    )
      .map((b) => b.policy.moduleFile),
    ...unbuilt.filter((c) => c.runtime === "typescript").map((c) => c.moduleFile),
  ];
  problems.push(...await typeCheck(typescript, join(repoRoot, "deno.json"), displayPath));
  entries.push(...await checkPythonImports(importable, problems));
  return entries;
}

/**
 * Imports the Python policies as the executor would, with the interpreter it would use:
 * import errors and missing requirements are problems of the policy.
 */
async function checkPythonImports(
  built: readonly BuiltPolicy[],
  problems: Problem[],
): Promise<GeneratedPolicy[]> {
  if (built.length === 0) return [];
  const key = (b: BuiltPolicy) => registryKey(b.policy.definition.name, b.policy.definition.version);
  const registry = Object.fromEntries(built.map((b) => [key(b), {
    name: b.policy.definition.name,
    version: b.policy.definition.version,
    path: dirname(b.policy.moduleFile),
  }]));
  const file = await Deno.makeTempFile({ suffix: ".json" });
  let failed: Map<string, string>;
  try {
    await Deno.writeTextFile(file, JSON.stringify(registry));
    failed = await pythonLoadFailures({
      interpreter: await interpreter(),
      home: repoRoot,
      registry: file,
      policyRoot: "/",
    });
  } finally {
    await Deno.remove(file);
  }
  return built.flatMap((b) => {
    const reason = failed.get(key(b));
    if (reason === undefined) return [{ definition: b.policy.definition, source: b.origin }];
    problems.push({
      file: displayPath(b.policy.moduleFile),
      path: "",
      message: `cannot be loaded: ${explainLoadFailure(reason)}`,
    });
    return [];
  });
}

/** Validates the manifest's policies and, optionally, a config. Returns every problem. */
export async function validate(
  manifest: string,
  configPath: string | undefined,
): Promise<{ problems: Problem[]; policies: number }> {
  const { built, problems, unbuilt } = await discoverManifest(resolve(repoRoot, manifest));
  const entries = await checkCode(built, unbuilt, problems);
  if (configPath !== undefined) {
    try {
      const config = await loadEngineConfig({ configPath, env: readConfigEnv(), defaults: configDefaults() });
      const registry = new PolicyRegistry(entries);
      const table = await buildRouteTable(config, {
        registry,
        factoryFor: checkOnlyFactory,
        compileCondition,
      });
      // Instances may hold connections or timers (a rate limit's Redis client).
      await closeChains(table.allChains());
    } catch (error) {
      if (!(error instanceof ProblemsError)) throw error;
      problems.push(...error.problems);
    }
  }
  return { problems, policies: built.length };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { manifest: { type: "string", default: "build.yaml" }, config: { type: "string", short: "c" } },
  });
  const { problems, policies } = await validate(values.manifest!, values.config);
  for (const problem of problems) console.error(formatProblem(problem));
  if (problems.length > 0) {
    console.error(`validate: ${problems.length} problem${problems.length === 1 ? "" : "s"} found`);
    Deno.exit(2);
  }
  console.log(
    `validate: ${values.manifest}: ${policies} policies ok${values.config ? `; ${values.config}: ok` : ""}`,
  );
}
