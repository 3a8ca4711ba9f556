import assert from "node:assert/strict";
import client, { AggregatorRegistry } from "prom-client";
import { FastHistogram } from "../../src/observe/fast_histogram.ts";

const BUCKETS = [0.001, 0.01, 0.1];
const OBSERVED: [string, string, number][] = [
  ["a", "request", 0.0005],
  ["a", "request", 0.001], // on a bound: counted in that bucket, as prom-client does
  ["a", "request", 0.05],
  ["b", "response", 2], // above every bound: only +Inf
  ["a", "request", 0.02],
];

/** The same observations through prom-client's Histogram and ours, under one name each. */
async function both(): Promise<
  { theirs: string; ours: string; reference: client.Registry; registry: client.Registry }
> {
  const reference = new client.Registry();
  const registry = new client.Registry();
  const histogram = new client.Histogram({
    name: "h",
    help: "help",
    labelNames: ["policy", "phase"],
    buckets: BUCKETS,
    registers: [reference],
  });
  const fast = new FastHistogram("h", "help", ["policy", "phase"], BUCKETS, registry);
  for (const [policy, phase, value] of OBSERVED) {
    histogram.observe({ policy, phase }, value);
    fast.labels(policy, phase).observe(value);
  }
  return { theirs: await reference.metrics(), ours: await registry.metrics(), reference, registry };
}

Deno.test("the fast histogram's exposition is prom-client's for the same observations", async () => {
  const { theirs, ours } = await both();
  assert.equal(ours, theirs);
  assert.match(ours, /h_bucket\{le="0.001",policy="a",phase="request"\} 2/);
  assert.match(ours, /h_bucket\{le="\+Inf",policy="b",phase="response"\} 1/);
});

Deno.test("the fast histogram aggregates across workers like a prom-client histogram", async () => {
  const one = await both();
  const two = await both();
  const merged = (pick: (b: typeof one) => client.Registry) =>
    Promise.all([pick(one).getMetricsAsJSON(), pick(two).getMetricsAsJSON()]).then((all) =>
      AggregatorRegistry.aggregate(all).metrics()
    );
  const ours = await merged((b) => b.registry);
  assert.equal(ours, await merged((b) => b.reference));
  assert.match(ours, /h_count\{policy="a",phase="request"\} 8/);
});
