/**
 * What bounds a policy's time: the default timeout for asynchronous policies, and what a
 * synchronous loop does to the engine (its one JavaScript thread is held, so /healthz stops
 * answering: the signal a liveness probe with a timeout acts on).
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../support/engine_process.ts";
import { ExtProcClient, requestHeaders } from "../support/extproc_client.ts";

const policy = (name: string, parameters: Record<string, unknown>) => ({ name, version: "v1", parameters });

async function healthz(engine: EngineProcess, timeoutMs: number): Promise<number> {
  const response = await fetch(`${engine.adminUrl}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
  await response.body?.cancel();
  return response.status;
}

Deno.test("an asynchronous policy without a timeout fails under limits.policyTimeout", async () => {
  const engine = await EngineProcess.start({
    config: {
      limits: { policyTimeout: "300ms" },
      routes: [{ name: "slow", policies: [policy("slow", { delayMs: 5000 })] }],
    },
  });
  const client = new ExtProcClient(`unix:${engine.layout.extprocSocket}`);
  try {
    const stream = client.open();
    const started = performance.now();
    const response = await stream.exchange(requestHeaders("slow", "/slow"));
    assert.ok(performance.now() - started < 4000, "answered before the policy finished");
    assert.equal(response.response.case, "immediateResponse");
    const immediate = response.response.value as { status?: { code: number }; body: Uint8Array };
    assert.equal(immediate.status?.code, 504);
    assert.equal(JSON.parse(new TextDecoder().decode(immediate.body)).error, "policy_timeout");
    await stream.finish();
  } finally {
    client.close();
    assert.equal(await engine.stop(), 0);
  }
});

Deno.test("a policy that spins holds the engine: /healthz times out during the loop and answers after", async () => {
  const engine = await EngineProcess.start({
    config: { routes: [{ name: "spin", policies: [policy("spin", { ms: 3000 })] }] },
  });
  const client = new ExtProcClient(`unix:${engine.layout.extprocSocket}`);
  try {
    assert.equal(await healthz(engine, 1000), 200);
    const stream = client.open();
    const answer = stream.exchange(requestHeaders("spin", "/spin"));
    // Give the request time to reach the policy, then probe like a kubelet with a 1 s timeout.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await assert.rejects(healthz(engine, 1000), (error: Error) => error.name === "TimeoutError");
    const response = await answer;
    assert.equal(response.response.case, "requestHeaders", "the spinning request itself completes");
    assert.equal(await healthz(engine, 1000), 200, "the engine answers again once the loop ends");
    await stream.finish();
  } finally {
    client.close();
    assert.equal(await engine.stop(), 0);
  }
});
