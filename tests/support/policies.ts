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
import { ExchangeState } from "../../src/chain/state.ts";
import { generatedPolicies, pythonRegistry } from "../../src/gen/test/registry.ts";
import { PolicyRegistry } from "../../src/registry/registry.ts";
import { instanceMode } from "../../src/registry/modes.ts";
import { Body, type Params, type Policy, type ProcessingMode } from "../../src/sdk/mod.ts";

export type { ExchangeResult, PolicyHarness, TestRequest, TestResponse };

/** The policies of the test build. */
export const TEST_BUILD = { policies: generatedPolicies, pythonRegistry };

/** The test build's registry. */
export const registry = new PolicyRegistry(generatedPolicies);

/**
 * `name:v1`'s parameters after schema validation and defaults, for a policy tested without
 * the harness (an auditing policy's sink, a chunk handler); throws with the schema problems.
 */
export function resolveParams(name: string, parameters: Record<string, unknown>): Params {
  const found = registry.find(name, "v1");
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

/** A policy instance as a route would get it, with its validated, defaulted parameters. */
export interface Instance {
  readonly policy: Policy;
  readonly params: Params;
  /** Its processing mode: the definition's, resolved for these parameters. */
  readonly mode: ProcessingMode;
}

/**
 * Instantiates `name:v1` for route "test-route" (for what the harness does not drive yet:
 * chunk handlers); throws like a chain build would.
 */
export async function instantiate(name: string, parameters: Record<string, unknown> = {}): Promise<Instance> {
  const params = resolveParams(name, parameters);
  const found = registry.find(name, "v1");
  if (!found.ok || !found.policy.factory) {
    throw new Error(`${name}:v1 is not a TypeScript policy of the test build`);
  }
  const policy = await found.policy.factory({
    routeName: "test-route",
    policyName: name,
    policyVersion: found.policy.definition.version,
    attachedTo: "route",
  }, params);
  return { policy, params, mode: instanceMode(found.policy.definition.processingMode, params) };
}

/** An exchange in the request phase, for driving the chain runner directly. */
export function requestState(request: TestRequest = {}): ExchangeState {
  const state = new ExchangeState({ name: "test-route" });
  state.shared.requestId = "req-1";
  state.method = request.method ?? "GET";
  state.path = request.path ?? "/";
  state.authority = request.authority ?? "api.example.com";
  state.scheme = request.scheme ?? "https";
  for (const [name, values] of Object.entries(request.headers ?? {})) {
    for (const value of typeof values === "string" ? [values] : values) {
      state.requestHeaders.append(name, value);
    }
  }
  state.clientAddress = request.clientAddress;
  if (request.body !== undefined) {
    state.requestBody = new Body(
      typeof request.body === "string" ? new TextEncoder().encode(request.body) : request.body as Uint8Array,
    );
  }
  return state;
}
