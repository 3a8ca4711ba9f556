/**
 * Unit tests of built-in policies: an instance made by the real registry (parameters
 * validated and defaulted as for a route) and a request state to run it against.
 */
import assert from "node:assert/strict";
import { ExchangeState } from "../../src/chain/state.ts";
import { generatedPolicies } from "../../src/gen/test/registry.ts";
import { PolicyRegistry } from "../../src/registry/registry.ts";
import { instanceMode } from "../../src/registry/modes.ts";
import { Body, HeaderMap, type Params, type Policy, type ProcessingMode } from "../../src/sdk/mod.ts";

const registry = new PolicyRegistry(generatedPolicies);

/** A policy instance as a route would get it, with its validated, defaulted parameters. */
export interface Instance {
  readonly policy: Policy;
  readonly params: Params;
  /** Its processing mode: the definition's, resolved for these parameters. */
  readonly mode: ProcessingMode;
}

/** Parameters after schema validation and defaults; throws with the schema problems. */
export function resolveParams(name: string, parameters: Record<string, unknown>): Params {
  const found = registry.find(name, "v1");
  assert.ok(found.ok, !found.ok ? found.message : "");
  const resolved = found.policy.parameters.resolve(parameters, {});
  if (!resolved.ok) throw new Error(resolved.problems.map((p) => p.message).join("; "));
  return resolved.params;
}

/** Instantiates `name:v1` for route "test-route"; throws like a chain build would. */
export async function instantiate(name: string, parameters: Record<string, unknown> = {}): Promise<Instance> {
  const params = resolveParams(name, parameters);
  const found = registry.find(name, "v1");
  assert.ok(found.ok && found.policy.factory);
  const policy = await found.policy.factory({
    routeName: "test-route",
    policyName: name,
    policyVersion: found.policy.definition.version,
    attachedTo: "route",
  }, params);
  return { policy, params, mode: instanceMode(found.policy.definition.processingMode, params) };
}

/** What a test request has; everything is optional. */
export interface TestRequest {
  readonly method?: string;
  readonly path?: string;
  readonly authority?: string;
  readonly scheme?: string;
  readonly headers?: Record<string, string | string[]>;
  readonly body?: string | Uint8Array;
  /** Envoy's downstream address (`ctx.clientAddress`). */
  readonly clientAddress?: string;
}

/** An exchange in the request phase. */
export function requestState(request: TestRequest = {}): ExchangeState {
  const state = new ExchangeState({ name: "test-route" });
  state.shared.requestId = "req-1";
  state.method = request.method ?? "GET";
  state.path = request.path ?? "/";
  state.authority = request.authority ?? "api.example.com";
  state.scheme = request.scheme ?? "https";
  state.requestHeaders = headerMap(request.headers);
  state.clientAddress = request.clientAddress;
  if (request.body !== undefined) {
    state.requestBody = new Body(
      typeof request.body === "string" ? new TextEncoder().encode(request.body) : request.body,
    );
  }
  return state;
}

export function headerMap(headers: Record<string, string | string[]> = {}): HeaderMap {
  const map = new HeaderMap();
  for (const [name, values] of Object.entries(headers)) {
    for (const value of typeof values === "string" ? [values] : values) map.append(name, value);
  }
  return map;
}

/** Runs `onRequest` of an instance on a request. */
export async function onRequest(instance: Instance, request: TestRequest = {}) {
  return await instance.policy.onRequest?.(requestState(request).requestView, instance.params);
}

/** Runs `onResponse` of an instance on a response to a request. */
export async function onResponse(
  instance: Instance,
  request: TestRequest,
  response: { status?: number; headers?: Record<string, string | string[]>; body?: string } = {},
) {
  const state = requestState(request);
  state.status = response.status ?? 200;
  state.responseHeaders = headerMap(response.headers);
  if (response.body !== undefined) state.responseBody = new Body(new TextEncoder().encode(response.body));
  return await instance.policy.onResponse?.(state.responseView, instance.params);
}

/** The JSON body of an immediate response. */
export function jsonBody(action: unknown): Record<string, unknown> {
  const body = (action as { body?: string | Uint8Array }).body;
  assert.ok(body !== undefined, "the action has a body");
  return JSON.parse(typeof body === "string" ? body : new TextDecoder().decode(body));
}

/** The status of an immediate response, or undefined for any other action. */
export function immediateStatus(action: unknown): number | undefined {
  return (action as { kind?: string } | undefined)?.kind === "immediate-response"
    ? (action as { statusCode: number }).statusCode
    : undefined;
}
