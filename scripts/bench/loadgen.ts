/**
 * The load generator: oha (https://github.com/hatoo/oha), built from crates.io into
 * .tollgate/bench/ on first use. Why oha: its fixed-rate mode (`-q`) paces requests
 * evenly and measures latency from each request's scheduled start (`--latency-correction`),
 * so a slow response cannot hide the requests it delays; it reports percentiles, status
 * codes and errors as JSON; and with one worker thread it costs about as much CPU per
 * request as h2load, on two cores shared with everything it measures. h2load's `--rps`
 * sent bursts (about ten requests every 10 ms at 1,000 req/s, quadrupling the baseline's
 * p50), and wrk cannot hold a rate.
 */
import { join } from "node:path";
import { repoRoot, run } from "../lib/venv.ts";
import { killChild, type Running } from "./running.ts";

export const OHA_VERSION = "1.16.0";
const toolsDir = join(repoRoot, ".tollgate", "bench");
const ohaPath = join(toolsDir, "bin", "oha");

async function ohaVersion(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(ohaPath, { args: ["--version"], stderr: "null" }).output();
    return new TextDecoder().decode(out.stdout).trim().split(" ").pop();
  } catch {
    return undefined;
  }
}

/** Builds oha with cargo unless the pinned version is already there; returns its version. */
export async function ensureOha(): Promise<string> {
  if (await ohaVersion() === OHA_VERSION) return OHA_VERSION;
  console.error(
    `bench: building oha ${OHA_VERSION} from crates.io into ${toolsDir} (a few minutes, once) ...`,
  );
  try {
    await run("cargo", ["install", "oha", "--version", OHA_VERSION, "--locked", "--root", toolsDir]);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error("bench: cargo (Rust >= 1.88) is needed to build the load generator oha");
    }
    throw error;
  }
  return OHA_VERSION;
}

export interface LoadOptions {
  readonly url: string;
  readonly seconds: number;
  readonly connections: number;
  /** Requests per second to hold; undefined saturates (each connection sends back to back). */
  readonly rate?: number;
  readonly headers: readonly string[];
  /** POSTs this file's content as application/json. */
  readonly bodyFile?: string;
  /** Where the run is registered while it lasts, so an interrupt can stop it. */
  readonly running: Running;
}

export interface LoadResult {
  readonly requests: number;
  readonly rps: number;
  /** Latency percentiles in milliseconds. */
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  /** Responses by HTTP status code. */
  readonly statuses: Record<string, number>;
  /** Requests that got no HTTP answer (connection errors, timeouts), by message. */
  readonly errors: Record<string, number>;
}

interface OhaJson {
  summary: { requestsPerSec: number };
  latencyPercentiles: Record<string, number | null>;
  statusCodeDistribution: Record<string, number>;
  errorDistribution: Record<string, number>;
}

/** One oha run; resolves when it ends (the requests in flight at the deadline are awaited). */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const args = [
    "--no-tui",
    "--output-format",
    "json",
    "--worker-threads",
    "1",
    "--wait-ongoing-requests-after-deadline",
    "-z",
    `${options.seconds}s`,
    "-c",
    String(options.connections),
    ...options.headers.flatMap((h) => ["-H", h]),
  ];
  if (options.rate !== undefined) args.push("-q", String(options.rate), "--latency-correction");
  if (options.bodyFile) args.push("-m", "POST", "-D", options.bodyFile, "-T", "application/json");
  args.push(options.url);
  const child = new Deno.Command(ohaPath, { args, stdout: "piped", stderr: "piped" }).spawn();
  const done = options.running.add(async () => {
    killChild(child);
    await child.status;
  });
  const out = await child.output().finally(done);
  if (!out.success) {
    throw new Error(`oha failed (exit ${out.code}): ${new TextDecoder().decode(out.stderr)}`);
  }
  const report: OhaJson = JSON.parse(new TextDecoder().decode(out.stdout));
  const statuses = Object.entries(report.statusCodeDistribution);
  const ms = (key: string) => (report.latencyPercentiles[key] ?? NaN) * 1000;
  return {
    requests: statuses.reduce((sum, [, n]) => sum + n, 0),
    rps: report.summary.requestsPerSec,
    p50: ms("p50"),
    p90: ms("p90"),
    p99: ms("p99"),
    statuses: report.statusCodeDistribution,
    errors: report.errorDistribution,
  };
}

/** What makes a load run invalid: non-2xx answers and errors, with counts. */
export function loadProblems(phase: string, result: LoadResult): string[] {
  const problems = Object.entries(result.statuses)
    .filter(([code]) => !code.startsWith("2"))
    .map(([code, count]) => `${phase}: ${count} × HTTP ${code}`);
  for (const [error, count] of Object.entries(result.errors)) problems.push(`${phase}: ${count} × ${error}`);
  return problems;
}
