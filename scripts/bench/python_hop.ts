/**
 * The Python hop alone, for profiling and A/B comparisons: starts a real executor the way the
 * engine does (PythonSupervisor, the test build's registry), then drives `--calls` calls of
 * `add-python-header` (the bench's `python-1` policy) through the chain runner and the real
 * bridge client, `--inflight` calls at a time, each call a fresh exchange with the headers
 * Envoy sends for a bench request. The client reports to the production metrics. Prints, per
 * round and as the median of the rounds, engine CPU µs per call (`process.cpuUsage()`, this
 * process) and executor CPU µs per call (`/proc/<pid>/stat`), as JSON lines.
 *
 *   deno run -A scripts/bench/python_hop.ts [--calls 20000] [--inflight 1,32] [--rounds 5]
 *     [--interpreter PATH]   e.g. a wrapper that runs the executor under a profiler
 *
 * Profile the engine side with `deno run -A --cpu-prof --cpu-prof-dir=DIR scripts/bench/python_hop.ts`,
 * the executor with `py-spy record --pid <executorPid>` (printed first). Not part of the tests
 * or the bench: numbers depend on the machine and its load.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runPolicies } from "../../src/chain/run.ts";
import { ExchangeState } from "../../src/chain/state.ts";
import type { PythonConfig } from "../../src/config/types.ts";
import { generatedPolicies, pythonRegistry } from "../../src/gen/test/registry.ts";
import { Metrics } from "../../src/observe/metrics.ts";
import { PythonBridge } from "../../src/python/bridge.ts";
import { ExecutorClient } from "../../src/python/client.ts";
import { PythonSupervisor } from "../../src/python/supervisor.ts";
import { instanceMode } from "../../src/registry/modes.ts";
import { PolicyRegistry } from "../../src/registry/registry.ts";
import { DEFAULT_STREAMING } from "../../src/sdk/chunk.ts";
import type { ChainEntry } from "../../src/chain/chain.ts";
import { repoRoot, venvPython } from "../lib/venv.ts";
import { cpuTimes } from "./proc_stats.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    calls: { type: "string", default: "20000" },
    warmup: { type: "string", default: "3000" },
    inflight: { type: "string", default: "1,32" },
    rounds: { type: "string", default: "5" },
    interpreter: { type: "string", default: venvPython },
  },
});
const calls = Number(values.calls);
const warmup = Number(values.warmup);
const rounds = Number(values.rounds);
const inflights = values.inflight.split(",").map(Number);

// What Envoy sends for a bench request (pseudo-headers are fields of the exchange).
const REQUEST_HEADERS: [string, string][] = [
  ["user-agent", "oha/1.4.5"],
  ["accept", "*/*"],
  ["x-forwarded-proto", "http"],
  ["x-request-id", "7f1b3c9e-2d4a-4f6b-9c1e-5a8d7b3e2f10"],
  ["x-envoy-expected-rq-timeout-ms", "15000"],
];

const dir = await Deno.makeTempDir({ prefix: "tollgate-hop-" });
const python: PythonConfig = {
  socket: join(dir, "python.sock"),
  workers: 4,
  timeoutMs: 30_000,
  interpreter: values.interpreter,
  home: repoRoot,
  maxInFlight: 1024,
  processes: 1,
};
const metrics = new Metrics();
const client = new ExecutorClient({
  socket: python.socket,
  maxInFlight: python.maxInFlight,
  maxMessageBytes: 4 << 20,
  observer: metrics,
});
const supervisor = new PythonSupervisor({
  python,
  registryFile: pythonRegistry,
  logLevel: "warning",
  maxMessageBytes: 4 << 20,
  connect: () => client,
});
await supervisor.start();
const bridge = new PythonBridge(() => client, python.timeoutMs, metrics);

const found = new PolicyRegistry(generatedPolicies).find("add-python-header", "v1");
if (!found.ok) throw new Error("the test build has no add-python-header:v1");
const parameters = { headerName: "x-python-policy", headerValue: "hello-from-python" };
const resolved = found.policy.parameters.resolve(parameters, {});
if (!resolved.ok) throw new Error("add-python-header's parameters do not resolve");
const policy = await bridge.factoryFor(found.policy)(
  { routeName: "bench", policyName: "add-python-header", policyVersion: "v1.0.0", attachedTo: "route" },
  resolved.params,
);
const entries: ChainEntry[] = [{
  label: found.policy.key,
  name: "add-python-header",
  version: found.policy.definition.version,
  policy,
  params: resolved.params,
  shownParams: resolved.shown,
  secrets: resolved.secrets,
  mode: instanceMode(found.policy.definition.processingMode, resolved.params),
  onFailure: "deny",
  timeoutMs: undefined,
  condition: undefined,
  batch: bridge,
  streaming: found.policy.definition.streaming ?? DEFAULT_STREAMING,
}];

let sequence = 0;
async function oneCall(): Promise<void> {
  const state = new ExchangeState({ name: "bench" });
  state.method = "GET";
  state.path = "/bench";
  state.authority = "localhost:10000";
  state.scheme = "http";
  for (const [name, value] of REQUEST_HEADERS) state.requestHeaders.append(name, value);
  state.shared.requestId = String(++sequence);
  const immediate = await runPolicies(entries, 0, entries.length, "request", state);
  if (immediate || state.requestHeaders.get("x-python-policy") !== "hello-from-python") {
    throw new Error(`the call did not add its header (immediate: ${JSON.stringify(immediate)})`);
  }
}

/** `count` calls, `inflight` at a time. */
async function drive(count: number, inflight: number): Promise<void> {
  let left = count;
  const lane = async () => {
    while (left > 0) {
      left--;
      await oneCall();
    }
  };
  await Promise.all(Array.from({ length: inflight }, lane));
}

/** CPU µs of both processes so far, user and system apart. */
async function cpuNow(pid: number) {
  const engine = process.cpuUsage();
  const executor = await cpuTimes(pid);
  return {
    engineUser: engine.user,
    engineSystem: engine.system,
    executorUser: executor.user * 1e6,
    executorSystem: executor.system * 1e6,
  };
}
type Sample = Awaited<ReturnType<typeof cpuNow>>;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round1 = (x: number) => Math.round(x * 10) / 10;

/** µs per call of each process (and its system part) between two samples. */
function perCall(before: Sample, after: Sample, count: number) {
  const d = (key: keyof Sample) => (after[key] - before[key]) / count;
  return {
    engineUs: d("engineUser") + d("engineSystem"),
    engineSystemUs: d("engineSystem"),
    executorUs: d("executorUser") + d("executorSystem"),
    executorSystemUs: d("executorSystem"),
  };
}
type PerCall = ReturnType<typeof perCall>;
const rounded = (figures: PerCall) =>
  Object.fromEntries(Object.entries(figures).map(([key, value]) => [key, round1(value)]));

const pid = supervisor.pid!;
console.log(JSON.stringify({ executorPid: pid, calls, rounds, inflight: inflights }));
try {
  for (const inflight of inflights) {
    await drive(warmup, inflight);
    const results: PerCall[] = [];
    for (let round = 0; round < rounds; round++) {
      const before = await cpuNow(pid);
      const started = performance.now();
      await drive(calls, inflight);
      const seconds = (performance.now() - started) / 1000;
      results.push(perCall(before, await cpuNow(pid), calls));
      const callsPerSecond = Math.round(calls / seconds);
      console.log(JSON.stringify({ inflight, round, ...rounded(results[round]), callsPerSecond }));
    }
    const medians = Object.fromEntries(
      (Object.keys(results[0]) as (keyof PerCall)[]).map((key) => [key, median(results.map((r) => r[key]))]),
    ) as PerCall;
    const totalUs = median(results.map((r) => r.engineUs + r.executorUs));
    console.log(JSON.stringify({ inflight, median: true, ...rounded(medians), totalUs: round1(totalUs) }));
  }
} finally {
  await supervisor.stop(2000);
  await Deno.remove(dir, { recursive: true });
}
