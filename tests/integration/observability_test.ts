/**
 * Metrics, the failure quarantine, the access log and the executor's log lines behind a real
 * Envoy with a real Python executor: every family alerting needs exists at zero from the
 * start, traffic moves the counts per route and outcome and the histograms, an unknown route
 * counts as unmatched, and every metric the shipped dashboard and alert rules query exists.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { EngineProcess } from "../support/engine_process.ts";
import { Envoy } from "../support/envoy.ts";
import { waitFor } from "../support/ports.ts";
import { Upstream } from "../support/upstream.ts";
import { policyRef as policy } from "../support/config_refs.ts";

const config = {
  log: { requests: true },
  quarantine: { failures: 2, window: "1500ms" },
  routes: [
    {
      name: "users",
      policies: [policy("set-headers", { requestHeaders: [{ name: "x-team", value: "users" }] })],
    },
    { name: "guarded", policies: [policy("deny", { phase: "requestHeaders", status: 403 })] },
    { name: "broken", policies: [policy("fail")] },
    {
      name: "python",
      policies: [
        policy("py-stamp", { label: "P" }),
        policy("py-raise", {}, { onFailure: "continue" }),
        policy("trace", { label: "T" }, { executionCondition: 'request.method == "POST"' }),
      ],
    },
  ],
};

/** Every sample of /metrics: `name{labels}` → value. */
async function scrape(engine: EngineProcess): Promise<Map<string, number>> {
  const text = await (await fetch(`${engine.adminUrl}/metrics`)).text();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** The value of the one sample named `name` whose labels include `labels`. */
function sample(
  samples: Map<string, number>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const [key, value] of samples) {
    if (!key.startsWith(`${name}{`) && key !== name) continue;
    if (wanted.every((pair) => key.includes(pair))) return value;
  }
  return undefined;
}

/** The metric names a PromQL expression reads (histogram series by their family's name). */
function metricNames(expression: string): string[] {
  return [...expression.matchAll(/\b((?:tollgate|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]);
}

function dashboardExpressions(
  dashboard: { panels: { targets?: { expr: string }[] }[]; templating: { list: { query?: unknown }[] } },
): string[] {
  return [
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...dashboard.templating.list.flatMap((v) => typeof v.query === "string" ? [v.query] : []),
  ];
}

Deno.test("metrics per route and outcome, the quarantine, access and executor logs, behind a real Envoy", async (t) => {
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({ config });
  const envoy = await Envoy.start({
    routes: ["users", "guarded", "broken", "python", "nowhere"].map((name) => ({ name, prefix: `/${name}` })),
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  const get = async (path: string, init?: RequestInit) => {
    const response = await fetch(`${envoy.url}${path}`, init);
    await response.body?.cancel();
    return response.status;
  };
  try {
    await t.step("every family alerting needs exists at zero before any request", async () => {
      const m = await scrape(engine);
      for (const route of ["users", "guarded", "broken", "python"]) {
        for (const outcome of ["passed", "denied", "failed"]) {
          assert.equal(sample(m, "tollgate_requests_total", { route, outcome }), 0, `${route} ${outcome}`);
        }
        assert.equal(sample(m, "tollgate_request_duration_seconds_count", { route }), 0);
      }
      assert.equal(sample(m, "tollgate_requests_total", { route: "", outcome: "unmatched" }), 0);
      assert.equal(
        sample(m, "tollgate_policy_executions_total", {
          route: "users",
          policy: "set-headers",
          version: "v1.0.0",
          phase: "request",
          outcome: "failed",
        }),
        0,
      );
      assert.equal(
        sample(m, "tollgate_policy_failures_total", { route: "broken", policy: "fail", kind: "error" }),
        0,
      );
      assert.equal(
        sample(m, "tollgate_policy_duration_seconds_count", { route: "broken", phase: "request" }),
        0,
      );
      assert.equal(
        sample(m, "tollgate_python_batch_duration_seconds_count", { route: "python", phase: "request" }),
        0,
      );
      assert.equal(sample(m, "tollgate_policy_quarantined", { route: "broken", policy: "fail" }), 0);
      assert.equal(sample(m, "tollgate_config_generation"), 1);
      assert.ok(sample(m, "tollgate_config_last_reload_timestamp_seconds")! > Date.now() / 1000 - 120);
      assert.equal(sample(m, "tollgate_build_info", { version: "0.1.0", deno: Deno.version.deno }), 1);
      assert.ok(sample(m, "nodejs_heap_size_used_bytes", { worker: "main" })! > 0);
      assert.ok(sample(m, "nodejs_heap_size_used_bytes", { worker: "0" })! > 0);
      assert.ok(sample(m, "process_resident_memory_bytes")! > 0);
    });

    await t.step("traffic counts per route and outcome; an unknown route is unmatched", async () => {
      for (let i = 0; i < 3; i++) assert.equal(await get("/users"), 200);
      assert.equal(await get("/guarded"), 403);
      assert.equal(await get("/broken"), 500);
      assert.equal(await get("/python"), 200);
      assert.equal(await get("/python", { method: "POST", body: "x" }), 200);
      assert.equal(await get("/nowhere"), 200);
      const m = await scrape(engine);
      const requests = (route: string, outcome: string) =>
        sample(m, "tollgate_requests_total", { route, outcome });
      assert.equal(requests("users", "passed"), 3);
      assert.equal(requests("guarded", "denied"), 1);
      assert.equal(requests("broken", "failed"), 1);
      assert.equal(requests("python", "passed"), 2);
      assert.equal(requests("", "unmatched"), 1);
      assert.equal(
        sample(m, "tollgate_requests_total", { route: "nowhere" }),
        undefined,
        "never a label value",
      );
      assert.equal(sample(m, "tollgate_request_duration_seconds_count", { route: "users" }), 3);
      assert.ok(sample(m, "tollgate_request_duration_seconds_sum", { route: "users" })! > 0);
      const executions = (route: string, policy: string, outcome: string) =>
        sample(m, "tollgate_policy_executions_total", { route, policy, phase: "request", outcome });
      assert.equal(executions("users", "set-headers", "modified"), 3);
      assert.equal(executions("guarded", "deny", "denied"), 1);
      assert.equal(executions("broken", "fail", "failed"), 1);
      assert.equal(executions("python", "py-raise", "failed"), 2);
      assert.equal(executions("python", "trace", "skipped"), 1);
      assert.equal(executions("python", "trace", "modified"), 1);
      assert.equal(
        sample(m, "tollgate_policy_failures_total", { route: "python", policy: "py-raise", kind: "error" }),
        2,
      );
      assert.equal(
        sample(m, "tollgate_policy_duration_seconds_count", { route: "users", policy: "set-headers" }),
        3,
      );
      // One observation per round trip to the executor: py-stamp and py-raise go together.
      assert.equal(
        sample(m, "tollgate_python_batch_duration_seconds_count", { route: "python", phase: "request" }),
        2,
      );
      assert.equal(
        sample(m, "tollgate_python_batch_duration_seconds_count", { route: "python", phase: "response" }),
        2,
      );
    });

    await t.step("an access-log line per request with route, outcome, status and duration", () => {
      const access = engine.records().filter((r) => r.logger === "tollgate.access");
      assert.equal(access.length, 8);
      const denied = access.find((r) => r.route === "guarded")!;
      assert.equal(denied.outcome, "denied");
      assert.equal(denied.status, 403);
      assert.equal(typeof denied.durationMs, "number");
      assert.equal(typeof denied.requestId, "string");
      const unmatched = access.find((r) => r.route === "nowhere")!;
      assert.equal(unmatched.outcome, "unmatched");
      assert.match(
        String(unmatched.requestId),
        /^[0-9a-f-]{36}$/,
        "Envoy's x-request-id, though no chain ran",
      );
      assert.equal(
        access.find((r) => r.route === "python")?.status,
        200,
        "the upstream's status, seen in the response phase",
      );
    });

    await t.step("the executor's failure line names the policy and the error", () => {
      const line = engine.records().find((r) =>
        r.logger === "tollgate.python.executor" && r.policy === "py-raise:v1"
      );
      assert.ok(line, "relayed");
      assert.match(String(line.message), /^policy py-raise:v1 failed in the request phase: .+/);
      assert.equal(typeof line.requestId, "string");
    });

    await t.step(
      "a policy failing more than quarantine.failures times within the window is quarantined",
      async () => {
        const quarantined = async () => (await (await fetch(`${engine.adminUrl}/readyz`)).json()).quarantined;
        // /broken failed once above: one more stays at the threshold (2), the next exceeds it.
        assert.equal(await get("/broken"), 500);
        assert.deepEqual(await quarantined(), []);
        assert.equal(await get("/broken"), 500);
        const readyz = await fetch(`${engine.adminUrl}/readyz`);
        assert.equal(readyz.status, 200, "reported, not unready (affectsReadiness: false)");
        const body = await readyz.json();
        assert.equal(body.ready, true);
        assert.deepEqual(body.quarantined.map((q: Record<string, string>) => [q.route, q.policy, q.cause]), [
          ["broken", "fail:v1", "failures"],
        ]);
        assert.equal(
          sample(await scrape(engine), "tollgate_policy_quarantined", { route: "broken", policy: "fail" }),
          1,
        );
        const entered = engine.records().filter((r) => String(r.message).includes("entered quarantine"));
        assert.equal(entered.length, 1);
        assert.equal(entered[0].route, "broken");

        // A whole window without exceeding lets it out: one line, the gauge back at 0.
        await waitFor("the quarantine to end", async () => (await quarantined()).length === 0, 10_000);
        assert.equal(
          sample(await scrape(engine), "tollgate_policy_quarantined", { route: "broken", policy: "fail" }),
          0,
        );
        assert.equal(engine.records().filter((r) => String(r.message).includes("left quarantine")).length, 1);
      },
    );

    await t.step("with affectsReadiness, a quarantined policy makes /readyz answer 503", async () => {
      await engine.writeConfig({
        ...config,
        quarantine: { failures: 1, window: "5s", affectsReadiness: true },
      });
      await waitFor("the reload", () => engine.lines.some((l) => l.includes("config reloaded")));
      for (let i = 0; i < 2; i++) assert.equal(await get("/broken"), 500);
      const readyz = await fetch(`${engine.adminUrl}/readyz`);
      const body = await readyz.json();
      assert.equal(readyz.status, 503);
      assert.match(body.reasons.join("\n"), /policy fail:v1 of route broken is quarantined/);
    });

    await t.step("a reload keeps the counts, adds new routes' series and removes dropped ones", async () => {
      const { routes } = config;
      await engine.writeConfig({
        ...config,
        routes: [...routes.filter((r) => r.name !== "guarded"), {
          name: "added",
          policies: [policy("fail")],
        }],
      });
      await waitFor(
        "the second reload",
        () => engine.lines.filter((l) => l.includes("config reloaded")).length === 2,
      );
      const m = await scrape(engine);
      assert.equal(sample(m, "tollgate_requests_total", { route: "users", outcome: "passed" }), 3);
      assert.equal(sample(m, "tollgate_requests_total", { route: "added", outcome: "failed" }), 0);
      assert.equal(sample(m, "tollgate_requests_total", { route: "guarded" }), undefined);
      assert.equal(sample(m, "tollgate_policy_executions_total", { route: "guarded" }), undefined);
      assert.equal(sample(m, "tollgate_config_generation"), 3);
    });

    await t.step("every metric the dashboard and the alert rules query exists in /metrics", async () => {
      const dashboard = JSON.parse(await Deno.readTextFile("docs/monitoring/grafana-dashboard.json"));
      const rules = parse(await Deno.readTextFile("docs/monitoring/prometheus-rules.yaml")) as {
        groups: { rules: { alert: string; expr: string }[] }[];
      };
      const expressions = [
        ...dashboardExpressions(dashboard),
        ...rules.groups.flatMap((g) => g.rules.map((r) => r.expr)),
      ];
      const names = new Set(expressions.flatMap(metricNames));
      assert.ok(names.size > 15, `${names.size} metric names found`);
      const m = await scrape(engine);
      const present = new Set([...m.keys()].map((key) => key.split("{")[0]));
      const missing = [...names].filter((name) => !present.has(name));
      assert.deepEqual(missing, []);
    });
  } finally {
    await envoy.stop();
    await engine.stop();
    await upstream.stop();
  }
});
