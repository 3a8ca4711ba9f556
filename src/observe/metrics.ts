/**
 * Prometheus metrics (prom-client), served on the admin endpoint's /metrics. Names start
 * with `tollgate_`; see docs/observability.md for the list. Each data-plane worker and the
 * control plane has one; the admin endpoint sums them.
 */
import client from "prom-client";
import type { ChainEntry } from "../chain/chain.ts";
import type { Phase } from "../chain/run.ts";
import type { ExchangeSummary } from "../extproc/stream.ts";
import type { RouteTable } from "../kernel/routes.ts";
import type { UnmatchedAction, UnmatchedReason } from "../kernel/unmatched.ts";
import type { DecisionEntry } from "./decision_trace.ts";
import { HistogramFamily } from "./cells.ts";
import { type EntryCells, RouteMetrics } from "./route_metrics.ts";

export class Metrics {
  readonly registry = new client.Registry();
  readonly #routes = new RouteMetrics(this.registry);
  /** Whether a route's policy (by `name:vMAJOR`) is quarantined now; set by the data plane. */
  quarantined: (route: string, label: string) => boolean = () => false;

  readonly #buildInfo = new client.Gauge({
    name: "tollgate_build_info",
    help: "1, labelled with the engine's version, the Deno version and the number of compiled-in policies",
    labelNames: ["version", "deno", "policies"],
    registers: [this.registry],
  });
  readonly #configGeneration = new client.Gauge({
    name: "tollgate_config_generation",
    help: "Configs applied since start (1 after startup; each applied reload adds one)",
    registers: [this.registry],
  });
  readonly #configReloadedAt = new client.Gauge({
    name: "tollgate_config_last_reload_timestamp_seconds",
    help: "When the running config was applied (at startup or by the last applied reload), Unix time",
    registers: [this.registry],
  });
  readonly #quarantinedPolicies = new client.Gauge({
    name: "tollgate_policy_quarantined",
    help: "1 while a route's policy is quarantined (it failed too often within the quarantine window, " +
      "or it held a data-plane worker past the watchdog repeatedly), else 0",
    labelNames: ["route", "policy"],
    registers: [this.registry],
    // Workers report each other's quarantines for the same policy: one is enough.
    aggregator: "max",
    collect: () => this.#collectQuarantined(),
  });

  readonly #streamsActive = new client.Gauge({
    name: "tollgate_extproc_streams_active",
    help: "ext_proc streams currently open (one per in-flight HTTP request)",
    registers: [this.registry],
  });
  readonly #malformedStreams = new client.Counter({
    name: "tollgate_extproc_malformed_streams_total",
    help: "ext_proc streams ended for breaking the protocol, by reason " +
      "(undecodable_message, second_request_headers, malformed_request, http2_connection_error)",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly #socketLosses = new client.Counter({
    name: "tollgate_extproc_socket_lost_total",
    help: "Times the ext_proc socket file was found removed or replaced (it is then recreated)",
    registers: [this.registry],
  });
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
  readonly #auditDropped = new client.Counter({
    name: "tollgate_audit_dropped_total",
    help: "Exchanges an auditing policy never saw because its queue (limits.auditQueue) was full; " +
      "the policy is named in the log",
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

  // Observed on every Python call: cells bound once (./cells.ts), at zero from the start.
  readonly #pythonCalls = new HistogramFamily(
    "tollgate_python_call_duration_seconds",
    "Round trips to the Python executor (one per batch of adjacent Python policies), by outcome",
    ["outcome"],
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30],
    this.registry,
  );
  readonly #pythonCallCells = {
    ok: this.#pythonCalls.cell({ outcome: "ok" }),
    timeout: this.#pythonCalls.cell({ outcome: "timeout" }),
    unavailable: this.#pythonCalls.cell({ outcome: "unavailable" }),
  };
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
    this.#pythonCallCells[outcome].observe(seconds);
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
    this.#streamsActive.set(active);
  }

  constructor() {
    // Families with fixed label values exist at zero from the start (alerts see no gaps).
    for (const result of ["applied", "rejected"]) this.#reloads.inc({ result }, 0);
    for (const reason of ["unknown_route", "no_route_name"]) {
      for (const action of ["pass", "deny", "default"]) this.#unmatched.inc({ reason, action }, 0);
    }
    for (
      const reason of [
        "undecodable_message",
        "second_request_headers",
        "malformed_request",
        "http2_connection_error",
      ]
    ) {
      this.#malformedStreams.inc({ reason }, 0);
    }
  }

  /** The watchdog's families at zero for every compiled-in policy (`name:vMAJOR`) and for none (control plane). */
  watchdogSeries(policies: readonly string[]): void {
    this.#workerReplacements.inc({ policy: "" }, 0);
    for (const policy of policies) {
      this.#workerReplacements.inc({ policy }, 0);
      this.#quarantines.inc({ policy }, 0);
    }
  }

  #collectQuarantined(): void {
    // Several versions of one policy on a route share the series: 1 if one is quarantined.
    const values = new Map<string, { route: string; policy: string; value: number }>();
    for (const { route, policy, label } of this.#routes.tracked) {
      const key = `${route}\0${policy}`;
      const value = this.quarantined(route, label) ? 1 : 0;
      values.set(key, { route, policy, value: Math.max(value, values.get(key)?.value ?? 0) });
    }
    this.#quarantinedPolicies.reset();
    for (const { route, policy, value } of values.values()) {
      this.#quarantinedPolicies.set({ route, policy }, value);
    }
  }

  /** The engine's identity (control plane only). */
  buildInfo(version: string, policies: number): void {
    this.#buildInfo.set({ version, deno: Deno.version.deno, policies: String(policies) }, 1);
  }

  /** A config was applied (at startup or by a reload). */
  configApplied(): void {
    this.#configGeneration.inc();
    this.#configReloadedAt.set(Date.now() / 1000);
  }

  /** Takes a route table into service: its routes' and policies' series, at zero (./route_metrics.ts). */
  track(table: RouteTable): void {
    this.#routes.track(table);
  }

  /** The cells of a tracked entry, for {@link policyDecided}. */
  entryCells(entry: ChainEntry): EntryCells | undefined {
    return this.#routes.entry(entry);
  }

  policyDecided(cells: EntryCells, decision: DecisionEntry): void {
    this.#routes.policyDecided(cells, decision);
  }

  exchangeDone(summary: ExchangeSummary): void {
    this.#routes.exchangeDone(summary);
  }

  pythonBatch(route: string, phase: Phase, seconds: number): void {
    this.#routes.pythonBatch(route, phase, seconds);
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

  auditDropped(_label: string): void {
    this.#auditDropped.inc();
  }

  configReloaded(result: "applied" | "rejected"): void {
    this.#reloads.inc({ result });
  }
}
