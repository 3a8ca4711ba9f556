import assert from "node:assert/strict";
import client, { AggregatorRegistry } from "prom-client";
import { CounterFamily, HistogramFamily } from "../../src/observe/cells.ts";

Deno.test("cells report in prom-client's shape: text format, and summed across registries", async () => {
  const registries = [new client.Registry(), new client.Registry()];
  const families = registries.map((registry) => ({
    counter: new CounterFamily("t_requests_total", "requests", ["route", "outcome"], registry),
    histogram: new HistogramFamily("t_duration_seconds", "time", ["route"], [0.1, 1], registry),
  }));
  families.forEach(({ counter, histogram }, i) => {
    counter.cell({ route: "a", outcome: "passed" }).value += i + 1;
    counter.cell({ route: "b", outcome: "passed" });
    histogram.cell({ route: "a" }).observe(0.05);
    histogram.cell({ route: "a" }).observe(0.5 + i);
  });
  const text = await registries[0].metrics();
  assert.match(text, /^t_requests_total\{route="a",outcome="passed"\} 1$/m);
  assert.match(text, /^t_requests_total\{route="b",outcome="passed"\} 0$/m, "created at zero");
  assert.match(text, /^t_duration_seconds_bucket\{route="a",le="0.1"\} 1$/m);
  assert.match(text, /^t_duration_seconds_bucket\{route="a",le="1"\} 2$/m, "cumulative");
  assert.match(text, /^t_duration_seconds_bucket\{route="a",le="\+Inf"\} 2$/m);
  assert.match(text, /^t_duration_seconds_sum\{route="a"\} 0.55$/m);
  assert.match(text, /^# TYPE t_duration_seconds histogram$/m);

  const summed = await AggregatorRegistry.aggregate(
    // deno-lint-ignore no-explicit-any
    await Promise.all(registries.map((r) => r.getMetricsAsJSON())) as any,
  ).metrics();
  assert.match(summed, /^t_requests_total\{route="a",outcome="passed"\} 3$/m);
  assert.match(summed, /^t_duration_seconds_bucket\{route="a",le="1"\} 3$/m, "2 + 1 within 1s");
  assert.match(summed, /^t_duration_seconds_count\{route="a"\} 4$/m);

  families[0].counter.removeWhere((labels) => labels.route === "b");
  assert.doesNotMatch(await registries[0].metrics(), /route="b"/);
});
