// temporary microbenchmark (not committed): ExchangeStream CPU per exchange, no transport.
import process from "node:process";
import { stringify } from "yaml";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { configDefaults } from "../../src/cli_build.ts";
import { parseConfig } from "../../src/config/load.ts";
import { compileCondition } from "../../src/chain/condition.ts";
import { ProcessingRequestSchema, ProcessingResponseSchema } from "../../src/gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import { generatedPolicies } from "../../src/gen/test/registry.ts";
import { buildRouteTable } from "../../src/kernel/build.ts";
import { Kernel } from "../../src/kernel/routes.ts";
import { PolicyRegistry } from "../../src/registry/registry.ts";
import { ExchangeStream } from "../../src/extproc/stream.ts";
import { Metrics } from "../../src/observe/metrics.ts";
import { requestHeaders, responseHeaders } from "./extproc_client.ts";
const five = Deno.args[0] !== "empty";
const setH = (r: string, s?: string) => ({ name: "set-headers", version: "v1", parameters: { requestHeaders: [{ name: r, value: "bench" }], ...(s ? { responseHeaders: [{ name: s, value: "bench" }] } : {}) } });
const rmH = (r: string, s: string) => ({ name: "remove-headers", version: "v1", parameters: { requestHeaders: [{ name: r }], responseHeaders: [{ name: s }] } });
const policies = five ? [setH("x-bench-1", "x-bench-r1"), rmH("x-client-debug", "x-upstream"), setH("x-bench-2", "x-bench-r2"), rmH("x-bench-1", "x-bench-r1"), setH("x-bench-3", "x-bench-r3")] : [];
const config = parseConfig(stringify({ routes: [{ name: "bench", policies }] }), "micro", {}, configDefaults());
const registry = new PolicyRegistry(generatedPolicies);
const kernel = new Kernel(await buildRouteTable(config, { registry, factoryFor: (p) => p.factory, compileCondition }));
const metrics = new Metrics();
const req = toBinary(ProcessingRequestSchema, create(ProcessingRequestSchema, requestHeaders("bench", "/x", [["x-client-debug", "1"], ["x-request-id", "abc"]], true)));
const resp = toBinary(ProcessingRequestSchema, create(ProcessingRequestSchema, responseHeaders(200, [["content-type", "application/json"], ["x-upstream", "1"]], false)));
async function one() {
  const ex = new ExchangeStream(kernel, metrics);
  let r = ex.handle(fromBinary(ProcessingRequestSchema, req));
  if (r instanceof Promise) r = await r;
  toBinary(ProcessingResponseSchema, r!);
  if (five) {
    let r2 = ex.handle(fromBinary(ProcessingRequestSchema, resp));
    if (r2 instanceof Promise) r2 = await r2;
    toBinary(ProcessingResponseSchema, r2!);
  }
  ex.release();
}
const out: number[] = [];
for (let round = 0; round < 6; round++) {
  const n = 20000; const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await one();
  const c = process.cpuUsage(c0);
  if (round > 0) out.push((c.user + c.system) / n);
}
out.sort((a, b) => a - b);
console.log(`${five ? "headers-5ts" : "empty"} cpu µs/exchange median ${out[2].toFixed(2)} min ${out[0].toFixed(2)}`);
