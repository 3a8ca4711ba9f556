/**
 * A policy straight from its directory, for the harness: the definition is read and checked
 * by the engine's own parser, the TypeScript module imported, so an author can test a
 * policy before adding it to build.yaml (the engine itself only runs compiled-in policies).
 * @module
 */
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ProblemsError } from "../config/problem.ts";
import { parseYamlSource } from "../config/yaml_source.ts";
import { parseDefinition } from "../registry/definition.ts";
import type { GeneratedPolicy } from "../registry/registry.ts";

const DEFINITION_FILE = "policy-definition.yaml";

/** A policy directory given as a path (relative to the working directory) or a `file:` URL. */
export function directoryPath(dir: string | URL): string {
  if (dir instanceof URL || dir.startsWith("file:")) return fileURLToPath(dir).replace(/\/$/, "");
  return isAbsolute(dir) ? dir : resolve(dir);
}

/** Reads a policy directory; throws {@link ProblemsError} with every problem of its definition. */
export async function loadPolicyDirectory(dir: string): Promise<GeneratedPolicy> {
  const file = join(dir, DEFINITION_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    throw new ProblemsError(`cannot read the policy in ${dir}`, [{
      file,
      path: "",
      message: (error as Error).message,
    }]);
  }
  const yaml = parseYamlSource(text, file);
  if (Array.isArray(yaml)) throw new ProblemsError(`invalid YAML in ${file}`, yaml);
  const definition = parseDefinition(yaml);
  if (Array.isArray(definition)) throw new ProblemsError(`invalid policy definition ${file}`, definition);
  if (definition.runtime === "python") return { definition, source: dir };
  const module = await import(pathToFileURL(join(dir, "mod.ts")).href);
  return { definition, source: dir, module };
}
