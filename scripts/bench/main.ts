/**
 * `deno task bench`: Tollgate's overhead behind a real Envoy, as ratios to baselines run
 * in the same session (docs/benchmarks.md says how to read the results). Starts and stops
 * everything itself, also on failure and on Ctrl-C.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { formatProblem } from "../../src/config/problem.ts";
import { parseDuration } from "../../src/config/duration.ts";
import { buildManifest, DEFAULT_TARGETS } from "../build.ts";
import { repoRoot, run } from "../lib/venv.ts";
import { setup } from "../setup.ts";
import { machine, versions } from "./environment.ts";
import type { ListenTransport } from "../../src/config/types.ts";
import { ensureGoReference } from "./go_reference.ts";
import { ensureOha } from "./loadgen.ts";
import { measureRun, type RunResult, type RunSettings } from "./measure.ts";
import { judgeTargets, markdown, replaceSection, type Results, summarize } from "./report.ts";
import { Running } from "./running.ts";
import { jsonBody, prepareScenarios, type Scenario, SCENARIOS, selectScenarios } from "./scenarios.ts";
import { soak, soakMarkdown, type SoakResult } from "./soak.ts";
import { latencyChart } from "./svg.ts";

const USAGE = `Usage: deno task bench [options]

Runs every scenario (or those named) behind a real Envoy and writes the results.
baseline and passthrough always run too: every figure is reported as a ratio to them;
a named scenario with a compiled reference (go-passthrough, go-headers-5) brings it along.

Options:
  --scenario NAME      run only this scenario (repeatable, or comma-separated)
  --runs N             runs per scenario; medians are reported (default 3)
  --duration D         length of each measurement, e.g. 10s (default 10s)
  --warmup D           unmeasured load before each run's measurements (default 5s)
  --rate N             the fixed rate for latency, req/s, the same for every scenario (default 1000)
  --connections N      client connections (default 32)
  --envoy-workers N    Envoy worker threads (default 2)
  --transport T        Tollgate's listen.transport: lean | grpc-js (default: the engine's default)
  --workers N          Tollgate's dataPlane.workers: data-plane workers, one socket each (default 1)
  --soak D             instead: the leak check, one saturated run of D (e.g. 5m) per scenario
  --out DIR            where results go (default: docs/ for a full run, bench-results/ otherwise)
  -h, --help           show this help`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    scenario: { type: "string", multiple: true, default: [] },
    runs: { type: "string", default: "3" },
    duration: { type: "string", default: "10s" },
    warmup: { type: "string", default: "5s" },
    rate: { type: "string", default: "1000" },
    connections: { type: "string", default: "32" },
    "envoy-workers": { type: "string", default: "2" },
    transport: { type: "string" },
    workers: { type: "string", default: "1" },
    soak: { type: "string" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}

function positive(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer`);
  return value;
}

function transportOf(text: string | undefined): ListenTransport | undefined {
  if (text === undefined || text === "lean" || text === "grpc-js") return text;
  throw new Error("--transport must be lean or grpc-js");
}

const seconds = (text: string) => parseDuration(text) / 1000;
const named = values.scenario.flatMap((s) => s.split(",")).filter(Boolean);
const scenarios = selectScenarios(named.length ? ["baseline", "passthrough", ...named] : []);
const full = scenarios.length === SCENARIOS.length;
const settings: RunSettings = {
  warmupSeconds: seconds(values.warmup),
  seconds: seconds(values.duration),
  connections: positive("connections", values.connections),
  rate: positive("rate", values.rate),
  envoyWorkers: positive("envoy-workers", values["envoy-workers"]),
  transport: transportOf(values.transport),
  workers: positive("workers", values.workers),
};
const runs = positive("runs", values.runs);
const docs = values.out === undefined && full;
const outDir = values.out ?? (full ? join(repoRoot, "docs", "benchmarks") : join(repoRoot, "bench-results"));

const running = new Running();
const tmp = await Deno.makeTempDir({ prefix: "tollgate-bench-" });
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, async () => {
    // A Ctrl-C reaches us twice (directly and through `deno task`): stop once.
    if (interrupted) return;
    interrupted = true;
    console.error(`\nbench: ${signal}: stopping everything ...`);
    await running.stopAll();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    Deno.exit(130);
  });
}

/** Writes each scenario's request body to a file for the load generator. */
async function bodies(
  dir: string,
  scenarios: readonly Scenario[],
): Promise<Map<string, { body: Uint8Array<ArrayBuffer>; bodyFile: string }>> {
  const out = new Map<string, { body: Uint8Array<ArrayBuffer>; bodyFile: string }>();
  for (const scenario of scenarios) {
    if (scenario.bodyBytes === undefined) continue;
    const body = jsonBody(scenario.bodyBytes);
    const bodyFile = join(dir, `${scenario.name}.json`);
    await Deno.writeFile(bodyFile, body);
    out.set(scenario.name, { body, bodyFile });
  }
  return out;
}

/** Sets up, builds, and builds the tools; returns the oha and Go reference versions. */
async function prepare(): Promise<{ oha: string; go: string }> {
  await setup();
  for (const target of DEFAULT_TARGETS) {
    const problems = await buildManifest(target.manifest, target.out);
    if (problems.length > 0) throw new Error(problems.map(formatProblem).join("\n"));
  }
  const go = scenarios.some((s) => s.server.startsWith("go-")) ? await ensureGoReference() : "not run";
  return { oha: await ensureOha(), go };
}

function describe(result: RunResult): string {
  const { saturated: s, fixed: f } = result;
  return `${Math.round(s.rps)} req/s saturated; at the fixed rate p50 ${f.p50.toFixed(3)} ms, ` +
    `p99 ${f.p99.toFixed(3)} ms${result.problems.length ? `; FAILED: ${result.problems.join("; ")}` : ""}`;
}

/**
 * Replaces a generated section of docs/benchmarks.md, then formats it and the other
 * generated files in `also` as `deno fmt` (part of `deno task check`) wants them.
 */
async function updateDocs(section: string, content: string, also: readonly string[] = []): Promise<void> {
  const file = join(repoRoot, "docs", "benchmarks.md");
  await Deno.writeTextFile(file, replaceSection(await Deno.readTextFile(file), section, content));
  await run(Deno.execPath(), ["fmt", "--quiet", file, ...also], { cwd: repoRoot });
}

/**
 * Runs round-robin (every scenario once, then again), so slow drifts of the machine hit
 * all alike. Resolves false if a run failed.
 */
async function benchmark(
  tmp: string,
  tools: { oha: string; go: string },
  scenarios: readonly Scenario[],
): Promise<boolean> {
  const files = await bodies(tmp, scenarios);
  const results = new Map<string, RunResult[]>(scenarios.map((s) => [s.name, []]));
  for (let round = 1; round <= runs; round++) {
    for (const scenario of scenarios) {
      console.error(`bench: run ${round}/${runs} ${scenario.name} ...`);
      const result = await measureRun(scenario, settings, { ...files.get(scenario.name), running });
      console.error(`bench:   ${describe(result)}`);
      results.get(scenario.name)!.push(result);
    }
  }
  const summaries = scenarios.map((s: Scenario) => summarize(s, results.get(s.name)!));
  const report: Results = {
    date: new Date().toISOString(),
    machine: await machine(),
    versions: { ...await versions(tools.oha), go: tools.go },
    settings: { ...settings, runs },
    summaries,
    targets: judgeTargets(summaries),
    runs: Object.fromEntries(results),
  };
  await Deno.mkdir(outDir, { recursive: true });
  const table = markdown(report);
  const json = join(outDir, "results.json");
  const chart = join(outDir, "latency.svg");
  await Deno.writeTextFile(json, JSON.stringify(report, null, 2) + "\n");
  await Deno.writeTextFile(
    chart,
    latencyChart(summaries, `Latency at ${settings.rate} req/s (median of ${runs} runs)`),
  );
  if (docs) {
    await updateDocs("bench:results", table, [json, chart]);
  } else {
    await Deno.writeTextFile(join(outDir, "results.md"), table + "\n");
  }
  console.log(table);
  const failed = summaries.some((s) => s.problems.length > 0);
  if (failed) console.error("bench: some runs FAILED (errors or non-2xx responses); see the status column");
  return !failed;
}

/** Resolves false if a soak run failed. */
async function soakAll(tmp: string, duration: number, scenarios: readonly Scenario[]): Promise<boolean> {
  const files = await bodies(tmp, scenarios);
  const results: SoakResult[] = [];
  for (const scenario of scenarios) {
    console.error(`bench: soak ${scenario.name} for ${duration} s ...`);
    results.push(
      await soak(scenario, {
        seconds: duration,
        connections: settings.connections,
        envoyWorkers: settings.envoyWorkers,
        bodyFile: files.get(scenario.name)?.bodyFile,
        running,
      }),
    );
  }
  const table = soakMarkdown(results, new Date().toISOString());
  await Deno.mkdir(outDir, { recursive: true });
  const json = join(outDir, "soak.json");
  await Deno.writeTextFile(json, JSON.stringify(results, null, 2) + "\n");
  if (docs) await updateDocs("bench:soak", table, [json]);
  console.log(table);
  return results.every((r) => r.problems.length === 0);
}

let ok = false;
try {
  const tools = await prepare();
  // Keys, tokens and servers some scenarios need, made once; released by running.stopAll().
  const ready = await prepareScenarios(scenarios, running);
  ok = values.soak !== undefined
    ? await soakAll(tmp, seconds(values.soak), ready)
    : await benchmark(tmp, tools, ready);
} catch (error) {
  // After an interrupt, what was running fails as it is stopped: the signal handler exits.
  if (!interrupted) throw error;
  await new Promise(() => {});
} finally {
  await running.stopAll();
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
Deno.exit(ok ? 0 : 1);
