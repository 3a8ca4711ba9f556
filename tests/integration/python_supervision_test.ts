/**
 * Supervision of the Python executor under load: the engine starts it before serving,
 * restarts it in place when it is killed, stops answering, or has every worker stuck in a
 * policy that never returns, and traffic recovers by itself without restarting the engine.
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../support/engine_process.ts";
import { Envoy } from "../support/envoy.ts";
import { waitFor } from "../support/ports.ts";
import { Upstream } from "../support/upstream.ts";

const WORKERS = 2;
const config = {
  python: { timeout: "1s", workers: WORKERS },
  routes: [
    // A policy on the worker threads (add-python-header runs inline, and keeps serving while
    // every worker is stuck).
    { name: "python", policies: [{ name: "py-stamp", version: "v1", parameters: { label: "S" } }] },
    {
      name: "stuck",
      policies: [{ name: "py-sleep", version: "v1", timeout: "200ms", parameters: { seconds: 3600 } }],
    },
    {
      name: "typescript",
      policies: [{
        name: "set-headers",
        version: "v1",
        parameters: { requestHeaders: [{ name: "x-ts", value: "1" }] },
      }],
    },
  ],
};
const routes = [
  { name: "python", prefix: "/python" },
  { name: "stuck", prefix: "/stuck" },
  { name: "typescript", prefix: "/typescript" },
];

interface Sample {
  readonly at: number;
  readonly status: number;
  readonly body: string;
}

/** `workers` clients sending requests back to back to `url` until stopped. */
function load(url: string, workers = 4) {
  const samples: Sample[] = [];
  let running = true;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      const response = await fetch(url);
      samples.push({ at: Date.now(), status: response.status, body: await response.text() });
    }
  });
  return {
    samples,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

function executorPid(engine: EngineProcess, nth: number): number {
  const pids = engine.lines.flatMap((line) => {
    const match = /started the Python executor \(pid (\d+)\)/.exec(line);
    return match ? [Number(match[1])] : [];
  });
  return pids[nth];
}

async function metric(engine: EngineProcess, name: string): Promise<number> {
  const text = await (await fetch(`${engine.adminUrl}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)$`, "m").exec(text)?.[1] ?? NaN);
}

/** Failures allowed while the executor is away: its policy's deny response, nothing else. */
const UNAVAILABLE = { 503: "policy_unavailable" };
const HUNG = { 503: "policy_unavailable", 504: "policy_timeout" };

async function expectRecovery(
  engine: EngineProcess,
  traffic: ReturnType<typeof load>,
  since: number,
  restarts: number,
  allowed: Record<number, string>,
) {
  await waitFor(
    "the executor restart",
    async () => await metric(engine, "tollgate_python_executor_restarts_total") === restarts,
    20_000,
  );
  await waitFor(
    "traffic to recover",
    () => traffic.samples.filter((s) => s.at > since && s.status === 200).length > 20,
    20_000,
  );
  const during = traffic.samples.filter((s) => s.at > since);
  for (const sample of during.filter((s) => s.status !== 200)) {
    assert.ok(sample.status in allowed, `unexpected ${sample.status}: ${sample.body}`);
    assert.equal(JSON.parse(sample.body).error, allowed[sample.status]);
  }
  assert.equal((await fetch(`${engine.adminUrl}/readyz`)).status, 200);
}

Deno.test("the Python executor is supervised and restarted in place under load", async (t) => {
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({ config });
  const envoy = await Envoy.start({ routes, upstreamPort: upstream.port, extproc: engine.extproc });
  const python = load(`${envoy.url}/python`);
  const typescript = load(`${envoy.url}/typescript`, 1);
  try {
    await t.step("the executor was ready before the engine accepted Envoy traffic", () => {
      const ready = engine.lines.findIndex((l) => l.includes("Python executor ready"));
      const listening = engine.lines.findIndex((l) => l.includes("ext_proc listening"));
      assert.ok(ready >= 0 && listening > ready, "executor ready, then ext_proc listening");
    });

    await waitFor("steady traffic", () => python.samples.length > 50);
    assert.ok(python.samples.every((s) => s.status === 200));

    await t.step("SIGKILL: restarted, and traffic recovers without restarting the engine", async () => {
      const pid = executorPid(engine, 0);
      const killedAt = Date.now();
      Deno.kill(pid, "SIGKILL");
      await expectRecovery(engine, python, killedAt, 1, UNAVAILABLE);
      assert.notEqual(executorPid(engine, 1), pid, "a new executor process");
      const recoveredAt = python.samples.find((s) => s.at > killedAt && s.status === 200)!.at;
      assert.ok(recoveredAt - killedAt < 5000, `recovered after ${recoveredAt - killedAt}ms`);
    });

    await t.step("an executor that stops answering health checks is killed and replaced", async () => {
      const pid = executorPid(engine, 1);
      const stoppedAt = Date.now();
      Deno.kill(pid, "SIGSTOP");
      await expectRecovery(engine, python, stoppedAt, 2, HUNG);
      assert.ok(engine.lines.some((l) => l.includes("failed 3 health checks in a row")));
      assert.notEqual(executorPid(engine, 2), pid);
    });

    await t.step("an executor whose every worker is stuck past a deadline is replaced", async () => {
      const pid = executorPid(engine, 2);
      const stuckAt = Date.now();
      // A policy that never returns holds its worker thread: Python cannot interrupt it.
      const stuck = await Promise.all(
        Array.from({ length: WORKERS }, async () => {
          const response = await fetch(`${envoy.url}/stuck`);
          return { status: response.status, error: (await response.json()).error };
        }),
      );
      assert.deepEqual(stuck, Array(WORKERS).fill({ status: 504, error: "policy_timeout" }));
      const overdue = () => metric(engine, "tollgate_python_overdue_workers");
      await waitFor("every worker reported overdue", async () => await overdue() === WORKERS, 10_000);
      await expectRecovery(engine, python, stuckAt, 3, HUNG);
      await waitFor("the new executor's workers to be free", async () => await overdue() === 0, 10_000);
      assert.ok(
        engine.lines.some((l) => l.includes(`all ${WORKERS} workers stuck in calls past their deadline`)),
      );
      assert.notEqual(executorPid(engine, 3), pid);
    });

    await t.step("routes without Python policies were never affected", () => {
      assert.ok(typescript.samples.length > 20);
      assert.ok(typescript.samples.every((s) => s.status === 200));
    });
  } finally {
    await python.stop();
    await typescript.stop();
    await envoy.stop();
    assert.equal(await engine.stop(), 0);
    await upstream.stop();
  }
  await t.step("on shutdown the executor is stopped and its socket removed", async () => {
    assert.ok(engine.lines.some((l) => l.includes("shutting down")));
    await assert.rejects(Deno.stat(engine.layout.pythonSocket), Deno.errors.NotFound);
    const pid = executorPid(engine, 3);
    assert.throws(() => Deno.kill(pid, "SIGCONT"), "the last executor is gone");
  });
});

/** Whether a process still runs (a zombie waiting to be reaped has exited). */
async function running(pid: number): Promise<boolean> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
  return status !== "" && !/^State:\s+Z/m.test(status);
}

Deno.test("an executor whose engine was killed shuts itself down", async () => {
  const engine = await EngineProcess.start({ config });
  const pid = executorPid(engine, 0);
  assert.ok(await running(pid));
  await engine.stop("SIGKILL");
  await waitFor("the orphaned executor to exit", async () => !(await running(pid)), 10_000);
});
