/**
 * For the authentication policies' unit tests: chains of one policy run by the policy
 * harness (`@tollgate/sdk/testing`: schema defaults, validation and `${config}` references
 * as the engine builds them, and the engine's chain runner), and, for the tests of caching
 * and sharing inside an instance, instances built through the real registry and request
 * contexts for them.
 */
import { HeaderMap, ImmediateResponse, type Policy, queryOf, type RequestContext } from "@tollgate/sdk";
import { type ExchangeResult, type PolicyHarness, testPolicy, type TestRequest } from "@tollgate/sdk/testing";
import { parse } from "yaml";
import { generatedPolicies } from "../../../src/gen/registry.ts";
import { PolicyRegistry } from "../../../src/registry/registry.ts";

const registry = new PolicyRegistry(generatedPolicies);

/** A chain of `name:v1` of the default build, for route `r`. */
export function authPolicy(
  name: string,
  parameters: Record<string, unknown>,
  policyConfig: Record<string, unknown> = {},
): Promise<PolicyHarness> {
  return testPolicy(name, { parameters, policyConfig, route: "r" });
}

/** A client's GET request, from 203.0.113.7. */
export function clientRequest(headers: Record<string, string | string[]> = {}, path = "/"): TestRequest {
  return { headers, path, authority: "example.test", clientAddress: "203.0.113.7", requestId: "test" };
}

/** The answer that refused a request: status, headers (values joined) and JSON body. */
export function refusal(
  result: ExchangeResult,
): { status: number; headers: Record<string, string>; body: unknown } {
  if (!result.immediate) {
    throw new Error(`expected an immediate response, the upstream got ${result.upstream?.path}`);
  }
  return {
    status: result.immediate.status,
    headers: Object.fromEntries(
      [...result.immediate.headers.names()].map((n) => [n, result.immediate!.headers.get(n)!]),
    ),
    body: result.immediate.json(),
  };
}

/** Whether the request reached the upstream. */
export function passes(result: ExchangeResult): boolean {
  return result.immediate === undefined && result.upstream !== undefined;
}

/** A policy instance of the default build, with its parameters resolved like the engine does. */
export async function instantiate(
  name: string,
  parameters: Record<string, unknown>,
  policyConfig: Record<string, unknown> = {},
): Promise<Policy> {
  const found = registry.find(name, "v1");
  if (!found.ok) throw new Error(found.message);
  const resolved = found.policy.parameters.resolve(parameters, policyConfig);
  if (!resolved.ok) {
    throw new Error(resolved.problems.map((p) => `${p.segments.join(".")}: ${p.message}`).join("; "));
  }
  return await found.policy.factory!(
    { routeName: "r", policyName: name, policyVersion: "v1.0.0", attachedTo: "route" },
    resolved.params,
  );
}

/** The parameter problems of a policy's parameters (empty when they are valid). */
export function parameterProblems(name: string, parameters: Record<string, unknown>): string[] {
  const found = registry.find(name, "v1");
  if (!found.ok) throw new Error(found.message);
  const resolved = found.policy.parameters.resolve(parameters, {});
  return resolved.ok ? [] : resolved.problems.map((p) => `${p.segments.join(".")}: ${p.message}`);
}

/** The policy refs of a policy's example.yaml. */
export async function examples(
  name: string,
): Promise<{ name: string; parameters: Record<string, unknown> }[]> {
  return parse(await Deno.readTextFile(new URL(`../../../policies/${name}/example.yaml`, import.meta.url)));
}

/** A request context as the engine gives a policy in the request phase. */
export function request(headers: Record<string, string | string[]> = {}, path = "/"): RequestContext {
  const pairs = Object.entries(headers).flatMap(([name, value]) =>
    (Array.isArray(value) ? value : [value]).map((v) => [name, v] as const)
  );
  return {
    shared: { requestId: "test", route: { name: "r" }, metadata: {} },
    headers: new HeaderMap(pairs),
    body: undefined,
    path,
    query: queryOf(path),
    method: "GET",
    authority: "example.test",
    scheme: "https",
    clientAddress: "203.0.113.7",
    attributes: {},
    signal: new AbortController().signal,
  };
}

/** An immediate response's status, headers and JSON body, for assertions. */
export function denial(action: unknown): { status: number; headers: Record<string, unknown>; body: unknown } {
  if (!(action instanceof ImmediateResponse)) {
    throw new Error(`expected an immediate response, got ${action}`);
  }
  return {
    status: action.statusCode,
    headers: { ...action.headers },
    body: JSON.parse(String(action.body)),
  };
}
