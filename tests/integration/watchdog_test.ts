/**
 * The data plane's watchdog: a TypeScript policy that never yields holds only its worker,
 * which is terminated and replaced; the policy is named, counted and, when it repeats,
 * quarantined. SIGTERM is honoured while it spins (the control plane never runs policies).
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../support/engine_process.ts";
import { Envoy } from "../support/envoy.ts";
import { ExtProcClient, requestHeaders } from "../support/extproc_client.ts";
import { waitFor } from "../support/ports.ts";
import { Upstream } from "../support/upstream.ts";

const ROUTES = [
  { name: "spin", policies: [{ name: "spin-forever", version: "v1" }] },
  { name: "fine", policies: [{ name: "echo", version: "v1" }] },
];

const count = (lines: readonly string[], text: string) => lines.filter((l) => l.includes(text)).length;

async function metric(engine: EngineProcess, line: string): Promise<string | undefined> {
  const text = await (await fetch(`http://${engine.layout.adminAddress}/metrics`)).text();
  return text.split("\n").find((l) => l.startsWith(line));
}

/** Sends one request on a new connection and returns the kind of answer. */
async function ask(socket: string, route: string): Promise<string | undefined> {
  const client = new ExtProcClient(`unix:${socket}`);
  try {
    const stream = client.open();
    const response = await stream.exchange(requestHeaders(route, "/x"));
    return response.response.case === "immediateResponse"
      ? `immediate ${response.response.value.status?.code}`
      : response.response.case;
  } finally {
    client.close();
  }
}

Deno.test("a policy spinning forever: its worker is replaced, the policy named, counted, then quarantined", async () => {
  const engine = await EngineProcess.start({ config: { routes: ROUTES } });
  const socket = engine.layout.extprocSocket!;
  try {
    assert.equal(await ask(socket, "fine"), "requestHeaders");
    for (const strike of [1, 2]) {
      // The spinning request never gets an answer: its worker is terminated under it.
      await assert.rejects(ask(socket, "spin"));
      await waitFor("the replacement", () => count(engine.lines, "data-plane worker 0 replaced") === strike);
      assert.equal(count(engine.lines, "was stuck"), strike);
      assert.ok(engine.lines.some((l) => l.includes("was stuck") && l.includes("spin-forever:v1")));
      // Served again after the replacement.
      assert.equal(await ask(socket, "fine"), "requestHeaders");
    }
    assert.equal(
      await metric(engine, 'tollgate_dataplane_worker_replacements_total{policy="spin-forever:v1"}'),
      'tollgate_dataplane_worker_replacements_total{policy="spin-forever:v1"} 2',
    );
    assert.ok(engine.lines.some((l) => l.includes("spin-forever:v1") && l.includes("quarantined")));
    assert.match(
      (await metric(engine, 'tollgate_policy_quarantines_total{policy="spin-forever:v1"}')) ?? "",
      / 1$/,
    );
    // Reported with the failure quarantine: in /readyz detail (still ready) and the gauge of its route.
    const readyz = await (await fetch(`${engine.adminUrl}/readyz`)).json();
    assert.equal(readyz.ready, true);
    assert.deepEqual(readyz.quarantined.map((q: Record<string, string>) => [q.policy, q.cause]), [
      ["spin-forever:v1", "watchdog"],
    ]);
    assert.match(readyz.quarantined[0].reason, /held a data-plane worker past the watchdog/);
    assert.equal(
      await metric(engine, 'tollgate_policy_quarantined{route="spin",policy="spin-forever"}'),
      'tollgate_policy_quarantined{route="spin",policy="spin-forever"} 1',
    );
    // Quarantined: it fails fast under its rule (deny) instead of running.
    assert.equal(await ask(socket, "spin"), "immediate 503");
    assert.equal(count(engine.lines, "was stuck"), 2);
    assert.equal(await ask(socket, "fine"), "requestHeaders");
  } finally {
    assert.equal(await engine.stop(), 0);
  }
});

Deno.test("SIGTERM while a policy spins: the engine stops within the grace period and exits 0", async () => {
  const engine = await EngineProcess.start({
    config: { routes: ROUTES, dataPlane: { watchdog: "60s" }, shutdown: { gracePeriod: "1s" } },
  });
  const socket = engine.layout.extprocSocket!;
  const spinning = ask(socket, "spin").catch(() => "broken");
  try {
    // The control plane still answers, and sees the worker stuck.
    await waitFor("the worker to be stuck", async () => {
      const response = await fetch(`http://${engine.layout.adminAddress}/readyz`);
      return response.status === 503 && (await response.text()).includes("not answering");
    });
  } finally {
    assert.equal(await engine.stop(), 0);
  }
  assert.equal(await spinning, "broken");
  assert.ok(engine.lines.some((l) => l.includes("stopped")));
});

Deno.test("two workers behind a real Envoy: a prober on another route is served while one is replaced", async () => {
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({ config: { routes: ROUTES, dataPlane: { workers: 2 } } });
  const envoy = await Envoy.start({
    routes: [{ name: "spin", prefix: "/spin" }, { name: "fine", prefix: "/fine" }],
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  try {
    assert.deepEqual(engine.extproc, {
      sockets: [0, 1].map((i) => engine.layout.extprocSocket!.replace(/\.sock$/, `-${i}.sock`)),
    });
    // Every answer to the prober, with when it was asked.
    const answers: { at: number; status: number }[] = [];
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const at = Date.now();
        const response = await fetch(`${envoy.url}/fine`);
        await response.body?.cancel();
        answers.push({ at, status: response.status });
      }
    })();
    await waitFor("the prober to be served", () => answers.some((a) => a.status === 200));
    const spun = fetch(`${envoy.url}/spin`).then(async (r) => (await r.body?.cancel(), r.status));
    await waitFor("the replacement", () => count(engine.lines, "replaced") > 0);
    const replacedAt = Date.now();
    await waitFor("a while of traffic after it", () => answers.filter((a) => a.at > replacedAt).length > 50);
    probing = false;
    await prober;
    // The spinning request itself fails closed, never reaching upstream: a 504 when Envoy's
    // message_timeout ends it, a 500 when its keepalive closes the stuck worker's connection first.
    assert.ok([500, 504].includes(await spun));
    assert.equal(upstream.requestsTo("/spin").length, 0);
    const failedAfter = answers.filter((a) => a.at > replacedAt && a.status !== 200);
    assert.deepEqual(failedAfter, [], "no failure after the replacement");
    assert.ok(engine.lines.some((l) => l.includes("was stuck") && l.includes("spin-forever:v1")));
  } finally {
    await envoy.stop();
    assert.equal(await engine.stop(), 0);
    await upstream.stop();
  }
});
