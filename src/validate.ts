/**
 * `tollgate validate`: checks a config against the compiled-in policies by building every
 * route's chain exactly as the engine would (parameters, versions, `${config}` references,
 * conditions), and that every Python policy loads under the configured interpreter (import
 * errors, missing requirements), without listening on anything.
 */
import { isAbsolute, join } from "node:path";
import { compileCondition } from "./chain/condition.ts";
import { loadEngineConfig } from "./engine.ts";
import { buildRouteTable, checkOnlyFactory } from "./kernel/build.ts";
import { closeChains } from "./kernel/routes.ts";
import { readConfigEnv } from "./config/load.ts";
import { ProblemsError } from "./config/problem.ts";
import type { EngineConfig } from "./config/types.ts";
import { type CliBuild, configDefaults, EXIT, loadPolicies } from "./cli_build.ts";
import { loadFailureProblems, pythonLoadFailures } from "./python/check.ts";
import { PolicyRegistry } from "./registry/registry.ts";

export async function validateConfig(configPath: string | undefined, build: CliBuild): Promise<number> {
  const config = await loadEngineConfig({ configPath, env: readConfigEnv(), defaults: configDefaults() });
  const registry = new PolicyRegistry(await loadPolicies(build));
  if (registry.hasPythonPolicies()) await checkPythonPolicies(config, registry, build.pythonRegistry);
  const table = await buildRouteTable(config, { registry, factoryFor: checkOnlyFactory, compileCondition });
  // Instances may hold connections or timers (a rate limit's Redis client).
  await closeChains(table.allChains());
  console.log(`${config.source}: ok (${config.routes.length} routes)`);
  return EXIT.ok;
}

async function checkPythonPolicies(config: EngineConfig, registry: PolicyRegistry, pythonRegistry: string) {
  const { interpreter, home } = config.python;
  const fail = (message: string) => {
    throw new ProblemsError("cannot check the Python policies", [{
      file: config.source,
      path: "python",
      message,
    }]);
  };
  if (!home) fail("python.home is not set (or TOLLGATE_PYTHON_HOME)");
  let failed: Map<string, string>;
  try {
    failed = await pythonLoadFailures({
      interpreter,
      home,
      registry: isAbsolute(pythonRegistry) ? pythonRegistry : join(home, pythonRegistry),
      policyRoot: home,
    });
  } catch (error) {
    return fail(`cannot run ${interpreter}: ${(error as Error).message}`);
  }
  if (failed.size > 0) {
    throw new ProblemsError(
      `${failed.size} Python ${failed.size === 1 ? "policy" : "policies"} cannot be loaded`,
      loadFailureProblems(registry, failed),
    );
  }
}
