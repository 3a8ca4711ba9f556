/**
 * The Python bridge against the real executor (started by the real supervisor): call
 * correlation under concurrency, deadlines, a broken stream, reconnection after a restart,
 * backpressure, and batching that gives exactly the results of one-by-one calls.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { repoRoot, venvPython } from "../../scripts/lib/venv.ts";
import type { FailureRule, PythonConfig } from "../../src/config/types.ts";
import type { ChainEntry } from "../../src/chain/chain.ts";
import { applyRequestModifications } from "../../src/chain/apply.ts";
import { PolicyFailure } from "../../src/chain/failure.ts";
import type { PolicyOutcome } from "../../src/chain/chain.ts";
import { ExchangeState } from "../../src/chain/state.ts";
import { generatedPolicies, pythonRegistry } from "../../src/gen/test/registry.ts";
import { PythonBridge } from "../../src/python/bridge.ts";
import { Body } from "../../src/sdk/context.ts";
import { ExecutorClient } from "../../src/python/client.ts";
import { PythonSupervisor } from "../../src/python/supervisor.ts";
import { instanceMode } from "../../src/registry/modes.ts";
import { PolicyRegistry } from "../../src/registry/registry.ts";
import { waitFor } from "../support/ports.ts";

const registry = new PolicyRegistry(generatedPolicies);

async function startExecutor(options: { maxInFlight?: number; timeoutMs?: number } = {}) {
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
        policy,
        params: resolved.params,
        shownParams: resolved.shown,
        secrets: resolved.secrets,
        mode: instanceMode(found.policy.definition.processingMode, resolved.params),
        onFailure: "deny" as FailureRule,
        timeoutMs: undefined,
        condition: undefined,
        batch: bridge,
        ...extra,
      } satisfies ChainEntry;
    },
    async stop() {
      await supervisor.stop(2000);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function request(path: string, headers: [string, string][] = []): ExchangeState {
  const state = new ExchangeState({ name: "r" });
  state.method = "GET";
  state.path = path;
  state.authority = "api";
  state.scheme = "http";
  for (const [name, value] of headers) state.requestHeaders.append(name, value);
  state.shared.requestId = path;
  return state;
}

/** Applies outcomes the way the chain executor does (for comparing batch and single runs). */
function describe(outcomes: readonly PolicyOutcome[]) {
  return outcomes.map((o) =>
    "error" in o ? { error: (o.error as PolicyFailure).kind } : JSON.parse(JSON.stringify(o.action ?? null))
  );
}

Deno.test({
  name: "the Python bridge against the real executor",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const executor = await startExecutor();
    try {
      await t.step("200 concurrent calls on one stream each get their own answer", async () => {
        const stamp = await executor.entry("py-stamp", { label: "P" });
        await Promise.all(Array.from({ length: 200 }, async (_, i) => {
          const state = request(`/c/${i}`, [["x-trace", `caller-${i}`]]);
          const [outcome] = await executor.bridge.run([stamp], "request", state);
          assert.ok("action" in outcome && outcome.action?.kind === "upstream-request");
          assert.deepEqual(outcome.action.setHeaders?.["x-seen-by-p"], [`caller-${i}`]);
          assert.deepEqual(state.shared.metadata.trace, ["P"], "metadata came back for this call");
        }));
        assert.equal(executor.client.inFlight, 0);
      });

      await t.step("a call past its deadline fails as a timeout; the executor keeps serving", async () => {
        const slow = await executor.entry("py-sleep", { seconds: 0.5 }, { timeoutMs: 100 });
        const started = performance.now();
        const [outcome] = await executor.bridge.run([slow], "request", request("/slow"));
        assert.ok("error" in outcome && outcome.error instanceof PolicyFailure);
        assert.equal((outcome.error as PolicyFailure).kind, "timeout");
        assert.ok(performance.now() - started < 450, "failed at the deadline, not when the policy finished");
        assert.equal(executor.client.inFlight, 0);
        const fast = await executor.entry("add-python-header");
        const [ok] = await executor.bridge.run([fast], "request", request("/after"));
        assert.ok("action" in ok);
      });

      await t.step("a call over the message limit fails as an error and is never sent", async () => {
        const header = await executor.entry("add-python-header");
        const state = request("/huge");
        state.requestBody = new Body(new Uint8Array(5 << 20));
        const [outcome] = await executor.bridge.run([header], "request", state);
        assert.ok("error" in outcome && outcome.error instanceof PolicyFailure);
        assert.equal((outcome.error as PolicyFailure).kind, "error");
        assert.match((outcome.error as PolicyFailure).message, /over the 4194304-byte message limit/);
        assert.equal(executor.client.inFlight, 0);
        const [ok] = await executor.bridge.run([header], "request", request("/after-huge"));
        assert.ok("action" in ok, "the connection still serves");
      });

      await t.step(
        "batching: one call, and exactly the results of running the policies one by one",
        async () => {
          const chains = [
            [["py-stamp", { label: "A" }], ["py-stamp", { label: "B" }], ["py-stamp", { label: "C" }]],
            [["py-stamp", { label: "A" }], ["py-raise", {}, "continue"], ["py-stamp", { label: "C" }]],
            [["py-stamp", { label: "A" }], ["py-raise", {}, "skipRemaining"], ["py-stamp", { label: "C" }]],
            [["py-stamp", { label: "A" }], ["py-deny", {}], ["py-stamp", { label: "C" }]],
          ] as const;
          for (const spec of chains) {
            const entries = await Promise.all(
              spec.map(([name, params, rule]) =>
                executor.entry(name, params, { onFailure: (rule ?? "deny") as FailureRule })
              ),
            );
            const batched = request("/b", [["x-in", "1"]]);
            const together = await executor.bridge.run(entries, "request", batched);

            const single = request("/b", [["x-in", "1"]]);
            const oneByOne: PolicyOutcome[] = [];
            for (const entry of entries) {
              const [outcome] = await executor.bridge.run([entry], "request", single);
              oneByOne.push(outcome);
              // Apply what the chain executor would, so the next policy sees it.
              if ("action" in outcome && outcome.action?.kind === "upstream-request") {
                applyRequestModifications(single, outcome.action);
              }
              const stops = "error" in outcome
                ? entry.onFailure !== "continue"
                : outcome.action?.kind === "immediate-response";
              if (stops) break;
            }
            assert.deepEqual(describe(together), describe(oneByOne), JSON.stringify(spec));
            assert.deepEqual(batched.shared.metadata, single.shared.metadata, JSON.stringify(spec));
          }
        },
      );

      await t.step(
        "the stream breaks when the executor dies: pending calls fail at once as unavailable",
        async () => {
          const slow = await executor.entry("py-sleep", { seconds: 3 }, { timeoutMs: 10_000 });
          const pending = executor.bridge.run([slow], "request", request("/pending"));
          await waitFor("the call to be in flight", () => executor.client.inFlight === 1);
          const started = performance.now();
          Deno.kill(executor.supervisor.pid!, "SIGKILL");
          const [outcome] = await pending;
          assert.ok("error" in outcome);
          assert.equal((outcome.error as PolicyFailure).kind, "unavailable");
          assert.ok(performance.now() - started < 2000, "failed when the stream broke, not at the deadline");
        },
      );

      await t.step(
        "after the supervisor restarts the executor, calls succeed again by themselves",
        async () => {
          await waitFor(
            "the restart",
            () => executor.supervisor.state === "healthy" && executor.supervisor.restarts === 1,
            15_000,
          );
          const header = await executor.entry("add-python-header");
          await waitFor("a successful call", async () => {
            const [outcome] = await executor.bridge.run([header], "request", request("/back"));
            return "action" in outcome;
          }, 10_000);
        },
      );
    } finally {
      await executor.stop();
    }
  },
});

Deno.test({
  name: "calls beyond python.maxInFlight fail fast as unavailable",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const executor = await startExecutor({ maxInFlight: 2 });
    try {
      const slow = await executor.entry("py-sleep", { seconds: 0.3 });
      const first = executor.bridge.run([slow], "request", request("/1"));
      const second = executor.bridge.run([slow], "request", request("/2"));
      const [third] = await executor.bridge.run([slow], "request", request("/3"));
      assert.ok("error" in third);
      assert.equal((third.error as PolicyFailure).kind, "unavailable");
      assert.match((third.error as PolicyFailure).message, /2 Python calls already in flight/);
      for (const [outcome] of await Promise.all([first, second])) assert.ok("action" in outcome);
    } finally {
      await executor.stop();
    }
  },
});
