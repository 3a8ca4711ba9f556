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
import { type AuditEntry, AuditQueue } from "../chain/audit.ts";
import { type Batched, Chain, type ChainEntry, type Condition } from "../chain/chain.ts";
import type { DecisionEntry } from "../observe/decision_trace.ts";
import type { AuditPolicy } from "../sdk/audit.ts";
import { instanceMode } from "../registry/modes.ts";
import type { RegisteredPolicy } from "../registry/registry.ts";
import type { PolicyRegistry } from "../registry/registry.ts";
import { DEFAULT_STREAMING } from "../sdk/chunk.ts";
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

/** What one policy ref of a chain builds into. */
type Built = { readonly inline: ChainEntry } | { readonly audit: AuditEntry };

/** The hooks of an inline policy, which an auditing policy must not have. */
const INLINE_HOOKS = ["onRequest", "onResponse", "mode"] as const;

function auditEntry(
  config: EngineConfig,
  ref: PolicyRef,
  key: string,
  instance: unknown,
  resolved: { readonly params: ChainEntry["params"]; readonly secrets: readonly string[] },
): AuditEntry | string {
  const policy = instance as Partial<AuditPolicy> & Record<string, unknown>;
  if (typeof policy?.audit !== "function") {
    return "getPolicy of an auditing policy must return an object with audit()";
  }
  const hooks = INLINE_HOOKS.filter((hook) => policy[hook] !== undefined);
  if (hooks.length > 0) {
    return `an auditing policy observes only: it cannot have ${hooks.join(", ")}`;
  }
  return {
    label: key,
    policy: policy as AuditPolicy,
    params: resolved.params,
    secrets: resolved.secrets,
    timeoutMs: ref.timeoutMs,
    queue: new AuditQueue(config.limits.auditQueue),
  };
}

async function buildEntry(
  config: EngineConfig,
  owner: ChainOwner,
  ref: PolicyRef,
  at: (string | number)[],
  ctx: ChainBuildContext,
  problems: Problem[],
): Promise<Built | undefined> {
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
  const auditing = policy.definition.kind === "audit";
  if (auditing && ref.executionCondition !== undefined) {
    return fail(
      ["executionCondition"],
      "auditing policies take no executionCondition: they see every request",
      policy.key,
    );
  }
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
    if (auditing) {
      const audit = auditEntry(config, ref, policy.key, instance, resolved);
      return typeof audit === "string" ? fail([], audit, policy.key) : { audit };
    }
    if (typeof (instance as { mode?: unknown }).mode === "function") return fail([], STALE_MODE, policy.key);
    const mode: ProcessingMode = instanceMode(policy.definition.processingMode, resolved.params);
    const inline: ChainEntry = {
      label: policy.key,
      name: policy.definition.name,
      version: policy.definition.version,
      policy: instance,
      params: resolved.params,
      shownParams: resolved.shown,
      secrets: resolved.secrets,
      mode,
      onFailure: ref.onFailure,
      timeoutMs: ref.timeoutMs,
      condition,
      batch: (instance as Partial<Batched>).batchRunner,
      streaming: policy.definition.streaming ?? DEFAULT_STREAMING,
    };
    return { inline };
  } catch (error) {
    const message = scrubSecrets(String((error as Error)?.message ?? error), resolved.secrets);
    return fail([], `getPolicy failed: ${message}`, policy.key);
  }
}

/** How the trace shows a policy configured with `enabled: false` (its definition is not checked). */
function disabledEntry(ref: PolicyRef, ctx: ChainBuildContext): DecisionEntry {
  const found = ctx.registry.find(ref.name, ref.version);
  return Object.freeze({
    policy: ref.name,
    version: found.ok ? found.policy.definition.version : ref.version,
    phase: "request",
    outcome: "skipped",
    reason: "disabled",
    startNs: 0,
    durationMs: 0,
  });
}

async function buildChain(
  config: EngineConfig,
  owner: ChainOwner,
  refs: readonly PolicyRef[],
  at: (string | number)[],
  ctx: ChainBuildContext,
  problems: Problem[],
  serverTiming = false,
): Promise<Chain> {
  const entries: ChainEntry[] = [];
  const audits: AuditEntry[] = [];
  const disabled: DecisionEntry[] = [];
  for (const [index, ref] of refs.entries()) {
    if (!ref.enabled) {
      disabled.push(disabledEntry(ref, ctx));
      continue;
    }
    const built = await buildEntry(config, owner, ref, [...at, index], ctx, problems);
    if (built && "inline" in built) entries.push(built.inline);
    else if (built) audits.push(built.audit);
  }
  return new Chain(owner.route, entries, { disabled, audits, serverTiming });
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
    chains.set(
      route.name,
      await buildChain(config, owner, route.policies, at, ctx, problems, route.serverTiming),
    );
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
  const hasDefault = fallback.entries.length > 0 || fallback.audits.length > 0;
  return new RouteTable(config, chains, hasDefault ? fallback : undefined);
}
