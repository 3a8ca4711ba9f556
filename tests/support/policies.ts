/**
 * Unit tests of built-in policies run them through the policy authors' harness
 * (`@tollgate/sdk/testing`): the engine's chain builder validates and defaults their
 * parameters as for a route, and its chain runner runs them; the tests assert on what the
 * upstream and the client receive. The test build (tests/fixtures/build.yaml) has every
 * built-in policy.
 */
import {
  type ExchangeResult,
  type HarnessOptions,
  type PolicyHarness,
  type PolicySettings,
  runPolicy,
  testPolicy,
  type TestRequest,
  type TestResponse,
} from "@tollgate/sdk/testing";
import { generatedPolicies, pythonRegistry } from "../../src/gen/test/registry.ts";
import { PolicyRegistry } from "../../src/registry/registry.ts";
import type { Params } from "../../src/sdk/mod.ts";

export type { ExchangeResult, PolicyHarness, TestRequest, TestResponse };

/** The policies of the test build. */
export const TEST_BUILD = { policies: generatedPolicies, pythonRegistry };

/**
 * `name:v1`'s parameters after schema validation and defaults, for a policy tested without
 * a request (an auditing policy's sink); throws with the schema problems.
 */
export function resolveParams(name: string, parameters: Record<string, unknown>): Params {
  const found = new PolicyRegistry(generatedPolicies).find(name, "v1");
  if (!found.ok) throw new Error(found.message);
  const resolved = found.policy.parameters.resolve(parameters, {});
  if (!resolved.ok) throw new Error(resolved.problems.map((p) => p.message).join("; "));
  return resolved.params;
}

/** `name` (default: its one version) as a route gets it; throws the chain-build error for bad parameters. */
export function policy(
  name: string,
  parameters: Record<string, unknown> = {},
  options: HarnessOptions & PolicySettings & { readonly version?: string } = {},
): Promise<PolicyHarness> {
  return testPolicy(name, { build: TEST_BUILD, ...options, parameters });
}

/** One exchange through `name:v1` (built, run and closed). */
export function exchange(
  name: string,
  parameters: Record<string, unknown>,
  request: TestRequest = {},
  response?: TestResponse,
  options: HarnessOptions = {},
): Promise<ExchangeResult> {
  return runPolicy(name, { build: TEST_BUILD, ...options, parameters, request, response });
}

/** The phases a policy took part in, from the decision trace. */
export function phases(result: ExchangeResult): string[] {
  return [...new Set(result.trace.filter((d) => d.outcome !== "skipped").map((d) => d.phase))];
}
