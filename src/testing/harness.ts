/**
 * A route's chain built by the engine's chain builder (src/kernel/build.ts) from a config,
 * ready to run exchanges without Envoy. Python policies get a real executor.
 * @module
 */
import { join } from "node:path";
import { compileCondition } from "../chain/condition.ts";
import type { Chain } from "../chain/chain.ts";
import { ProblemsError } from "../config/problem.ts";
import type { EngineConfig } from "../config/types.ts";
import { buildRouteTable, checkOnlyFactory, type FactoryResolver } from "../kernel/build.ts";
import { closeChains, type RouteTable } from "../kernel/routes.ts";
import { registryKey } from "../registry/definition.ts";
import { type GeneratedPolicy, PolicyRegistry } from "../registry/registry.ts";
import { type ExchangeResult, runExchange, type TestRequest, type TestResponse } from "./exchange.ts";
import { type ExtraPythonPolicy, HarnessPython, type HarnessPythonOptions } from "./python.ts";

/** The policies a harness can run: a build's compiled-in ones, as `deno task build` generates them. */
export interface HarnessBuild {
  /** Every policy of the build (src/gen/registry.ts's `generatedPolicies`). */
  readonly policies: readonly GeneratedPolicy[];
  /** The build's Python registry, relative to the Python home (absent: no Python policies). */
  readonly pythonRegistry?: string;
}

/** Where a chain comes from: a config, one of its routes, and the policies to build it with. */
export interface HarnessSetup {
  readonly config: EngineConfig;
  readonly route: string;
  readonly build: HarnessBuild;
  /** Policies read from their directories; they replace a build policy of the same `name:vMAJOR`. */
  readonly extra?: readonly GeneratedPolicy[];
  /** Overrides of the config's `python` section for the executor. */
  readonly python?: Partial<HarnessPythonOptions>;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * One route's chain, built as the engine builds it. Run exchanges with {@link request};
 * {@link close} it (or `await using`) to release the policies and stop the executor.
 */
export class PolicyHarness implements AsyncDisposable {
  private constructor(
    private readonly chain: Chain,
    private readonly table: RouteTable,
    private readonly python: HarnessPython | undefined,
  ) {}

  /** Builds the chain of `setup.route`; throws the engine's ProblemsError for a bad config. */
  static async build(setup: HarnessSetup): Promise<PolicyHarness> {
    const { config, build } = setup;
    const extra = setup.extra ?? [];
    const replaced = new Set(extra.map((p) => registryKey(p.definition.name, p.definition.version)));
    const registry = new PolicyRegistry([
      ...build.policies.filter((p) => !replaced.has(registryKey(p.definition.name, p.definition.version))),
      ...extra,
    ]);
    const refs = config.routes.find((r) => r.name === setup.route)?.policies ?? config.defaultPolicies;
    const needed = refs.filter((ref) => ref.enabled).map((ref) => registry.find(ref.name, ref.version))
      .flatMap((found) => found.ok && found.policy.definition.runtime === "python" ? [found.policy.key] : []);
    const home = setup.python?.home ?? config.python.home;
    const python = needed.length === 0 ? undefined : await HarnessPython.start(
      {
        interpreter: setup.python?.interpreter ?? config.python.interpreter,
        home,
        timeoutMs: setup.python?.timeoutMs ?? config.python.timeoutMs,
      },
      build.pythonRegistry !== undefined && await exists(join(home, build.pythonRegistry))
        ? build.pythonRegistry
        : undefined,
      extra.filter((p) => p.definition.runtime === "python").map((p): ExtraPythonPolicy => ({
        key: registryKey(p.definition.name, p.definition.version),
        name: p.definition.name,
        version: p.definition.version,
        dir: p.source,
        blocking: p.definition.python?.blocking !== false,
      })),
      needed,
      registry,
    );
    // Other routes' Python policies are only checked, as `validate` does: no executor runs them here.
    const factoryFor: FactoryResolver = (policy) =>
      policy.factory ?? python?.bridge.factoryFor(policy) ?? checkOnlyFactory(policy);
    let table: RouteTable;
    try {
      table = await buildRouteTable(config, { registry, factoryFor, compileCondition });
    } catch (error) {
      await python?.stop();
      throw error;
    }
    const chain = table.chains.get(setup.route) ??
      (config.unmatchedRoutes === "pass" ? table.defaultChain : undefined);
    if (!chain) {
      await closeChains(table.allChains());
      await python?.stop();
      const names = config.routes.map((r) => r.name).join(", ") || "none";
      throw new ProblemsError(`unknown route "${setup.route}"`, [{
        file: config.source,
        path: "routes",
        message: `has no route named "${setup.route}" (its routes: ${names})`,
      }]);
    }
    return new PolicyHarness(chain, table, python);
  }

  /**
   * Sends `request` through the chain and, unless a request policy answers, returns the
   * upstream's `response` (default: 200 without a body) through the response policies.
   */
  request(request: TestRequest = {}, response: TestResponse = {}): Promise<ExchangeResult> {
    return runExchange(this.chain, request, response, this.table.config.limits);
  }

  /** Closes the policy instances (`close()`) and stops the Python executor, if one runs. */
  async close(): Promise<void> {
    await closeChains(this.table.allChains());
    await this.python?.stop();
  }

  /** Same as {@link PolicyHarness.close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
