/**
 * The decision trace through a real Envoy started from docs/examples/envoy.yaml: Tollgate
 * sends it as dynamic metadata `tollgate.trace`, the example's access-log format prints it
 * with the request id; a route with `serverTiming: true` also answers with a Server-Timing
 * header, and a route without it does not.
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../support/engine_process.ts";
import { Envoy } from "../support/envoy.ts";
import { waitFor } from "../support/ports.ts";
import { Upstream } from "../support/upstream.ts";
import { policyRef as policy } from "../support/config_refs.ts";

const stamp = policy("set-headers", { requestHeaders: [{ name: "x-stamp", value: "1" }] });

const config = {
  routes: [
    {
      name: "passed",
      serverTiming: true,
      policies: [
        policy("request-size-limit", { maxBytes: 1000000 }),
        stamp,
        policy("trace", { label: "posts-only" }, { executionCondition: 'request.method == "POST"' }),
        policy("cors", { allowedOrigins: ["https://a.example"] }, { enabled: false }),
      ],
    },
    {
      name: "denied",
      serverTiming: true,
      policies: [policy("respond", { statusCode: 403, body: "no" }), stamp],
    },
    { name: "failed", policies: [policy("fail", {}, { onFailure: "continue" }), stamp] },
    { name: "untimed", policies: [stamp] },
    {
      name: "python",
      policies: [policy("py-stamp", { label: "p" }), policy("py-raise", {}, { onFailure: "continue" })],
    },
  ],
};

const routes = ["passed", "denied", "failed", "untimed", "python"].map((name) => ({
  name,
  prefix: `/${name}`,
}));

/** The access-log line of the request to `path`, once Envoy has flushed it. */
async function logLine(envoy: Envoy, path: string): Promise<string> {
  let line: string | undefined;
  await waitFor(`the access-log line of ${path}`, async () => {
    line = (await envoy.accessLog()).find((l) => l.includes(`"GET ${path}"`));
    return line !== undefined;
  });
  return line!;
}

const traceOf = (line: string) => / trace=(\S+) /.exec(line)?.[1];

Deno.test({
  name:
    "decision trace: in Envoy's access log for passed, denied, skipped and failed policies; Server-Timing",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const upstream = Upstream.start();
    const engine = await EngineProcess.start({ config });
    const envoy = await Envoy.start({ routes, upstreamPort: upstream.port, extproc: engine.extproc });
    try {
      await t.step(
        "passed, modified and skipped (condition false, disabled), with Server-Timing",
        async () => {
          const response = await fetch(`${envoy.url}/passed/a`);
          await response.body?.cancel();
          assert.equal(response.status, 200);
          assert.match(
            response.headers.get("server-timing") ?? "",
            /^request-size-limit;dur=[\d.]+;desc="request passed", set-headers;dur=[\d.]+;desc="request modified"$/,
            "the policies that ran, with their durations",
          );
          const line = await logLine(envoy, "/passed/a");
          assert.match(line, / request_id=[0-9a-f-]{36} /, "the example prints the request id");
          assert.match(
            traceOf(line) ?? "",
            /^cors:v1=skipped\(disabled\);request-size-limit:v1=passed:[\d.]+ms;set-headers:v1=modified:[\d.]+ms;trace:v1=skipped\(condition_false\);trace:v1@response=skipped\(condition_false\)$/,
            line,
          );
        },
      );

      await t.step("denied, the rest short-circuited; Server-Timing on the immediate response", async () => {
        const response = await fetch(`${envoy.url}/denied/a`);
        assert.equal(await response.text(), "no");
        assert.equal(response.status, 403);
        assert.match(
          response.headers.get("server-timing") ?? "",
          /^respond;dur=[\d.]+;desc="request denied"$/,
        );
        const line = await logLine(envoy, "/denied/a");
        assert.match(
          traceOf(line) ?? "",
          /^respond:v1=denied\(403\):[\d.]+ms;set-headers:v1=skipped\(short_circuit\)$/,
          line,
        );
        assert.equal(upstream.requestsTo("/denied").length, 0);
      });

      await t.step(
        "failed under continue, then the next policy; no Server-Timing when not enabled",
        async () => {
          const response = await fetch(`${envoy.url}/failed/a`);
          await response.body?.cancel();
          assert.equal(response.status, 200);
          assert.equal(response.headers.get("server-timing"), null, "serverTiming is off by default");
          const line = await logLine(envoy, "/failed/a");
          assert.match(
            traceOf(line) ?? "",
            /^fail:v1=failed\(error\):[\d.]+ms;set-headers:v1=modified:[\d.]+ms$/,
            line,
          );
          const untimed = await fetch(`${envoy.url}/untimed/a`);
          await untimed.body?.cancel();
          assert.equal(untimed.headers.get("server-timing"), null);
        },
      );

      await t.step("Python policies: one entry each, from one batch", async () => {
        const response = await fetch(`${envoy.url}/python/a`);
        await response.body?.cancel();
        assert.equal(response.status, 200);
        const line = await logLine(envoy, "/python/a");
        assert.match(
          traceOf(line) ?? "",
          /^py-stamp:v1=modified:[\d.]+ms;py-raise:v1=failed\(error\):[\d.]+ms;py-stamp:v1@response=modified:[\d.]+ms$/,
          line,
        );
      });
    } finally {
      await envoy.stop();
      await engine.stop();
      await upstream.stop();
    }
  },
});
