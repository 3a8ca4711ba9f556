/**
 * For the authentication policies' unit tests: instances built through the real registry
 * (schema defaults, validation, `${config}` references, as the engine builds them) and
 * request contexts for them.
 */
import { HeaderMap, ImmediateResponse, type Policy, queryOf, type RequestContext } from "@tollgate/sdk";
import { parse } from "yaml";
import { generatedPolicies } from "../../../src/gen/registry.ts";
import { PolicyRegistry } from "../../../src/registry/registry.ts";

const registry = new PolicyRegistry(generatedPolicies);

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

/** Whether a request action lets the request continue (anything but an immediate response). */
export function passes(action: unknown): boolean {
  return !(action instanceof ImmediateResponse);
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
