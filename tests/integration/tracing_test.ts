/**
 * OpenTelemetry tracing end to end: requests with a W3C `traceparent` through a real Envoy
 * to the engine (a child process under the production permission flags) with TypeScript and
 * Python policies; the spans are read back from a real Jaeger's query API.
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../support/engine_process.ts";
import { Envoy } from "../support/envoy.ts";
import { Jaeger, type JaegerSpan, parentOf, tagsOf } from "../support/jaeger.ts";
import { freePort, waitFor } from "../support/ports.ts";
import { Upstream } from "../support/upstream.ts";
import { policyRef as policy } from "../support/config_refs.ts";

const routesConfig = [
  {
    name: "traced",
    policies: [
      policy("set-headers", { requestHeaders: [{ name: "x-team", value: "tracing" }] }),
      policy("fail", {}, { onFailure: "continue" }),
      policy("trace", { label: "never" }, { executionCondition: 'request.method == "DELETE"' }),
      policy("py-stamp", { label: "A" }),
      policy("py-stamp", { label: "B" }),
    ],
  },
  { name: "denied", policies: [policy("py-deny")] },
  {
    name: "bodies",
    policies: [policy("replace-body", { add: { added: true } }), policy("wrap-response-body")],
  },
];

const envoyRoutes = [
  { name: "traced", prefix: "/traced" },
  { name: "denied", prefix: "/denied" },
  { name: "bodies", prefix: "/bodies" },
  // A route name the config does not know: it passes through untouched.
  { name: "unconfigured", prefix: "/unconfigured" },
];

/** A random W3C trace id (32 hex digits) or span id (16). */
const hexId = (bytes: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");

async function get(url: string, headers: Record<string, string>, body?: string): Promise<number> {
  const response = await fetch(url, { headers, method: body === undefined ? "GET" : "POST", body });
  await response.body?.cancel();
  return response.status;
}

/** The one span named `name` (whose parent is `parent`, when given). */
function only(spans: readonly JaegerSpan[], name: string, parent?: JaegerSpan): JaegerSpan {
  const found = spans.filter((s) => s.operationName === name && (!parent || parentOf(s) === parent.spanID));
  assert.equal(
    found.length,
    1,
    `one ${name} span, got ${found.length} in ${spans.map((s) => s.operationName)}`,
  );
  return found[0];
}

const children = (spans: readonly JaegerSpan[], parent: JaegerSpan) =>
  spans.filter((s) => parentOf(s) === parent.spanID);

Deno.test("spans of requests through Envoy arrive in Jaeger, children of the request's traceparent", async (t) => {
  const jaeger = await Jaeger.start();
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({
    config: {
      tracing: { otlp: { endpoint: jaeger.otlpEndpoint }, serviceName: "tollgate-test" },
      routes: routesConfig,
    },
    tracingHost: jaeger.otlpHost,
  });
  const envoy = await Envoy.start({
    routes: envoyRoutes,
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  try {
    const traceId = hexId(16);
    const parentId = hexId(8);
    let spans: JaegerSpan[] = [];

    await t.step("a sampled request is traced: the exchange, its phases, its policies", async () => {
      const status = await get(`${envoy.url}/traced/x`, {
        traceparent: `00-${traceId}-${parentId}-01`,
        tracestate: "vendor=abc",
      });
      assert.equal(status, 200);
      // The exchange span ends last, with the stream.
      spans = await waitForOperations(jaeger, traceId, [
        "tollgate traced",
        "request_headers",
        "response_headers",
      ]);
      const exchange = only(spans, "tollgate traced");
      assert.equal(parentOf(exchange), parentId, "the exchange continues the request's traceparent");
      assert.deepEqual(
        pick(tagsOf(exchange), [
          "span.kind",
          "tollgate.route",
          "tollgate.outcome",
          "http.response.status_code",
        ]),
        {
          "span.kind": "server",
          "tollgate.route": "traced",
          "tollgate.outcome": "passed",
          "http.response.status_code": 200,
        },
      );

      const request = only(spans, "request_headers", exchange);
      const response = only(spans, "response_headers", exchange);
      assert.deepEqual(pick(tagsOf(request), ["tollgate.route", "tollgate.phase"]), {
        "tollgate.route": "traced",
        "tollgate.phase": "request",
      });
      assert.equal(tagsOf(response)["tollgate.phase"], "response");

      const setHeaders = only(spans, "policy set-headers", request);
      assert.deepEqual(
        pick(tagsOf(setHeaders), [
          "tollgate.route",
          "tollgate.policy.name",
          "tollgate.policy.version",
          "tollgate.outcome",
        ]),
        {
          "tollgate.route": "traced",
          "tollgate.policy.name": "set-headers",
          "tollgate.policy.version": "v1.0.0",
          "tollgate.outcome": "modified",
        },
      );
      const failed = tagsOf(only(spans, "policy fail", request));
      assert.equal(failed["tollgate.outcome"], "failed");
      assert.equal(failed["tollgate.reason"], "error");
      assert.equal(failed["otel.status_code"], "ERROR");
      assert.match(String(failed["otel.status_description"]), /deliberate request failure/);
      const skipped = tagsOf(only(spans, "policy trace", request));
      assert.deepEqual(pick(skipped, ["tollgate.outcome", "tollgate.reason"]), {
        "tollgate.outcome": "skipped",
        "tollgate.reason": "condition_false",
      });

      // The Python hop: one span per batch, the Python policies below it.
      const batch = only(spans, "python batch", request);
      assert.equal(tagsOf(batch)["span.kind"], "client");
      const python = children(spans, batch);
      assert.deepEqual(python.map((s) => s.operationName), ["policy py-stamp", "policy py-stamp"]);
      for (const span of python) assert.equal(tagsOf(span)["tollgate.outcome"], "modified");
      const responseBatch = only(spans, "python batch", response);
      assert.equal(children(spans, responseBatch).length, 2);
      // Children lie within their parents.
      for (const child of [...children(spans, request), ...python]) {
        const parent = spans.find((s) => s.spanID === parentOf(child))!;
        assert.ok(child.startTime >= parent.startTime, `${child.operationName} starts within its parent`);
      }
    });

    await t.step("the upstream request carries the exchange span as its parent, and the tracestate", () => {
      const exchange = only(spans, "tollgate traced");
      const [received] = upstream.requestsTo("/traced");
      assert.equal(received.headers.get("traceparent"), `00-${traceId}-${exchange.spanID}-01`);
      assert.equal(received.headers.get("tracestate"), "vendor=abc");
    });

    await t.step("a denied request's exchange says so", async () => {
      const denied = hexId(16);
      assert.equal(await get(`${envoy.url}/denied`, { traceparent: `00-${denied}-${hexId(8)}-01` }), 429);
      const deniedSpans = await waitForOperations(jaeger, denied, ["tollgate denied", "request_headers"]);
      const exchange = tagsOf(only(deniedSpans, "tollgate denied"));
      assert.deepEqual(pick(exchange, ["tollgate.outcome", "http.response.status_code"]), {
        "tollgate.outcome": "denied",
        "http.response.status_code": 429,
      });
      assert.equal(tagsOf(only(deniedSpans, "policy py-deny"))["tollgate.outcome"], "denied");
    });

    await t.step(
      "buffered bodies get their own phase spans, with the policies that ran on them",
      async () => {
        const bodies = hexId(16);
        const traceparent = `00-${bodies}-${hexId(8)}-01`;
        assert.equal(
          await get(`${envoy.url}/bodies`, { traceparent, "content-type": "application/json" }, "{}"),
          200,
        );
        const phases = ["request_headers", "request_body", "response_headers", "response_body"];
        const bodySpans = await waitForOperations(jaeger, bodies, ["tollgate bodies", ...phases]);
        const exchange = only(bodySpans, "tollgate bodies");
        for (const phase of phases) only(bodySpans, phase, exchange);
        only(bodySpans, "policy replace-body", only(bodySpans, "request_body"));
        only(bodySpans, "policy wrap-response-body", only(bodySpans, "response_body"));
        assert.equal(
          children(bodySpans, only(bodySpans, "request_headers")).length,
          0,
          "no policy ran on the headers",
        );
      },
    );

    await t.step("a route without a chain is traced as unmatched, and still propagates", async () => {
      const unmatched = hexId(16);
      const status = await get(`${envoy.url}/unconfigured`, {
        traceparent: `00-${unmatched}-${hexId(8)}-01`,
      });
      assert.equal(status, 200);
      const unmatchedSpans = await waitForOperations(jaeger, unmatched, ["tollgate", "request_headers"]);
      const exchange = only(unmatchedSpans, "tollgate");
      assert.deepEqual(pick(tagsOf(exchange), ["tollgate.route", "tollgate.outcome"]), {
        "tollgate.route": "unconfigured",
        "tollgate.outcome": "unmatched",
      });
      const [received] = upstream.requestsTo("/unconfigured");
      assert.equal(received.headers.get("traceparent"), `00-${unmatched}-${exchange.spanID}-01`);
    });

    await t.step("an unsampled traceparent is left as it is and records nothing", async () => {
      const unsampled = hexId(16);
      const traceparent = `00-${unsampled}-${hexId(8)}-00`;
      assert.equal(await get(`${envoy.url}/traced/unsampled`, { traceparent }), 200);
      const [received] = upstream.requestsTo("/traced/unsampled");
      assert.equal(received.headers.get("traceparent"), traceparent);
      // Stopping flushes what the engine buffered: nothing of this trace may arrive.
      assert.equal(await engine.stop(), 0);
      assert.deepEqual(await jaeger.spans(unsampled), []);
      assert.ok(
        (await jaeger.services()).includes("tollgate-test"),
        "the service name is the configured one",
      );
    });
  } finally {
    await envoy.stop();
    await engine.stop();
    await upstream.stop();
    await jaeger.stop();
  }
});

Deno.test("without `tracing` no exporter starts, even with OTEL_EXPORTER_OTLP_* set", async () => {
  const jaeger = await Jaeger.start();
  const upstream = Upstream.start();
  const engine = await EngineProcess.start({
    config: { routes: routesConfig },
    env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${jaeger.otlpEndpoint}/v1/traces` },
    tracingHost: jaeger.otlpHost,
  });
  const envoy = await Envoy.start({
    routes: envoyRoutes,
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  try {
    const traceparent = `00-${hexId(16)}-${hexId(8)}-01`;
    assert.equal(await get(`${envoy.url}/traced/off`, { traceparent }), 200);
    assert.equal(
      upstream.requestsTo("/traced/off")[0].headers.get("traceparent"),
      traceparent,
      "left as it is",
    );
    assert.equal(await engine.stop(), 0);
    assert.deepEqual(await jaeger.services(), [], "no span reached the collector");
  } finally {
    await envoy.stop();
    await engine.stop();
    await upstream.stop();
    await jaeger.stop();
  }
});

Deno.test("a collector that is down never fails a request: the failed exports are logged", async () => {
  const upstream = Upstream.start();
  // A permitted port nothing listens on.
  const down = `127.0.0.1:${freePort()}`;
  const engine = await EngineProcess.start({
    config: { tracing: { otlp: { endpoint: `http://${down}`, timeout: "1s" } }, routes: routesConfig },
    tracingHost: down,
  });
  const envoy = await Envoy.start({
    routes: envoyRoutes,
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  try {
    for (let i = 0; i < 3; i++) {
      assert.equal(
        await get(`${envoy.url}/traced/${i}`, { traceparent: `00-${hexId(16)}-${hexId(8)}-01` }),
        200,
      );
    }
    await waitFor(
      "the failed export to be logged",
      () =>
        engine.records().some((r) =>
          r.logger === "tollgate.tracing" && r.level === "WARN" && String(r.message).includes(down)
        ),
      30_000,
    );
  } finally {
    await envoy.stop();
    await engine.stop();
    await upstream.stop();
  }
});

Deno.test("a collector outside the engine's permissions is refused at startup, naming the setting", async () => {
  const engine = await EngineProcess.start({
    config: { tracing: { otlp: { endpoint: "http://127.0.0.1:1/v1/traces" } } },
    noWait: true,
  });
  assert.equal(await engine.exited(), 2, engine.lines.join("\n"));
  assert.match(
    engine.lines.join("\n"),
    /tracing\.otlp\.endpoint: host 127\.0\.0\.1:1 is outside the permissions this engine runs with/,
  );
  await Deno.remove(engine.dir, { recursive: true });
});

/** Waits until the trace holds spans with each of `names`, and returns all its spans. */
async function waitForOperations(
  jaeger: Jaeger,
  traceId: string,
  names: readonly string[],
): Promise<JaegerSpan[]> {
  let spans: JaegerSpan[] = [];
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    spans = await jaeger.spans(traceId);
    if (names.every((name) => spans.some((s) => s.operationName === name))) return spans;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`trace ${traceId} lacks some of ${names}; got ${spans.map((s) => s.operationName)}`);
}

function pick(tags: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((key) => [key, tags[key]]));
}
