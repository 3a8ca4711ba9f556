/**
 * What the engine's commands share: exit codes, what a build carries and the defaults that
 * depend on where the engine runs. Kept apart from `cli.ts` so that the commands it loads
 * (`validate.ts`) do not import it back.
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ConfigDefaults } from "./config/load.ts";
import type { PolicyEntry } from "./registry/catalog.ts";
import type { GeneratedPolicy } from "./registry/registry.ts";

export const EXIT = { ok: 0, failure: 1, invalid: 2 } as const;

/** What a build of the engine carries: its compiled-in policies. */
export interface CliBuild {
  /** The compiled-in policies' definitions (src/gen/definitions.ts): no policy module is loaded. */
  readonly policies: readonly PolicyEntry[];
  /** The module exporting `policies` with their modules as `generatedPolicies` (src/gen/registry.ts). */
  readonly registryModule: string;
  /** The generated Python registry matching `policies`, relative to python.home. */
  readonly pythonRegistry: string;
}

/**
 * The build's policies with their modules, for the commands that build chains (`validate`,
 * `run`); `serve` leaves that to its data-plane workers.
 */
export async function loadPolicies(build: CliBuild): Promise<readonly GeneratedPolicy[]> {
  const { generatedPolicies } = await import(build.registryModule) as {
    generatedPolicies: readonly GeneratedPolicy[];
  };
  return generatedPolicies;
}

/**
 * Defaults that depend on where the engine runs. Under `deno run` the Python home is this
 * repository; a compiled binary has no default (its modules live in a virtual file system),
 * so the image sets TOLLGATE_PYTHON_HOME.
 */
export function configDefaults(): ConfigDefaults {
  const compiled = import.meta.url.includes("/deno-compile-");
  return {
    pythonInterpreter: "python3",
    pythonHome: compiled ? "" : join(dirname(fileURLToPath(import.meta.url)), ".."),
  };
}
