/**
 * What bounds a policy's time: the default timeout for asynchronous policies, and what a
 * synchronous loop under the watchdog's limit does (it holds only its data-plane worker; the
 * control plane keeps answering). Loops past the limit: watchdog_test.ts.
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

Deno.test("a policy that spins holds only its worker: /healthz answers during the loop, the request completes", async () => {
  const engine = await EngineProcess.start({
    config: {
      routes: [{ name: "spin", policies: [policy("spin", { ms: 3000 })] }],
      // Longer than the loop: a bounded spin under the limit is slow, not stuck.
      dataPlane: { watchdog: "30s" },
    },
  });
  const client = new ExtProcClient(`unix:${engine.layout.extprocSocket}`);
  try {
    assert.equal(await healthz(engine, 1000), 200);
    const stream = client.open();
    const answer = stream.exchange(requestHeaders("spin", "/spin"));
    // Give the request time to reach the policy, then probe like a kubelet with a 1 s timeout.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await healthz(engine, 1000), 200, "the control plane answers while a worker spins");
    const response = await answer;
    assert.equal(response.response.case, "requestHeaders", "the spinning request itself completes");
    await stream.finish();
  } finally {
    client.close();
    assert.equal(await engine.stop(), 0);
  }
});
