/**
 * Prometheus metrics (prom-client), served on the admin endpoint's /metrics. Names start
 * with `tollgate_`; see docs/observability.md for the list.
 */
import client from "prom-client";
import { FastHistogram, type HistogramChild } from "./fast_histogram.ts";
import type { Phase } from "../chain/run.ts";
import type { UnmatchedAction, UnmatchedReason } from "../kernel/unmatched.ts";

const REQUEST_SLOTS = { ok: "request-ok", immediate: "request-immediate", failed: "request-failed" } as const;
const RESPONSE_SLOTS = {
  ok: "response-ok",
  immediate: "response-immediate",
  failed: "response-failed",
} as const;

export class Metrics {
  readonly registry = new client.Registry();

  /** Open streams, read when scraped: setting a gauge on every stream's start and end costs a label hash each. */
  #activeStreams = 0;
  readonly #streamsActive: client.Gauge = new client.Gauge({
    name: "tollgate_extproc_streams_active",
    help: "ext_proc streams currently open (one per in-flight HTTP request)",
    registers: [this.registry],
    collect: (): void => this.#streamsActive.set(this.#activeStreams),
  });
  readonly #malformedStreams = new client.Counter({
    name: "tollgate_extproc_malformed_streams_total",
    help: "ext_proc streams ended for breaking the protocol, by reason " +
      "(undecodable_message, second_request_headers)",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly #socketLosses = new client.Counter({
    name: "tollgate_extproc_socket_lost_total",
    help: "Times the ext_proc socket file was found removed or replaced (it is then recreated)",
    registers: [this.registry],
  });
  // Observed on every policy call: the request path's histogram (./fast_histogram.ts).
  readonly #policyRuns = new FastHistogram(
    "tollgate_policy_duration_seconds",
    "Time spent in one policy call, by policy, phase and outcome (ok, immediate, failed)",
    ["policy", "phase", "outcome"],
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    this.registry,
  );
  readonly #immediate = new client.Counter({
    name: "tollgate_immediate_responses_total",
    help: "Immediate responses sent to Envoy, by deciding policy and status",
    labelNames: ["policy", "status"],
    registers: [this.registry],
  });
  readonly #unmatched = new client.Counter({
    name: "tollgate_unmatched_requests_total",
    help: "Requests whose route has no chain, by reason (unknown_route, no_route_name) and action " +
      "(pass, deny, default); the route name is logged, never a label",
    labelNames: ["reason", "action"],
    registers: [this.registry],
  });
  readonly #reloads = new client.Counter({
    name: "tollgate_config_reloads_total",
    help: "Config reloads, by result (applied or rejected)",
    labelNames: ["result"],
    registers: [this.registry],
  });

  readonly #workerReplacements = new client.Counter({
    name: "tollgate_dataplane_worker_replacements_total",
    help: "Data-plane workers the watchdog terminated and replaced, by the policy they were running " +
      "(empty when none was)",
    labelNames: ["policy"],
    registers: [this.registry],
  });
  readonly #quarantines = new client.Counter({
    name: "tollgate_policy_quarantines_total",
    help: "Times a policy was quarantined for holding a data-plane worker past the watchdog repeatedly",
    labelNames: ["policy"],
    registers: [this.registry],
  });

  readonly #pythonCalls = new client.Histogram({
    name: "tollgate_python_call_duration_seconds",
    help: "Round trips to the Python executor (one per batch of adjacent Python policies), by outcome",
    labelNames: ["outcome"],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly #pythonInFlight = new client.Gauge({
    name: "tollgate_python_calls_in_flight",
    help: "Calls sent to the Python executor and not yet answered",
    registers: [this.registry],
  });
  readonly #pythonStreamBreaks = new client.Counter({
    name: "tollgate_python_stream_breaks_total",
    help: "Times the stream to the Python executor broke (pending calls failed as unavailable)",
    registers: [this.registry],
  });
  readonly #executorRestarts = new client.Counter({
    name: "tollgate_python_executor_restarts_total",
    help: "Restarts of the Python executor by the engine",
    registers: [this.registry],
  });
  readonly #executorUp = new client.Gauge({
    name: "tollgate_python_executor_up",
    help: "1 when the Python executor is healthy, 0 while it starts or restarts",
    registers: [this.registry],
  });
  readonly #executorOverdueWorkers = new client.Gauge({
    name: "tollgate_python_overdue_workers",
    help: "Executor worker threads still running a call past its deadline (all of them: it is replaced)",
    registers: [this.registry],
  });

  pythonCall(outcome: "ok" | "timeout" | "unavailable", seconds: number): void {
    this.#pythonCalls.observe({ outcome }, seconds);
  }

  pythonInFlight(count: number): void {
    this.#pythonInFlight.set(count);
  }

  pythonStreamBroken(): void {
    this.#pythonStreamBreaks.inc();
  }

  executorRestarted(): void {
    this.#executorRestarts.inc();
  }

  executorState(state: string): void {
    this.#executorUp.set(state === "healthy" ? 1 : 0);
  }

  executorOverdueWorkers(count: number): void {
    this.#executorOverdueWorkers.set(count);
  }

  malformedStream(reason: string): void {
    this.#malformedStreams.inc({ reason });
  }

  socketLost(): void {
    this.#socketLosses.inc();
  }

  streamsChanged(active: number): void {
    this.#activeStreams = active;
  }

  /** Each policy label's children, by phase and outcome (no key string built per call). */
  readonly #policyRunChildren = new Map<string, Record<string, HistogramChild>>();

  policyRan(label: string, phase: Phase, outcome: "ok" | "immediate" | "failed", seconds: number): void {
    let children = this.#policyRunChildren.get(label);
    if (!children) {
      children = {};
      this.#policyRunChildren.set(label, children);
    }
    const slot = phase === "request" ? REQUEST_SLOTS[outcome] : RESPONSE_SLOTS[outcome];
    (children[slot] ??= this.#policyRuns.labels(label, phase, outcome)).observe(seconds);
  }

  immediateResponse(policy: string, status: number): void {
    this.#immediate.inc({ policy, status: String(status) });
  }

  unmatchedRequest(reason: UnmatchedReason, action: UnmatchedAction): void {
    this.#unmatched.inc({ reason, action });
  }

  workerReplaced(policy: string | undefined): void {
    this.#workerReplacements.inc({ policy: policy ?? "" });
  }

  policyQuarantined(policy: string): void {
    this.#quarantines.inc({ policy });
  }

  configReloaded(result: "applied" | "rejected"): void {
    this.#reloads.inc({ result });
  }
}
