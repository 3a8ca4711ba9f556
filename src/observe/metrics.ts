/**
 * Prometheus metrics (prom-client), served on the admin endpoint's /metrics. Names start
 * with `tollgate_`; see docs/observability.md for the list.
 */
import client from "prom-client";
import type { Phase } from "../executor/run.ts";

export class Metrics {
  readonly registry = new client.Registry();

  readonly #streamsActive = new client.Gauge({
    name: "tollgate_extproc_streams_active",
    help: "ext_proc streams currently open (one per in-flight HTTP request)",
    registers: [this.registry],
  });
  readonly #policyRuns = new client.Histogram({
    name: "tollgate_policy_duration_seconds",
    help: "Time spent in one policy call, by policy, phase and outcome (ok, immediate, failed)",
    labelNames: ["policy", "phase", "outcome"],
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [this.registry],
  });
  readonly #immediate = new client.Counter({
    name: "tollgate_immediate_responses_total",
    help: "Immediate responses sent to Envoy, by deciding policy and status",
    labelNames: ["policy", "status"],
    registers: [this.registry],
  });
  readonly #reloads = new client.Counter({
    name: "tollgate_config_reloads_total",
    help: "Config reloads, by result (applied or rejected)",
    labelNames: ["result"],
    registers: [this.registry],
  });

  streamsChanged(active: number): void {
    this.#streamsActive.set(active);
  }

  policyRan(label: string, phase: Phase, outcome: "ok" | "immediate" | "failed", seconds: number): void {
    this.#policyRuns.observe({ policy: label, phase, outcome }, seconds);
  }

  immediateResponse(policy: string, status: number): void {
    this.#immediate.inc({ policy, status: String(status) });
  }

  configReloaded(result: "applied" | "rejected"): void {
    this.#reloads.inc({ result });
  }
}
