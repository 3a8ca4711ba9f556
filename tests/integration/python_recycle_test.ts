/**
 * Recycling the Python executor: above python.maxMemory (a leaking policy under steady
 * traffic) or after python.maxCallsPerProcess, a successor takes over and the old executor
 * drains, with no request failing.
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../support/engine_process.ts";
import { ExtProcClient, mutationLines, requestHeaders } from "../support/extproc_client.ts";
import { waitFor } from "../support/ports.ts";

/** Steady traffic on `route` through the ext_proc socket; each answer's executor pid, or its failure. */
function traffic(engine: EngineProcess, route: string, loops = 2, pauseMs = 40) {
  const client = new ExtProcClient(`unix:${engine.layout.extprocSocket}`);
  const pids: number[] = [];
  const failures: string[] = [];
  let running = true;
  const workers = Array.from({ length: loops }, async () => {
    while (running) {
      const stream = client.open();
      const response = await stream.exchange(requestHeaders(route, "/"));
      const pid = mutationLines(response).find((l) => l.startsWith("x-executor-pid="));
      if (pid) pids.push(Number(pid.split("=")[1]));
      else failures.push(JSON.stringify(response.response.value));
      await stream.finish();
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  });
  return {
    pids,
    failures,
    async stop() {
      running = false;
      await Promise.all(workers);
      client.close();
    },
  };
}

async function restarts(engine: EngineProcess): Promise<number> {
  const text = await (await fetch(`${engine.adminUrl}/metrics`)).text();
  return Number(/^tollgate_python_executor_restarts_total (\d+)$/m.exec(text)?.[1] ?? NaN);
}

const alive = (pid: number) => {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
};

async function expectRecycled(
  engine: EngineProcess,
  route: string,
  reason: RegExp,
  load = traffic(engine, route),
): Promise<void> {
  try {
    await waitFor("the first answers", () => load.pids.length > 0, 10_000);
    const first = load.pids[0];
    await waitFor("a successor executor to answer", () => load.pids.some((pid) => pid !== first), 30_000);
    const count = load.pids.length;
    await waitFor("more traffic after the switch", () => load.pids.length > count + 20, 10_000);
    await waitFor("the old executor to exit", () => !alive(first), 15_000);
  } finally {
    await load.stop();
  }
  assert.deepEqual(load.failures, [], "no request failed");
  assert.ok(await restarts(engine) >= 1);
  const log = engine.lines.join("\n");
  assert.match(log, reason);
  assert.doesNotMatch(log, /executor stream broke/);
}

Deno.test("an executor over python.maxMemory is replaced under traffic, failing no request", async () => {
  const engine = await EngineProcess.start({
    config: {
      python: { maxMemory: "100MiB" },
      routes: [{ name: "leak", policies: [{ name: "py-leak", version: "v1" }] }],
    },
  });
  try {
    await expectRecycled(
      engine,
      "leak",
      /recycling the Python executor .*is over python\.maxMemory \(100 MiB\)/,
    );
  } finally {
    assert.equal(await engine.stop(), 0);
  }
});

Deno.test("an executor is replaced after python.maxCallsPerProcess calls, its calls in flight answered", async () => {
  const engine = await EngineProcess.start({
    config: {
      python: { maxCallsPerProcess: 20 },
      routes: [{
        name: "calls",
        // Every call takes 300 ms and four are always in flight: the switch happens under them.
        policies: [
          { name: "py-leak", version: "v1", parameters: { bytesPerCall: 0 } },
          { name: "py-sleep", version: "v1", parameters: { seconds: 0.3 }, timeout: "5s" },
        ],
      }],
    },
  });
  try {
    await expectRecycled(
      engine,
      "calls",
      /recycling the Python executor .*python\.maxCallsPerProcess: 20/,
      traffic(engine, "calls", 4, 0),
    );
  } finally {
    assert.equal(await engine.stop(), 0);
  }
});
