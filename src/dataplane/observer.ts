/**
 * What a data-plane worker's ext_proc server and Python clients report to: the worker's
 * metrics, the failure quarantine, the watchdog's guard and the access log. Every policy
 * execution arrives here once (policyDecided) and every finished exchange once
 * (exchangeDone); this is the one place that fans them out.
 */
import { getLogger } from "@logtape/logtape";
import type { ChainEntry } from "../chain/chain.ts";
import type { PolicyGuard } from "../chain/run.ts";
import type { ServerObserver } from "../extproc/options.ts";
import type { ExchangeSummary } from "../extproc/stream.ts";
import type { UnmatchedAction, UnmatchedReason } from "../kernel/unmatched.ts";
import type { DecisionEntry } from "../observe/decision_trace.ts";
import type { Metrics } from "../observe/metrics.ts";
import type { BatchObserver } from "../python/bridge.ts";
import type { ClientObserver } from "../python/client.ts";
import type { SupervisorObserver } from "../python/supervisor.ts";
import type { FailureQuarantine } from "./failure_quarantine.ts";

const accessLog = getLogger(["tollgate", "access"]);

export class DataPlaneObserver implements ServerObserver, ClientObserver, SupervisorObserver, BatchObserver {
  constructor(
    readonly metrics: Metrics,
    readonly guard: PolicyGuard,
    private readonly quarantine: FailureQuarantine,
    /** Whether to write an access-log line per request (`log.requests`, reloadable). */
    private readonly logRequests: () => boolean,
  ) {}

  policyDecided(entry: ChainEntry, decision: DecisionEntry): void {
    const cells = this.metrics.entryCells(entry);
    if (!cells) return;
    this.metrics.policyDecided(cells, decision);
    if (decision.outcome === "failed") this.quarantine.failed(cells.route, entry.label);
  }

  exchangeDone(summary: ExchangeSummary): void {
    this.metrics.exchangeDone(summary);
    if (!this.logRequests()) return;
    accessLog.info("request {requestId} on route {route}: {outcome}, status {status}, {durationMs}ms", {
      requestId: summary.requestId,
      route: summary.route,
      outcome: summary.outcome,
      status: summary.status,
      durationMs: Math.round(summary.seconds * 1e6) / 1000,
    });
  }

  auditDropped(label: string): void {
    this.metrics.auditDropped(label);
  }

  immediateResponse(policy: string, status: number): void {
    this.metrics.immediateResponse(policy, status);
  }

  unmatchedRequest(reason: UnmatchedReason, action: UnmatchedAction): void {
    this.metrics.unmatchedRequest(reason, action);
  }

  streamsChanged(active: number): void {
    this.metrics.streamsChanged(active);
  }

  malformedStream(reason: string): void {
    this.metrics.malformedStream(reason);
  }

  socketLost(): void {
    this.metrics.socketLost();
  }

  pythonBatch(route: string, phase: "request" | "response", seconds: number): void {
    this.metrics.pythonBatch(route, phase, seconds);
  }

  pythonCall(outcome: "ok" | "timeout" | "unavailable", seconds: number): void {
    this.metrics.pythonCall(outcome, seconds);
  }

  pythonInFlight(count: number): void {
    this.metrics.pythonInFlight(count);
  }

  pythonStreamBroken(): void {
    this.metrics.pythonStreamBroken();
  }

  executorRestarted(): void {
    this.metrics.executorRestarted();
  }

  executorState(state: string): void {
    this.metrics.executorState(state);
  }

  executorOverdueWorkers(count: number): void {
    this.metrics.executorOverdueWorkers(count);
  }
}
