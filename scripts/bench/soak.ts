/**
 * The leak check (`--soak 5m`): one long saturated run per scenario, sampling resident
 * memory from /proc. A leak shows as peak memory (VmHWM) still growing after the first
 * minute; the target is the peak at the end within 10 % of the peak at one minute.
 */
import { loadProblems, runLoad } from "./loadgen.ts";
import { memory } from "./proc_stats.ts";
import type { Running } from "./running.ts";
import { requestHeaders, type Scenario } from "./scenarios.ts";
import { type Role, Stack } from "./stack.ts";

const SAMPLE_MS = 10_000;
const FIRST_MINUTE_MS = 60_000;
/** Allowed growth of peak memory between the first minute and the end. */
export const LEAK_LIMIT = 0.1;

export interface SoakSample {
  readonly seconds: number;
  /** VmRSS by role, bytes. */
  readonly rss: Partial<Record<Role, number>>;
}

export interface SoakResult {
  readonly scenario: string;
  readonly seconds: number;
  readonly requests: number;
  readonly rps: number;
  readonly problems: string[];
  /** Peak memory (VmHWM) by role after one minute and at the end, bytes. */
  readonly peakAtOneMinute: Partial<Record<Role, number>>;
  readonly peakAtEnd: Partial<Record<Role, number>>;
  readonly samples: readonly SoakSample[];
}

async function read(pids: Partial<Record<Role, number>>, field: "rss" | "peak") {
  const out: Partial<Record<Role, number>> = {};
  for (const [role, pid] of Object.entries(pids) as [Role, number][]) out[role] = (await memory(pid))[field];
  return out;
}

export interface SoakSettings {
  readonly seconds: number;
  readonly connections: number;
  readonly envoyWorkers: number;
  readonly bodyFile?: string;
  readonly running: Running;
}

export async function soak(scenario: Scenario, settings: SoakSettings): Promise<SoakResult> {
  const starting = Stack.start(scenario, settings.envoyWorkers);
  const done = settings.running.add(async () => (await starting.catch(() => undefined))?.stop());
  const stack = await starting;
  try {
    const started = Date.now();
    const load = runLoad({
      url: `${stack.envoy.url}/`,
      seconds: settings.seconds,
      connections: settings.connections,
      headers: requestHeaders(scenario),
      bodyFile: settings.bodyFile,
      running: settings.running,
    });
    let finished = false;
    load.finally(() => finished = true).catch(() => {});
    const samples: SoakSample[] = [];
    let peakAtOneMinute: Partial<Record<Role, number>> | undefined;
    while (!finished) {
      await Promise.race([load.catch(() => {}), new Promise((resolve) => setTimeout(resolve, SAMPLE_MS))]);
      if (finished) break;
      const elapsed = Date.now() - started;
      samples.push({ seconds: Math.round(elapsed / 1000), rss: await read(stack.pids, "rss") });
      if (!peakAtOneMinute && elapsed >= FIRST_MINUTE_MS) peakAtOneMinute = await read(stack.pids, "peak");
    }
    const result = await load;
    const problems = loadProblems("soak", result);
    return {
      scenario: scenario.name,
      seconds: settings.seconds,
      requests: result.requests,
      rps: result.rps,
      problems,
      peakAtOneMinute: peakAtOneMinute ?? {},
      peakAtEnd: await read(stack.pids, "peak"),
      samples,
    };
  } finally {
    done();
    await stack.stop();
  }
}

/** The soak section of docs/benchmarks.md. */
export function soakMarkdown(results: readonly SoakResult[], date: string): string {
  const MiB = 1024 * 1024;
  const row = (r: SoakResult) => {
    const role: Role = r.peakAtEnd.server !== undefined ? "server" : "envoy";
    const total = (m: Partial<Record<Role, number>>) =>
      role === "server" ? (m.server ?? 0) + (m.executor ?? 0) : m.envoy ?? 0;
    const first = total(r.peakAtOneMinute);
    const end = total(r.peakAtEnd);
    const growth = first ? end / first - 1 : NaN;
    const ok = r.problems.length === 0 && growth <= LEAK_LIMIT;
    return `| ${r.scenario} | ${role === "server" ? "ext_proc server" : "Envoy"} | ` +
      `${Math.round(r.rps).toLocaleString("en-US")} | ${(first / MiB).toFixed(1)} | ${
        (end / MiB).toFixed(1)
      } | ` +
      `${(growth * 100).toFixed(1)} % | ${
        ok ? "yes" : `**no**${r.problems.length ? `: ${r.problems.join("; ")}` : ""}`
      } |`;
  };
  return [
    `Soak run on ${date}: each scenario saturated for ${results[0]?.seconds ?? 0} s ` +
    "(peak resident memory, VmHWM, of the process that would leak: the ext_proc server with its " +
    "Python executor, or Envoy for `baseline`).",
    "",
    "| scenario | process | req/s | peak MiB at 1 min | peak MiB at end | growth | within 10 % |",
    "| --- | --- | --: | --: | --: | --: | --- |",
    ...results.map(row),
  ].join("\n");
}
