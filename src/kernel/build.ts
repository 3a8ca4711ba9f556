/**
 * Builds a route table from a config: for every route, every enabled policy is looked up in
 * the registry, given its validated parameters and instantiated by its factory. Every
 * problem of every route is reported at once; nothing is swapped in unless all succeed.
 */
import { type Problem, ProblemsError } from "../config/problem.ts";
import { accessProblem } from "../config/scope.ts";
import { scrubSecrets } from "../observe/scrub.ts";
import type { EngineConfig, PolicyRef } from "../config/types.ts";
import { checkHeaderName } from "../chain/apply.ts";
import { type Batched, Chain, type ChainEntry, type Condition } from "../chain/chain.ts";
import { instanceMode } from "../registry/modes.ts";
import type { RegisteredPolicy } from "../registry/registry.ts";
import type { PolicyRegistry } from "../registry/registry.ts";
import type { PolicyMetadata, RouteInfo } from "../sdk/context.ts";
import type { ProcessingMode } from "../sdk/mode.ts";
import type { PolicyFactory } from "../sdk/policy.ts";
import { closeChains, RouteTable } from "./routes.ts";

/** Supplies the factory of a registered policy (the bridge's for Python policies). */
export type FactoryResolver = (policy: RegisteredPolicy) => PolicyFactory | undefined;

/**
 * For checking configs without running anything (`validate`): TypeScript policies are
 * instantiated for real; Python policies stand in with an empty instance (their mode comes
 * from the definition, like every policy's).
 */
export const checkOnlyFactory: FactoryResolver = (policy) => policy.factory ?? (() => ({}));

/** Compiles an execution condition; throws with a readable message if it is invalid. */
export type ConditionCompiler = (expression: string) => Condition;

export interface ChainBuildContext {
  readonly registry: PolicyRegistry;
  readonly factoryFor: FactoryResolver;
  readonly compileCondition: ConditionCompiler;
}

/**
 * `mode()` was how a TypeScript instance chose its phases; the definition's `processingMode`
 * decides now, and an instance that still has one would silently not get what it asks for.
 */
const STALE_MODE = "the policy instance has a mode() method, which the engine does not read: " +
  "processingMode in policy-definition.yaml decides the phases (a field may depend on a parameter, " +
  "see docs/policies.md); remove mode()";

/** Why the engine would refuse, on every request, to change a header of this name. */
function headerNameProblem(name: string): string | undefined {
  try {
    checkHeaderName(name);
    return undefined;
  } catch (error) {
    return `${(error as Error).message}: the engine would refuse it on every request`;
  }
}

/** The route a chain is built for (or the default chain), and how problems name it. */
interface ChainOwner {
  readonly route: RouteInfo;
  readonly where: string;
}

async function buildEntry(
  config: EngineConfig,
  owner: ChainOwner,
  ref: PolicyRef,
  at: (string | number)[],
  ctx: ChainBuildContext,
  problems: Problem[],
): Promise<ChainEntry | undefined> {
  const route = owner.route;
  const fail = (segments: (string | number)[], reason: string, label = `${ref.name}:${ref.version}`) => {
    problems.push(config.locate([...at, ...segments], `${reason} (${owner.where}, policy ${label})`));
    return undefined;
  };
  const found = ctx.registry.find(ref.name, ref.version);
  if (!found.ok) return fail(["name"], found.message);
  const { policy } = found;
  const resolved = policy.parameters.resolve(ref.parameters, config.policyConfig);
  if (!resolved.ok) {
    for (const p of resolved.problems) fail(p.segments as (string | number)[], p.message, policy.key);
    return undefined;
  }
  const outside = resolved.access.filter((need) => accessProblem(need) !== undefined);
  for (const need of outside) fail(need.segments as (string | number)[], accessProblem(need)!, policy.key);
  const refused = resolved.headerNames.filter((name) => headerNameProblem(name.value) !== undefined);
  for (const name of refused) {
    fail(name.segments as (string | number)[], headerNameProblem(name.value)!, policy.key);
  }
  if (outside.length > 0 || refused.length > 0) return undefined;
  let condition: Condition | undefined;
  if (ref.executionCondition !== undefined) {
    try {
      condition = ctx.compileCondition(ref.executionCondition);
    } catch (error) {
      return fail(["executionCondition"], (error as Error).message, policy.key);
    }
  }
  const factory = ctx.factoryFor(policy);
  if (!factory) {
    return fail([], `no runtime is available for ${policy.definition.runtime} policies`, policy.key);
  }
  const metadata: PolicyMetadata = {
    routeName: route.name,
    policyName: policy.definition.name,
    policyVersion: policy.definition.version,
    api: route.api,
    attachedTo: "route",
  };
  try {
    const instance = await factory(metadata, resolved.params);
    if (typeof (instance as { mode?: unknown }).mode === "function") return fail([], STALE_MODE, policy.key);
    const mode: ProcessingMode = instanceMode(policy.definition.processingMode, resolved.params);
    return {
      label: policy.key,
      policy: instance,
      params: resolved.params,
      shownParams: resolved.shown,
      secrets: resolved.secrets,
      mode,
      onFailure: ref.onFailure,
      timeoutMs: ref.timeoutMs,
      condition,
      batch: (instance as Partial<Batched>).batchRunner,
    };
  } catch (error) {
    const message = scrubSecrets(String((error as Error)?.message ?? error), resolved.secrets);
    return fail([], `getPolicy failed: ${message}`, policy.key);
  }
}

async function buildChain(
  config: EngineConfig,
  owner: ChainOwner,
  refs: readonly PolicyRef[],
  at: (string | number)[],
  ctx: ChainBuildContext,
  problems: Problem[],
): Promise<Chain> {
  const entries: ChainEntry[] = [];
  for (const [index, ref] of refs.entries()) {
    if (!ref.enabled) continue;
    const entry = await buildEntry(config, owner, ref, [...at, index], ctx, problems);
    if (entry) entries.push(entry);
  }
  return new Chain(owner.route, entries);
}

/** The route name the default chain's policies are created for (`metadata.routeName`). */
export const DEFAULT_CHAIN_ROUTE = "(default)";

/** Builds every route's chain; throws {@link ProblemsError} listing every problem. */
export async function buildRouteTable(config: EngineConfig, ctx: ChainBuildContext): Promise<RouteTable> {
  const problems: Problem[] = [];
  const chains = new Map<string, Chain>();
  for (const [routeIndex, route] of config.routes.entries()) {
    const owner = { route: { name: route.name, api: route.api }, where: `route "${route.name}"` };
    const at = ["routes", routeIndex, "policies"];
    chains.set(route.name, await buildChain(config, owner, route.policies, at, ctx, problems));
  }
  const fallback = await buildChain(
    config,
    { route: { name: DEFAULT_CHAIN_ROUTE }, where: "defaultPolicies" },
    config.defaultPolicies,
    ["defaultPolicies"],
    ctx,
    problems,
  );
  if (problems.length > 0) {
    // The instances built so far are never used: let them release timers and connections.
    await closeChains([...chains.values(), fallback]);
    throw new ProblemsError(`cannot build the routes of ${config.source}`, problems);
  }
  return new RouteTable(config, chains, fallback.entries.length > 0 ? fallback : undefined);
}
