/**
 * `python.processes: 2`: two supervised executors on sockets derived from python.socket,
 * calls going to the one with fewer in flight, a policy declared non-blocking running inline
 * on the executor's event loop, and both stopped with their sockets on shutdown. With two
 * data-plane workers, each reaches both processes and stops choosing one that went down.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { EngineProcess } from "../support/engine_process.ts";
import { ExtProcClient, mutationLines, requestHeaders } from "../support/extproc_client.ts";
import { Envoy } from "../support/envoy.ts";
import { waitFor } from "../support/ports.ts";
import { Upstream } from "../support/upstream.ts";

const config = {
  python: { processes: 2, workers: 1, timeout: "5s" },
  routes: [
    { name: "pid", policies: [{ name: "py-pid", version: "v1" }] },
    { name: "sleep", policies: [{ name: "py-sleep", version: "v1", parameters: { seconds: 1.5 } }] },
  ],
};
const routes = config.routes.map((r) => ({ name: r.name, prefix: `/${r.name}` }));

function executorPids(engine: EngineProcess): number[] {
  return engine.lines.flatMap((line) => {
    const match = /started the Python executor \(pid (\d+)\)/.exec(line);
    return match ? [Number(match[1])] : [];
  });
}

async function inFlight(engine: EngineProcess): Promise<number> {
  const text = await (await fetch(`${engine.adminUrl}/metrics`)).text();
  return Number(/^tollgate_python_calls_in_flight (\d+)$/m.exec(text)?.[1] ?? NaN);
}

Deno.test("python.processes: 2 supervised executors, calls to the least busy", async (t) => {
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({ config });
  const envoy = await Envoy.start({ routes, upstreamPort: upstream.port, extproc: engine.extproc });
  const configured = engine.layout.pythonSocket;
  const sockets = [0, 1].map((i) => join(dirname(configured), `python-${i}.sock`));
  const seen = async () => {
    const response = await fetch(`${envoy.url}/pid`);
    assert.equal(response.status, 200);
    await response.body?.cancel();
    const received = upstream.requestsTo("/pid").at(-1)!;
    return {
      pid: Number(received.headers.get("x-executor-pid")),
      thread: received.headers.get("x-executor-thread"),
    };
  };
  try {
    await t.step("two executors, each on a socket derived from python.socket", async () => {
      assert.equal(executorPids(engine).length, 2);
      for (const socket of sockets) assert.ok((await Deno.lstat(socket)).isSocket, socket);
      await assert.rejects(Deno.lstat(configured), Deno.errors.NotFound);
    });

    await t.step("a call goes to the process with fewer calls in flight", async () => {
      const [first, second] = executorPids(engine);
      const idle = await seen();
      assert.equal(idle.pid, first, "with none in flight, the first process");
      const slow = fetch(`${envoy.url}/sleep`);
      await waitFor("the slow call in flight", async () => await inFlight(engine) === 1);
      const busy = await seen();
      assert.equal(busy.pid, second, "the first process is busy: the second answers");
      const done = await slow;
      assert.equal(done.status, 200);
      await done.body?.cancel();
    });

    await t.step("a policy declared python.blocking: false runs on the event loop's thread", async () => {
      assert.equal((await seen()).thread, "MainThread");
    });
  } finally {
    await envoy.stop();
    assert.equal(await engine.stop(), 0);
    await upstream.stop();
  }
  await t.step("on shutdown both executors stop and their sockets are removed", async () => {
    for (const socket of sockets) await assert.rejects(Deno.lstat(socket), Deno.errors.NotFound);
    for (const pid of executorPids(engine)) assert.throws(() => Deno.kill(pid, "SIGCONT"));
  });
});

/** The executor pid that ran py-pid for a request through `client`'s worker. */
async function pidVia(client: ExtProcClient): Promise<number> {
  const stream = client.open();
  const response = await stream.exchange(requestHeaders("pid", "/pid"));
  await stream.finish();
  const line = mutationLines(response).find((l) => l.startsWith("x-executor-pid="));
  assert.ok(line, `no executor pid in ${JSON.stringify(response.response.value)}`);
  return Number(line.split("=")[1]);
}

Deno.test("dataPlane.workers: 2 × python.processes: 2: each worker reaches both executors, and skips one that is down", async (t) => {
  const engine = await EngineProcess.start({ config: { ...config, dataPlane: { workers: 2 } } });
  const { extprocSocket } = engine.layout;
  const sockets = [0, 1].map((i) => extprocSocket!.replace(/\.sock$/, `-${i}.sock`));
  const clients = sockets.map((socket) => new ExtProcClient(`unix:${socket}`));
  try {
    const [first, second] = executorPids(engine);
    await t.step(
      "every worker calls the second process while its call to the first is in flight",
      async () => {
        for (const [i, client] of clients.entries()) {
          assert.equal(await pidVia(client), first, `worker ${i}, nothing in flight`);
          const stream = client.open();
          const slow = stream.exchange(requestHeaders("sleep", "/sleep"));
          await waitFor("the slow call in flight", async () => await inFlight(engine) === 1);
          assert.equal(await pidVia(client), second, `worker ${i}, the first process busy`);
          assert.equal((await slow).response.case, "requestHeaders");
          await stream.finish();
        }
      },
    );

    await t.step("while the first process restarts, every worker's calls go to the second", async () => {
      Deno.kill(first, "SIGKILL");
      await waitFor(
        "the supervisor to see it exit",
        () => engine.lines.some((l) => l.includes("executor exited")),
      );
      for (const [i, client] of clients.entries()) assert.equal(await pidVia(client), second, `worker ${i}`);
      await waitFor("the restarted first process", () => executorPids(engine).length === 3);
    });
  } finally {
    for (const client of clients) client.close();
    assert.equal(await engine.stop(), 0);
  }
});
