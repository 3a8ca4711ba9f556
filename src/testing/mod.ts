/**
 * `@tollgate/sdk/testing`: run a policy, or a whole chain, against a request without Envoy.
 *
 * The chain is built by the engine's own chain builder (parameters validated against the
 * definition's schema with defaults applied, `${config}` references, conditions) and run
 * by the engine's chain runner, phase by phase as Envoy would drive it; Python policies
 * run in a real Python executor. The result says what the upstream and the client receive.
 *
 * @example A TypeScript policy test
 * ```ts
 * import assert from "node:assert/strict";
 * import { testPolicy } from "@tollgate/sdk/testing";
 *
 * Deno.test("set-headers adds x-team for the upstream", async () => {
 *   await using harness = await testPolicy("set-headers", {
 *     parameters: { requestHeaders: [{ name: "x-team", value: "users" }] },
 *   });
 *   const result = await harness.request({ path: "/users/1" });
 *   assert.equal(result.upstream?.headers.get("x-team"), "users");
 *   assert.equal(result.trace[0].outcome, "modified");
 * });
 * ```
 *
 * @module
 */
import { configDefaults } from "../cli_build.ts";
import { parseConfig } from "../config/load.ts";
import { generatedPolicies, pythonRegistry } from "../gen/registry.ts";
import { registryKey } from "../registry/definition.ts";
import type { GeneratedPolicy } from "../registry/registry.ts";
import type { ApiInfo } from "../sdk/context.ts";
import type { ExchangeResult, TestRequest, TestResponse } from "./exchange.ts";
import { type HarnessBuild, PolicyHarness } from "./harness.ts";
import { directoryPath, loadPolicyDirectory } from "./load.ts";

export type {
  BodyInit,
  ClientResponse,
  ExchangeResult,
  HeadersInit,
  ImmediateResult,
  MessageView,
  TestRequest,
  TestResponse,
  UpstreamRequest,
} from "./exchange.ts";
export type { DecisionEntry, DecisionOutcome } from "../observe/decision_trace.ts";
export type { HarnessBuild } from "./harness.ts";
export { PolicyHarness };

/** How a policy takes part in the chain: the fields of a route's policy entry. */
export interface PolicySettings {
  /** Validated against the definition's schema, with its defaults applied. */
  readonly parameters?: Readonly<Record<string, unknown>>;
  /** `deny` (default), `continue` or `skipRemaining`. */
  readonly onFailure?: "deny" | "continue" | "skipRemaining";
  /** A duration such as `50ms`. */
  readonly timeout?: string;
  /** A CEL expression, as in the config. */
  readonly executionCondition?: string;
  /** Default true. */
  readonly enabled?: boolean;
}

/**
 * One policy of a chain: a compiled-in policy by `name` (and `version`, default its only
 * major version in the build), or a policy directory by `dir` (a path or a `file:` URL,
 * such as `new URL(".", import.meta.url)` from the policy's own test).
 */
export type ChainPolicy =
  | (PolicySettings & { readonly name: string; readonly version?: string })
  | (PolicySettings & { readonly dir: string | URL });

/** Options of the chain as a whole. */
export interface HarnessOptions {
  /** The route name the policies are created for (`metadata.routeName`). Default `test-route`. */
  readonly route?: string;
  /** The route's API identity (`metadata.api`, `ctx.shared.route.api`). */
  readonly api?: Partial<ApiInfo>;
  /** What `${config.x}` references resolve against. */
  readonly policyConfig?: Readonly<Record<string, unknown>>;
  /** The deadline of asynchronous TypeScript policies without a `timeout` (default `1s`). */
  readonly policyTimeout?: string;
  /** The policies names refer to. Default: this build's (`deno task build`, src/gen/registry.ts). */
  readonly build?: HarnessBuild;
  /** The Python executor (only started when the chain has Python policies). */
  readonly python?: {
    /** Default `$TOLLGATE_PYTHON`, else the repository's `.venv/bin/python3`, else `python3`. */
    readonly interpreter?: string;
    /** The directory holding `python/` and `src/gen/python/`. Default: this repository. */
    readonly home?: string;
    /** Per-call deadline of Python policies without a `timeout` (default `30s`). */
    readonly timeout?: string;
  };
}

const DEFAULT_BUILD: HarnessBuild = { policies: generatedPolicies, pythonRegistry };

function envVar(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no env permission: use the defaults
  }
}

function defaultInterpreter(home: string): string {
  const fromEnv = envVar("TOLLGATE_PYTHON");
  if (fromEnv) return fromEnv;
  const venv = `${home}/.venv/bin/python3`;
  try {
    Deno.statSync(venv);
    return venv;
  } catch {
    return "python3";
  }
}

function defaultVersion(build: HarnessBuild, name: string): string {
  const versions = build.policies.filter((p) => p.definition.name === name).map((p) => p.definition.version);
  const majors = [...new Set(versions.map((v) => registryKey(name, v).slice(name.length + 1)))];
  if (majors.length > 1) {
    throw new Error(
      `policy ${name} has several versions in this build (${versions.join(", ")}): give its version`,
    );
  }
  // An unknown name is reported by the chain build, with the engine's message.
  return majors[0] ?? "v1";
}

/**
 * Builds a chain of policies, as a route's `policies:` list in the config, and returns a
 * harness to run requests through it. Throws the engine's chain-build error (the message
 * `validate` prints) for an unknown policy, a bad parameter or condition, or a failing
 * `getPolicy`.
 *
 * @example A chain with a compiled-in policy and the policy under test
 * ```ts
 * import { testChain } from "@tollgate/sdk/testing";
 *
 * await using harness = await testChain([
 *   { name: "api-key-auth", parameters: { keys: [{ name: "ci", key: "k-123" }] } },
 *   { dir: new URL(".", import.meta.url), parameters: { label: "x" } },
 * ]);
 * const result = await harness.request({ headers: { "x-api-key": "k-123" } });
 * console.log(result.upstream?.headers.toJSON(), result.trace);
 * ```
 */
export async function testChain(
  policies: readonly ChainPolicy[],
  options: HarnessOptions = {},
): Promise<PolicyHarness> {
  const build = options.build ?? DEFAULT_BUILD;
  const extra: GeneratedPolicy[] = [];
  const refs = [];
  for (const policy of policies) {
    const { parameters, onFailure, timeout, executionCondition, enabled } = policy;
    const settings = { parameters, onFailure, timeout, executionCondition, enabled };
    if ("dir" in policy) {
      const loaded = await loadPolicyDirectory(directoryPath(policy.dir));
      extra.push(loaded);
      refs.push({ name: loaded.definition.name, version: loaded.definition.version, ...settings });
    } else {
      refs.push({
        name: policy.name,
        version: policy.version ?? defaultVersion(build, policy.name),
        ...settings,
      });
    }
  }
  const route = options.route ?? "test-route";
  const api = options.api && { id: "", name: "", version: "", context: "", ...options.api };
  const document = {
    routes: [{ name: route, ...(api ? { api } : {}), policies: refs }],
    policyConfig: options.policyConfig ?? {},
    ...(options.policyTimeout ? { limits: { policyTimeout: options.policyTimeout } } : {}),
    ...(options.python?.timeout ? { python: { timeout: options.python.timeout } } : {}),
  };
  const home = options.python?.home ?? configDefaults().pythonHome;
  const config = parseConfig(
    JSON.stringify(document, null, 2),
    "<test chain>",
    {},
    { pythonInterpreter: options.python?.interpreter ?? defaultInterpreter(home), pythonHome: home },
  );
  return await PolicyHarness.build({ config, route, build, extra });
}

/** {@link testChain} for a single policy: a compiled-in one by name, or a policy directory. */
export async function testPolicy(
  policy: string | URL,
  options: HarnessOptions & PolicySettings & { readonly version?: string } = {},
): Promise<PolicyHarness> {
  const { parameters, onFailure, timeout, executionCondition, enabled, version } = options;
  const settings = { parameters, onFailure, timeout, executionCondition, enabled };
  const isDirectory = policy instanceof URL || /^(\.|\/|file:)/.test(policy);
  return await testChain(
    [isDirectory ? { dir: policy, ...settings } : { name: policy as string, version, ...settings }],
    options,
  );
}

/**
 * Runs one request through one policy and closes it: the shortest form of a test.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runPolicy } from "@tollgate/sdk/testing";
 *
 * const result = await runPolicy("respond", {
 *   parameters: { statusCode: 410, body: "gone" },
 *   request: { path: "/legacy" },
 * });
 * assert.equal(result.immediate?.status, 410);
 * assert.equal(result.response.text(), "gone");
 * assert.equal(result.upstream, undefined); // the upstream is never called
 * ```
 */
export async function runPolicy(
  policy: string | URL,
  options: HarnessOptions & PolicySettings & {
    readonly version?: string;
    readonly request?: TestRequest;
    readonly response?: TestResponse;
  } = {},
): Promise<ExchangeResult> {
  await using harness = await testPolicy(policy, options);
  return await harness.request(options.request, options.response);
}
