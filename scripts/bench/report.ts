/**
 * Turns runs into results: medians per scenario, ratios to `baseline` and `passthrough`,
 * the issue's targets, and the Markdown tables of docs/benchmarks.md.
 */
import type { RunResult, RunSettings } from "./measure.ts";
import type { Scenario } from "./scenarios.ts";

/** Medians over a scenario's runs; CPU in µs per request, memory in MiB. */
export interface Summary {
  readonly name: string;
  readonly description: string;
  /** The compiled reference scenario doing the same work, if any. */
  readonly reference?: string;
  /** Empty when every run was clean (no errors, no non-2xx, no failed policy); else totals over runs. */
  readonly problems: readonly string[];
  /** Runs that had problems. */
  readonly failedRuns: number;
  readonly runs: number;
  readonly rps: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly messagesPerRequest: number;
  /**
   * CPU µs per request of the ext_proc server (Tollgate with its Python executor, the
   * pass-through server or the Go reference).
   */
  readonly extprocCpuUs: Record<Load, number | undefined>;
  /** CPU µs per request of Envoy plus the ext_proc server. */
  readonly totalCpuUs: Record<Load, number>;
  readonly extprocPeakMiB?: number;
  /** The ext_proc server process alone (Tollgate without its Python executor). */
  readonly enginePeakMiB?: number;
  readonly envoyPeakMiB: number;
  /** At the fixed rate. */
  readonly policyMsPerRequest: Record<string, number>;
  /** Streaming scenarios: the server's CPU µs per body chunk at the fixed rate. */
  readonly chunkCpuUs?: number;
  /** Median time to the first response byte in ms (scenarios with `timeToFirstByte`). */
  readonly firstByteP50Ms?: number;
  readonly firstByteBaseline?: string;
}

type Load = "saturated" | "fixed";

export interface Target {
  readonly target: string;
  readonly value: string;
  readonly met: boolean | undefined;
}

export interface Results {
  readonly date: string;
  readonly machine: Record<string, string | number>;
  readonly versions: Record<string, string>;
  readonly settings: RunSettings & { readonly runs: number };
  readonly summaries: readonly Summary[];
  readonly targets: readonly Target[];
  readonly runs: Record<string, readonly RunResult[]>;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const MiB = 1024 * 1024;

export function summarize(scenario: Scenario, runs: readonly RunResult[]): Summary {
  const med = (pick: (r: RunResult) => number | undefined) => {
    const values = runs.map(pick).filter((v): v is number => v !== undefined && !Number.isNaN(v));
    return values.length ? median(values) : undefined;
  };
  const extprocCpu = (load: Load) => (r: RunResult) => {
    const cpu = r.cpuPerRequest[load];
    return cpu.server === undefined ? undefined : cpu.server + (cpu.executor ?? 0);
  };
  const cpuUs = (load: Load) => ({
    extproc: scaled(med(extprocCpu(load)), 1e6),
    total: med((r) => (r.cpuPerRequest[load].envoy ?? 0) + (extprocCpu(load)(r) ?? 0))! * 1e6,
  });
  const saturatedCpu = cpuUs("saturated");
  const fixedCpu = cpuUs("fixed");
  const extprocPeak = (r: RunResult) =>
    r.peakMemory.server === undefined ? undefined : r.peakMemory.server + (r.peakMemory.executor ?? 0);
  const phases = new Set(runs.flatMap((r) => Object.keys(r.policyMsPerRequest.fixed)));
  return {
    name: scenario.name,
    description: scenario.description,
    reference: scenario.reference,
    problems: totals(runs.flatMap((r) => r.problems)),
    failedRuns: runs.filter((r) => r.problems.length > 0).length,
    runs: runs.length,
    rps: med((r) => r.saturated.rps)!,
    p50: med((r) => r.fixed.p50)!,
    p90: med((r) => r.fixed.p90)!,
    p99: med((r) => r.fixed.p99)!,
    messagesPerRequest: med((r) => r.messagesPerRequest)!,
    extprocCpuUs: { saturated: saturatedCpu.extproc, fixed: fixedCpu.extproc },
    totalCpuUs: { saturated: saturatedCpu.total, fixed: fixedCpu.total },
    extprocPeakMiB: scaled(med(extprocPeak), 1 / MiB),
    enginePeakMiB: scaled(med((r) => r.peakMemory.server), 1 / MiB),
    envoyPeakMiB: med((r) => r.peakMemory.envoy)! / MiB,
    policyMsPerRequest: Object.fromEntries(
      [...phases].map((phase) => [phase, med((r) => r.policyMsPerRequest.fixed[phase]) ?? 0]),
    ),
    ...chunkFigures(scenario, med((r) => r.messagesPerRequest), fixedCpu.extproc),
    ...(scenario.timeToFirstByte ? { firstByteP50Ms: med((r) => r.firstByteMs?.p50) } : {}),
    ...(scenario.firstByteBaseline ? { firstByteBaseline: scenario.firstByteBaseline } : {}),
  };
}

/** CPU per chunk: the server's CPU per request over the messages per request that are chunks. */
function chunkFigures(
  scenario: Scenario,
  messages: number | undefined,
  cpuUs: number | undefined,
): { chunkCpuUs?: number } {
  if (scenario.headerMessages === undefined || messages === undefined || cpuUs === undefined) return {};
  const chunks = messages - scenario.headerMessages;
  return chunks > 0 ? { chunkCpuUs: cpuUs / chunks } : {};
}

/** Streaming scenarios: CPU per chunk and the time to first byte added over their baseline. */
function streamingTable(summaries: readonly Summary[]): string[] {
  const streaming = summaries.filter((s) => s.chunkCpuUs !== undefined || s.firstByteP50Ms !== undefined);
  if (streaming.length === 0) return [];
  const by = new Map(summaries.map((s) => [s.name, s]));
  const added = (s: Summary) => {
    const base = s.firstByteBaseline ? by.get(s.firstByteBaseline)?.firstByteP50Ms : undefined;
    return base === undefined || s.firstByteP50Ms === undefined
      ? "–"
      : `${fmt(s.firstByteP50Ms - base, 3)} (over ${s.firstByteBaseline})`;
  };
  return [
    "",
    "Streamed bodies (at the fixed rate; chunks = ext_proc messages per request minus the header messages; " +
    "time to first byte: median of sequential requests on the idle stack):",
    "",
    "| scenario | chunks/req | server CPU µs/chunk | first byte p50 ms | added over baseline, ms |",
    "| --- | --: | --: | --: | --: |",
    ...streaming.map((s) =>
      `| ${s.name} | ${fmt(s.messagesPerRequest, 1)} | ${
        s.chunkCpuUs === undefined ? "–" : fmt(s.chunkCpuUs, 1)
      } | ` +
      `${s.firstByteP50Ms === undefined ? "–" : fmt(s.firstByteP50Ms, 3)} | ${added(s)} |`
    ),
  ];
}

/** Adds up problems that differ only in their count ("saturated: 12 × HTTP 500"). */
function totals(problems: readonly string[]): string[] {
  const sums = new Map<string, number>();
  for (const problem of problems) {
    const match = /^(.*?)(\d+) × (.*)$/.exec(problem);
    const key = match ? `${match[1]}\0${match[3]}` : problem;
    sums.set(key, (sums.get(key) ?? 0) + (match ? Number(match[2]) : 1));
  }
  return [...sums].map(([key, n]) => key.includes("\0") ? key.replace("\0", `${n} × `) : key);
}

function scaled(value: number | undefined, factor: number): number | undefined {
  return value === undefined ? undefined : value * factor;
}

/** The issue's targets, judged on the medians. */
export function judgeTargets(summaries: readonly Summary[]): Target[] {
  const by = new Map(summaries.map((s) => [s.name, s]));
  const base = by.get("baseline");
  const pass = by.get("passthrough");
  const targets: Target[] = [];
  const ratio = (name: string, limit: number) => {
    const s = by.get(name);
    if (!s || !pass) return;
    const value = s.rps / pass.rps;
    targets.push({
      target: `${name} throughput ≥ ${limit} × passthrough`,
      value: `${value.toFixed(2)} ×`,
      met: value >= limit,
    });
  };
  const added = (name: string, p50: number, p99: number) => {
    const s = by.get(name);
    if (!s || !base) return;
    for (const [key, limit] of [["p50", p50], ["p99", p99]] as const) {
      const value = s[key] - base[key];
      targets.push({
        target: `${name} adds ≤ ${limit} ms ${key} over baseline`,
        value: `+${value.toFixed(2)} ms`,
        met: value <= limit,
      });
    }
  };
  const compiled = (name: string, limit: number) => {
    const s = by.get(name);
    const reference = s?.reference === undefined ? undefined : by.get(s.reference);
    const value = referenceRatio(s, reference, "saturated");
    if (!s || !reference || value === undefined) return;
    targets.push({
      target: `${name} server CPU/req ≤ ${limit} × ${reference.name} (saturated)`,
      value: `${value.toFixed(2)} ×`,
      met: value <= limit,
    });
  };
  ratio("empty-chain", 0.9);
  ratio("headers-5ts", 0.8);
  added("headers-5ts", 1, 3);
  added("python-1", 1.5, 5);
  compiled("empty-chain", 1.2);
  compiled("headers-5ts", 1.3);
  // Issue 11: the engine process alone (one data-plane worker), its Python executor not counted.
  const engine = by.get("headers-5ts")?.enginePeakMiB;
  if (engine !== undefined) {
    targets.push({
      target: "headers-5ts engine peak RSS ≤ 100 MiB (the engine process alone)",
      value: `${engine.toFixed(1)} MiB`,
      met: engine <= 100,
    });
  }
  // Issue 12's policy targets, over the empty chain (the engine with nothing to run).
  const empty = by.get("empty-chain");
  const jwt = by.get("jwt-rs256");
  const jwtCpu = jwt?.extprocCpuUs.fixed;
  const emptyCpu = empty?.extprocCpuUs.fixed;
  if (jwtCpu !== undefined && emptyCpu !== undefined) {
    targets.push({
      target: "jwt-rs256 adds ≤ 15 µs engine CPU per request over empty-chain",
      value: `+${(jwtCpu - emptyCpu).toFixed(1)} µs`,
      met: jwtCpu - emptyCpu <= 15,
    });
  }
  const limited = by.get("rate-limit-redis");
  if (limited && empty) {
    targets.push({
      target: "rate-limit-redis adds ≤ 0.5 ms p50 over empty-chain",
      value: `+${(limited.p50 - empty.p50).toFixed(2)} ms`,
      met: limited.p50 - empty.p50 <= 0.5,
    });
  }
  // Issue 14's streaming targets.
  const sse = by.get("sse-stream");
  if (sse?.chunkCpuUs !== undefined) {
    targets.push({
      target: "sse-stream: ≤ 30 µs engine CPU per chunk (TypeScript chunk policy)",
      value: `${sse.chunkCpuUs.toFixed(1)} µs`,
      met: sse.chunkCpuUs <= 30,
    });
  }
  const sseBase = sse?.firstByteBaseline ? by.get(sse.firstByteBaseline)?.firstByteP50Ms : undefined;
  if (sse?.firstByteP50Ms !== undefined && sseBase !== undefined) {
    targets.push({
      target: "sse-stream: time to first event added ≤ 1 ms p50 over sse-baseline",
      value: `+${(sse.firstByteP50Ms - sseBase).toFixed(3)} ms`,
      met: sse.firstByteP50Ms - sseBase <= 1,
    });
  }
  return targets;
}

/** A scenario's ext_proc server CPU per request over its compiled reference's. */
function referenceRatio(
  s: Summary | undefined,
  reference: Summary | undefined,
  load: Load,
): number | undefined {
  const ours = s?.extprocCpuUs[load];
  const theirs = reference?.extprocCpuUs[load];
  return ours === undefined || !theirs ? undefined : ours / theirs;
}

/** The rows comparing Tollgate scenarios with their compiled references (empty without any). */
function referenceTable(summaries: readonly Summary[]): string[] {
  const by = new Map(summaries.map((s) => [s.name, s]));
  const pairs = summaries.flatMap((s) => {
    const reference = s.reference === undefined ? undefined : by.get(s.reference);
    return reference ? [[s, reference] as const] : [];
  });
  if (pairs.length === 0) return [];
  const ratio = (s: Summary, r: Summary, load: Load) => {
    const value = referenceRatio(s, r, load);
    return value === undefined ? "–" : `${value.toFixed(2)} ×`;
  };
  return [
    "",
    "Against the compiled reference (a Go ext_proc server on grpc-go doing the same work): server CPU " +
    "µs per request and Tollgate's ratio to it:",
    "",
    "| scenario | reference | saturated | reference, saturated | ratio | at fixed rate | reference, at fixed rate | ratio |",
    "| --- | --- | --: | --: | --: | --: | --: | --: |",
    ...pairs.map(([s, r]) =>
      `| ${s.name} | ${r.name} | ${fmt(s.extprocCpuUs.saturated, 0)} | ${
        fmt(r.extprocCpuUs.saturated, 0)
      } | ` +
      `${ratio(s, r, "saturated")} | ${fmt(s.extprocCpuUs.fixed, 0)} | ${fmt(r.extprocCpuUs.fixed, 0)} | ` +
      `${ratio(s, r, "fixed")} |`
    ),
  ];
}

const fmt = (value: number | undefined, digits: number) =>
  value === undefined ? "–" : value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });

/** `value (× baseline · × passthrough)`; a dash where a ratio has no meaning. */
function withRatios(
  pick: (s: Summary) => number | undefined,
  digits: number,
  s: Summary,
  base?: Summary,
  pass?: Summary,
): string {
  const value = pick(s);
  if (value === undefined) return "–";
  const ratio = (other?: Summary) => {
    const against = other && pick(other);
    return against ? (value / against).toFixed(2) : "–";
  };
  return `${fmt(value, digits)} (${ratio(base)} · ${ratio(pass)})`;
}

/** The results section of docs/benchmarks.md. */
export function markdown(results: Results): string {
  const by = new Map(results.summaries.map((s) => [s.name, s]));
  const base = by.get("baseline");
  const pass = by.get("passthrough");
  const { settings, machine, versions } = results;
  const cell = (pick: (s: Summary) => number | undefined, digits: number, s: Summary) =>
    withRatios(pick, digits, s, base, pass);
  const lines = [
    `Run on ${results.date}: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ` +
    `${machine.os}, Linux ${machine.kernel}. Deno ${versions.deno}, Envoy ${versions.envoy}, ` +
    `Python ${versions.python}, oha ${versions.oha}, Tollgate ${versions.tollgate}.`,
    "",
    `Settings: ${settings.runs} runs per scenario (medians shown), ${settings.warmupSeconds} s warm-up ` +
    `(not measured), ${settings.seconds} s per measurement, ${settings.connections} connections, ` +
    `fixed rate ${settings.rate} req/s, ${settings.envoyWorkers} Envoy worker threads, ` +
    `Tollgate's ext_proc transport ${settings.transport ?? "(the default)"}, ` +
    `${settings.workers ?? 1} data-plane worker${
      (settings.workers ?? 1) === 1 ? "" : "s"
    }. Go reference: Go ${versions.go ?? "–"}.`,
    "",
    "Each figure is followed by its ratios `(× baseline · × passthrough)`.",
    "",
    "| scenario | ext_proc msgs/req | saturated req/s | p50 ms | p90 ms | p99 ms | status |",
    "| --- | --: | --: | --: | --: | --: | --- |",
    ...results.summaries.map((s) =>
      `| ${s.name} | ${fmt(s.messagesPerRequest, 2)} | ${cell((x) => x.rps, 0, s)} | ` +
      `${cell((x) => x.p50, 3, s)} | ${cell((x) => x.p90, 3, s)} | ${cell((x) => x.p99, 3, s)} | ` +
      `${
        s.problems.length ? `**failed** (${s.failedRuns} of ${s.runs} runs): ${s.problems.join("; ")}` : "ok"
      } |`
    ),
    "",
    'CPU time per request (from /proc, saturated and at the fixed rate; "server" is the ext_proc server: ' +
    "Tollgate with its Python executor, the pass-through server or the Go reference) and peak resident memory (VmHWM) at " +
    "the end of a run (server: Tollgate and its executor added; engine: the Tollgate process alone):",
    "",
    "| scenario | server CPU µs/req, saturated | at fixed rate | Envoy + server CPU µs/req, saturated | " +
    "at fixed rate | server peak MiB | engine peak MiB | Envoy peak MiB |",
    "| --- | --: | --: | --: | --: | --: | --: | --: |",
    ...results.summaries.map((s) =>
      `| ${s.name} | ${cell((x) => x.extprocCpuUs.saturated, 0, s)} | ${
        cell((x) => x.extprocCpuUs.fixed, 0, s)
      } | ` +
      `${cell((x) => x.totalCpuUs.saturated, 0, s)} | ${cell((x) => x.totalCpuUs.fixed, 0, s)} | ` +
      `${cell((x) => x.extprocPeakMiB, 1, s)} | ${cell((x) => x.enginePeakMiB, 1, s)} | ${
        cell((x) => x.envoyPeakMiB, 1, s)
      } |`
    ),
    ...referenceTable(results.summaries),
    ...streamingTable(results.summaries),
    "",
    "Targets (2-core machine):",
    "",
    "| target | measured | met |",
    "| --- | --: | --- |",
    ...results.targets.map((t) => `| ${t.target} | ${t.value} | ${t.met ? "yes" : "**no**"} |`),
    "",
    "![latency percentiles per scenario](benchmarks/latency.svg)",
  ];
  return lines.join("\n");
}

/** Replaces the text between `<!-- NAME -->` and `<!-- /NAME -->` in `document`. */
export function replaceSection(document: string, name: string, content: string): string {
  const start = `<!-- ${name} -->`;
  const end = `<!-- /${name} -->`;
  const from = document.indexOf(start);
  const to = document.indexOf(end);
  if (from === -1 || to < from) throw new Error(`missing ${start} … ${end} in the document`);
  return `${document.slice(0, from + start.length)}\n\n${content}\n\n${document.slice(to)}`;
}
