/**
 * One run of one scenario: start its stack, check that its policies do their work, warm
 * up (not measured), saturate, then hold the fixed rate while sampling CPU from /proc,
 * and stop everything, whatever happens.
 */
import type { ListenTransport } from "../../src/config/types.ts";
import { REFLECTED } from "./envoy.ts";
import { loadProblems, type LoadResult, runLoad } from "./loadgen.ts";
import { cpuOf, memory } from "./proc_stats.ts";
import type { Running } from "./running.ts";
import { requestHeaders, type Scenario } from "./scenarios.ts";
import { type Role, Stack } from "./stack.ts";

/** How each run loads the stack (the same for every scenario of a session). */
export interface RunSettings {
  readonly warmupSeconds: number;
  readonly seconds: number;
  readonly connections: number;
  readonly rate: number;
  readonly envoyWorkers: number;
  /** Tollgate's `listen.transport`; undefined runs the engine's default. */
  readonly transport?: ListenTransport;
  /** Tollgate's `dataPlane.workers`. */
  readonly workers: number;
}

/** The request a scenario sends, and where the run registers what it starts. */
export interface RunContext {
  /** The scenario's request body, also in `bodyFile` for the load generator. */
  readonly body?: Uint8Array<ArrayBuffer>;
  readonly bodyFile?: string;
  readonly running: Running;
}

export interface RunResult {
  readonly saturated: LoadResult;
  readonly fixed: LoadResult;
  /** CPU seconds per request by process role, saturated and at the fixed rate. */
  readonly cpuPerRequest: Record<"saturated" | "fixed", Partial<Record<Role, number>>>;
  /** Peak resident memory (VmHWM) in bytes at the end of the run, by process role. */
  readonly peakMemory: Partial<Record<Role, number>>;
  /** ext_proc messages Envoy sent per request (0 without ext_proc). */
  readonly messagesPerRequest: number;
  /**
   * Time per request inside policies (by phase) and Python round trips, in ms, from
   * Tollgate's metrics, saturated and at the fixed rate.
   */
  readonly policyMsPerRequest: Record<"saturated" | "fixed", Record<string, number>>;
  /** Problems that make the run invalid (errors, non-2xx, failed policies). */
  readonly problems: string[];
  /** Time to the first response byte in ms (scenarios with `timeToFirstByte`). */
  readonly firstByteMs?: { readonly p50: number; readonly p90: number };
}

/** Checks one request's effect: the upstream's reflection of the request and the response headers. */
async function checkScenario(
  scenario: Scenario,
  url: string,
  body: Uint8Array<ArrayBuffer> | undefined,
): Promise<void> {
  const headers = new Headers(requestHeaders(scenario).map((h) => h.split(": ", 2) as [string, string]));
  if (body) headers.set("content-type", "application/json");
  const response = await fetch(url, {
    method: body ? "POST" : "GET",
    headers,
    body,
  });
  const text = scenario.checkBody ? await response.text() : (await response.body?.cancel(), "");
  const sawValues = (response.headers.get("x-upstream-saw") ?? "").split("|");
  const saw = Object.fromEntries(REFLECTED.map((h, i) => [h, sawValues[i] || "-"]));
  const problem = response.status !== 200
    ? `status ${response.status}`
    : scenario.check(saw, response.headers) ?? scenario.checkBody?.(text);
  if (problem) throw new Error(`scenario ${scenario.name} does not do its work: ${problem}`);
}

/** Sequential requests whose time to the first response byte is measured. */
const FIRST_BYTE_SAMPLES = 200;

/**
 * Time to the first response byte, over sequential requests on an otherwise idle stack (the
 * load phases are over): what a streaming chain adds before a client sees anything.
 */
async function firstByte(url: string): Promise<{ p50: number; p90: number }> {
  const samples: number[] = [];
  for (let i = 0; i < FIRST_BYTE_SAMPLES; i++) {
    const started = performance.now();
    const response = await fetch(url);
    const reader = response.body!.getReader();
    await reader.read();
    samples.push(performance.now() - started);
    await reader.cancel();
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
  return { p50: at(0.5), p90: at(0.9) };
}

/** A Prometheus histogram's `_sum` (seconds), added up by the value of one label. */
function histogramSums(text: string, metric: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  const pattern = new RegExp(`^${metric}_sum\\{([^}]*)\\} (\\S+)$`, "gm");
  for (const [, labels, value] of text.matchAll(pattern)) {
    const key = new RegExp(`${label}="([^"]*)"`).exec(labels)?.[1] ?? "";
    out.set(key, (out.get(key) ?? 0) + Number(value));
  }
  return out;
}

/** Milliseconds per request spent in policies (by phase) and Python round trips, between two scrapes. */
function policyTime(before: string, after: string, requests: number): Record<string, number> {
  const out: Record<string, number> = {};
  const add = (metric: string, label: string, prefix: string) => {
    const start = histogramSums(before, metric, label);
    for (const [key, end] of histogramSums(after, metric, label)) {
      out[`${prefix}${key}`] = ((end - (start.get(key) ?? 0)) * 1000) / requests;
    }
  };
  add("tollgate_policy_duration_seconds", "phase", "policies:");
  add("tollgate_python_call_duration_seconds", "outcome", "python:");
  return out;
}

function failedPolicyCalls(metrics: string): number {
  const pattern = /^tollgate_policy_failures_total\{[^}]*\} (\S+)$/gm;
  return [...metrics.matchAll(pattern)].reduce((sum, [, n]) => sum + Number(n), 0);
}

const EXT_PROC_MSGS = "http.ingress_http.ext_proc.stream_msgs_sent";
const DOWNSTREAM_RQ = "http.ingress_http.downstream_rq_total";

/** One load phase with the CPU, Envoy counters and Tollgate metrics sampled around it. */
interface Measured {
  readonly load: LoadResult;
  /** Requests Envoy received during the phase. */
  readonly requests: number;
  readonly cpuPerRequest: Partial<Record<Role, number>>;
  readonly messagesPerRequest: number;
  readonly policyMsPerRequest: Record<string, number>;
}

async function measured(stack: Stack, run: () => Promise<LoadResult>): Promise<Measured> {
  const pids = stack.pids as Record<string, number>;
  const counters = `${EXT_PROC_MSGS}|${DOWNSTREAM_RQ}`;
  const statsBefore = await stack.envoy.stats(counters);
  const metricsBefore = await stack.metrics();
  const cpuBefore = await cpuOf(pids);
  const load = await run();
  const cpuAfter = await cpuOf(pids);
  const metricsAfter = await stack.metrics();
  const statsAfter = await stack.envoy.stats(counters);
  const delta = (name: string) => (statsAfter.get(name) ?? 0) - (statsBefore.get(name) ?? 0);
  const requests = delta(DOWNSTREAM_RQ);
  const cpuPerRequest = Object.fromEntries(
    Object.keys(pids).map((role) => [role, (cpuAfter[role] - cpuBefore[role]) / requests]),
  );
  return {
    load,
    requests,
    cpuPerRequest,
    messagesPerRequest: delta(EXT_PROC_MSGS) / requests,
    policyMsPerRequest: metricsBefore && metricsAfter
      ? policyTime(metricsBefore, metricsAfter, requests)
      : {},
  };
}

/** Runs one scenario once. */
export async function measureRun(
  scenario: Scenario,
  settings: RunSettings,
  context: RunContext,
): Promise<RunResult> {
  const starting = Stack.start(scenario, settings.envoyWorkers, settings.transport, settings.workers);
  const done = context.running.add(async () => (await starting.catch(() => undefined))?.stop());
  const stack = await starting;
  try {
    await checkScenario(scenario, stack.envoy.url, context.body);
    const load = (seconds: number, rate?: number) => () =>
      runLoad({
        url: `${stack.envoy.url}/`,
        seconds,
        connections: settings.connections,
        rate,
        headers: requestHeaders(scenario),
        bodyFile: context.bodyFile,
        running: context.running,
      });
    await load(settings.warmupSeconds)();
    const saturated = await measured(stack, load(settings.seconds));
    const fixed = await measured(stack, load(settings.seconds, settings.rate));
    const firstByteMs = scenario.timeToFirstByte ? await firstByte(`${stack.envoy.url}/`) : undefined;
    const peakMemory: Partial<Record<Role, number>> = {};
    for (const [role, pid] of Object.entries(stack.pids) as [Role, number][]) {
      peakMemory[role] = (await memory(pid)).peak;
    }
    const problems = [
      ...loadProblems("saturated", saturated.load),
      ...loadProblems("fixed rate", fixed.load),
    ];
    const metrics = await stack.metrics();
    const failed = metrics ? failedPolicyCalls(metrics) : 0;
    if (failed > 0) problems.push(`${failed} policy calls failed`);
    return {
      saturated: saturated.load,
      fixed: fixed.load,
      cpuPerRequest: { saturated: saturated.cpuPerRequest, fixed: fixed.cpuPerRequest },
      peakMemory,
      messagesPerRequest: fixed.messagesPerRequest,
      policyMsPerRequest: { saturated: saturated.policyMsPerRequest, fixed: fixed.policyMsPerRequest },
      problems,
      ...(firstByteMs ? { firstByteMs } : {}),
    };
  } finally {
    done();
    await stack.stop();
  }
}
