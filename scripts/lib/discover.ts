/**
 * Reading a policy directory: its policy-definition.yaml and the code its runtime needs
 * (`mod.ts` for TypeScript, `policy.py` for Python). Used by the builder and by
 * `validate`; the running engine never reads policy files (they are compiled in).
 */
import { join, relative } from "node:path";
import type { Problem } from "../../src/config/problem.ts";
import { parseYamlSource } from "../../src/config/yaml_source.ts";
import { parseDefinition, type PolicyDefinition, type PolicyRuntime } from "../../src/registry/definition.ts";

export const DEFINITION_FILE = "policy-definition.yaml";
/** The module file each runtime loads from a policy directory. */
export const MODULE_FILE = { typescript: "mod.ts", python: "policy.py" } as const;

export interface DiscoveredPolicy {
  readonly dir: string;
  readonly definition: PolicyDefinition;
  /** Absolute path of `mod.ts` or `policy.py`. */
  readonly moduleFile: string;
  /** Contents of the policy's requirements.txt (Python only), if present. */
  readonly requirements: string | undefined;
}

/** A file's text, or undefined when it does not exist. */
export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** The entry module of an npm package directory (package.json `exports["."]`, `module` or `main`). */
export async function packageEntry(dir: string): Promise<string | undefined> {
  const text = await readOptional(join(dir, "package.json"));
  if (text === undefined) return undefined;
  const pkg = JSON.parse(text);
  const exported = typeof pkg.exports === "string"
    ? pkg.exports
    : pkg.exports?.["."]?.import ?? pkg.exports?.["."];
  const entry = [exported, pkg.module, pkg.main, "index.js"].find((e) => typeof e === "string");
  return entry === undefined ? undefined : join(dir, entry);
}

/** A policy's code file and the runtime it is for. */
export interface PolicyCode {
  readonly runtime: PolicyRuntime;
  readonly moduleFile: string;
}

/**
 * The code of a policy whose definition has problems, so that `validate` can still check
 * its shape and types and report everything wrong with the policy in one run. The runtime
 * is the definition's if it names a valid one, else guessed from the file present.
 */
export async function codeOf(dir: string, moduleFile?: string): Promise<PolicyCode | undefined> {
  const text = await readOptional(join(dir, DEFINITION_FILE));
  const yaml = text === undefined ? undefined : parseYamlSource(text, DEFINITION_FILE);
  const declared = yaml && !Array.isArray(yaml)
    ? (yaml.value as { runtime?: unknown } | null)?.runtime
    : undefined;
  const runtimes: PolicyRuntime[] = declared === "python" || declared === "typescript"
    ? [declared]
    : ["typescript", "python"];
  for (const runtime of runtimes) {
    const file = moduleFile ?? join(dir, MODULE_FILE[runtime]);
    if (await readOptional(file) !== undefined) return { runtime, moduleFile: file };
  }
  return undefined;
}

/**
 * Reads and checks one policy directory; returns every problem found. `moduleFile` names the
 * code for sources that do not follow the directory convention (an npm package's entry).
 */
export async function discoverPolicy(
  dir: string,
  moduleFile?: string,
): Promise<DiscoveredPolicy | Problem[]> {
  const definitionFile = join(dir, DEFINITION_FILE);
  const text = await readOptional(definitionFile);
  if (text === undefined) return [{ file: definitionFile, path: "", message: "file not found" }];
  const yaml = parseYamlSource(text, definitionFile);
  if (Array.isArray(yaml)) return yaml;
  const parsed = parseDefinition(yaml);
  if (Array.isArray(parsed)) return parsed;
  const problems: Problem[] = [];
  const code = moduleFile ?? join(dir, MODULE_FILE[parsed.runtime]);
  if (await readOptional(code) === undefined) {
    const missing = relative(dir, code);
    problems.push(
      yaml.problemAt(["runtime"], `runtime is ${parsed.runtime} but ${missing} is missing in ${dir}`),
    );
  }
  const other = parsed.runtime === "python" ? MODULE_FILE.typescript : MODULE_FILE.python;
  if (moduleFile === undefined && await readOptional(join(dir, other)) !== undefined) {
    problems.push(yaml.problemAt(["runtime"], `runtime is ${parsed.runtime} but the directory has ${other}`));
  }
  if (problems.length > 0) return problems;
  const requirements = parsed.runtime === "python"
    ? await readOptional(join(dir, "requirements.txt"))
    : undefined;
  return { dir, definition: parsed, moduleFile: code, requirements };
}
