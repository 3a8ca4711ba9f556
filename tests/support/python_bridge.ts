/**
 * A real executor for bridge tests, started by the real supervisor, with a bridge on its
 * client and a helper that makes chain entries of the test build's Python policies.
 */
import { DEFAULT_STREAMING } from "../../src/sdk/chunk.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { repoRoot, venvPython } from "../../scripts/lib/venv.ts";
import type { FailureRule, PythonConfig } from "../../src/config/types.ts";
import type { ChainEntry } from "../../src/chain/chain.ts";
import { ExchangeState } from "../../src/chain/state.ts";
import { generatedPolicies, pythonRegistry } from "../../src/gen/test/registry.ts";
import { PythonBridge } from "../../src/python/bridge.ts";
import { ExecutorClient } from "../../src/python/client.ts";
import { PythonSupervisor } from "../../src/python/supervisor.ts";
import { instanceMode } from "../../src/registry/modes.ts";
import { PolicyRegistry } from "../../src/registry/registry.ts";

const registry = new PolicyRegistry(generatedPolicies);

export async function startExecutor(options: { maxInFlight?: number; timeoutMs?: number } = {}) {
  const dir = await Deno.makeTempDir({ prefix: "tollgate-bridge-" });
  const python: PythonConfig = {
    socket: join(dir, "python.sock"),
    workers: 8,
    timeoutMs: options.timeoutMs ?? 5000,
    interpreter: venvPython,
    home: repoRoot,
    maxInFlight: options.maxInFlight ?? 1024,
    processes: 1,
  };
  const client = new ExecutorClient({
    socket: python.socket,
    maxInFlight: python.maxInFlight,
    maxMessageBytes: 4 << 20,
  });
  const supervisor = new PythonSupervisor({
    python,
    registryFile: pythonRegistry,
    logLevel: "warning",
    maxMessageBytes: 4 << 20,
    connect: () => client,
    healthIntervalMs: 500,
  });
  await supervisor.start();
  const bridge = new PythonBridge(() => client, python.timeoutMs);
  return {
    client,
    supervisor,
    bridge,
    async entry(name: string, parameters: Record<string, unknown> = {}, extra: Partial<ChainEntry> = {}) {
      const found = registry.find(name, "v1");
      assert.ok(found.ok);
      const resolved = found.policy.parameters.resolve(parameters, {});
      assert.ok(resolved.ok);
      const policy = await bridge.factoryFor(found.policy)(
        {
          routeName: "r",
          policyName: name,
          policyVersion: found.policy.definition.version,
          attachedTo: "route",
        },
        resolved.params,
      );
      return {
        label: found.policy.key,
        name,
        version: found.policy.definition.version,
        policy,
        params: resolved.params,
        shownParams: resolved.shown,
        secrets: resolved.secrets,
        mode: instanceMode(found.policy.definition.processingMode, resolved.params),
        onFailure: "deny" as FailureRule,
        timeoutMs: undefined,
        condition: undefined,
        batch: bridge,
        streaming: found.policy.definition.streaming ?? DEFAULT_STREAMING,
        ...extra,
      } satisfies ChainEntry;
    },
    async stop() {
      await supervisor.stop(2000);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A GET exchange on route `r` whose request id is its path. */
export function request(path: string, headers: [string, string][] = []): ExchangeState {
  const state = new ExchangeState({ name: "r" });
  state.method = "GET";
  state.path = path;
  state.authority = "api";
  state.scheme = "http";
  for (const [name, value] of headers) state.requestHeaders.append(name, value);
  state.shared.requestId = path;
  return state;
}
