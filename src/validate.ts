/**
 * `tollgate validate`: checks a config against the compiled-in policies by building every
 * route's chain exactly as the engine would (parameters, versions, `${config}` references,
 * conditions), without listening on anything.
 */
import { compileCondition } from "./executor/condition.ts";
import { loadEngineConfig } from "./engine.ts";
import { buildRouteTable, checkOnlyFactory } from "./kernel/build.ts";
import { closeChains } from "./kernel/routes.ts";
import { readConfigEnv } from "./config/load.ts";
import { type CliBuild, configDefaults, EXIT } from "./cli.ts";
import { PolicyRegistry } from "./registry/registry.ts";

export async function validateConfig(configPath: string | undefined, build: CliBuild): Promise<number> {
  const config = await loadEngineConfig({ configPath, env: readConfigEnv(), defaults: configDefaults() });
  const registry = new PolicyRegistry(build.policies);
  const table = await buildRouteTable(config, { registry, factoryFor: checkOnlyFactory, compileCondition });
  // Instances may hold connections or timers (a rate limit's Redis client).
  await closeChains(table.chains.values());
  console.log(`${config.source}: ok (${config.routes.length} routes)`);
  return EXIT.ok;
}
