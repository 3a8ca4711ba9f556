/**
 * Reading a policy directory: its policy-definition.yaml and the code its runtime needs
 * (`mod.ts` for TypeScript, `policy.py` for Python). Used by the builder and by
 * `validate`; the running engine never reads policy files (they are compiled in).
 */
import { join } from "node:path";
import type { Problem } from "../config/problem.ts";
import { parseYamlSource } from "../config/yaml_source.ts";
import { parseDefinition, type PolicyDefinition } from "./definition.ts";

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

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** Reads and checks one policy directory; returns every problem found. */
export async function discoverPolicy(dir: string): Promise<DiscoveredPolicy | Problem[]> {
  const definitionFile = join(dir, DEFINITION_FILE);
  const text = await readOptional(definitionFile);
  if (text === undefined) return [{ file: definitionFile, path: "", message: "file not found" }];
  const yaml = parseYamlSource(text, definitionFile);
  if (Array.isArray(yaml)) return yaml;
  const parsed = parseDefinition(yaml);
  if (Array.isArray(parsed)) return parsed;
  const moduleName = MODULE_FILE[parsed.runtime];
  const moduleFile = join(dir, moduleName);
  const problems: Problem[] = [];
  if (await readOptional(moduleFile) === undefined) {
    problems.push(
      yaml.problemAt(["runtime"], `runtime is ${parsed.runtime} but ${moduleName} is missing in ${dir}`),
    );
  }
  const other = parsed.runtime === "python" ? MODULE_FILE.typescript : MODULE_FILE.python;
  if (await readOptional(join(dir, other)) !== undefined) {
    problems.push(yaml.problemAt(["runtime"], `runtime is ${parsed.runtime} but the directory has ${other}`));
  }
  if (problems.length > 0) return problems;
  const requirements = parsed.runtime === "python"
    ? await readOptional(join(dir, "requirements.txt"))
    : undefined;
  return { dir, definition: parsed, moduleFile, requirements };
}
