/**
 * What the control plane (main thread) and a data-plane worker say to each other. Every
 * request carries an id its reply repeats; notices (no id) need no reply.
 */
import type { ConfigDefaults, ConfigEnv } from "../config/load.ts";
import type { Problem } from "../config/problem.ts";
import type { QuarantinedPolicy } from "./failure_quarantine.ts";
import type { QuarantineList } from "./quarantine.ts";

/** A config as the control plane validated it: workers parse the same text. */
export interface ConfigText {
  readonly text: string;
  readonly source: string;
  readonly env: ConfigEnv;
  readonly defaults: ConfigDefaults;
}

/** Python policies the executor failed to load: registry key → reason. */
export type FailedPython = readonly (readonly [string, string])[];

export type WorkerRequest =
  /** Load the policies, build the table and start serving (the reply says it listens). */
  | {
    readonly type: "start";
    /** This worker's place among `workers` (which socket or port it listens on). */
    readonly index: number;
    readonly workers: number;
    readonly registryModule: string;
    readonly config: ConfigText;
    readonly python: boolean;
    readonly failedPython: FailedPython;
    /** Which executor processes are healthy now, by index (python.processes). */
    readonly pythonHealthy: readonly boolean[];
    /** Shared with the watchdog (./liveness.ts). */
    readonly liveness: SharedArrayBuffer;
    readonly heartbeatMs: number;
    readonly quarantine: QuarantineList;
  }
  /** Build a table for a new config and hold it until "commit" or "abort". */
  | { readonly type: "build"; readonly config: ConfigText; readonly failedPython: FailedPython }
  /** Swap in the held table; the reply lists the protection it drops. */
  | { readonly type: "commit" }
  | { readonly type: "abort" }
  /** prom-client's getMetricsAsJSON() of the worker's registry. */
  | { readonly type: "metrics" }
  /** Readiness and the running route table. */
  | { readonly type: "status" }
  /**
   * A successor executor took over process `index`'s socket: new calls go to it on a connection of their
   * own; the reply comes once the calls on the old connection are answered.
   */
  | { readonly type: "python-replaced"; readonly index: number }
  /** Drain within the grace period and close everything. */
  | { readonly type: "stop"; readonly graceMs: number };

/** Notices from the control plane: an executor is back or down, or the quarantine changed. */
export type WorkerNotice =
  /** Executor process `index` is healthy again (after a start or restart): retry now rather than after backoff. */
  | { readonly type: "python-ready"; readonly index: number }
  /** Executor process `index` stopped being healthy: send calls to the others. */
  | { readonly type: "python-down"; readonly index: number }
  /** The policies quarantined now (each with the time its quarantine ends). */
  | { readonly type: "quarantine"; readonly list: QuarantineList };

export type ToWorker = { readonly id: number; readonly request: WorkerRequest } | WorkerNotice;

/** Why a request failed, as data (errors do not cross threads with their class). */
export interface WorkerError {
  readonly message: string;
  /** Set when the failure was a ProblemsError. */
  readonly summary?: string;
  readonly problems?: readonly Problem[];
}

export type FromWorker =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: WorkerError };

/** A worker's answer to "status". */
export interface WorkerStatus {
  readonly unready: readonly string[];
  readonly routes: RoutesView;
  /** Policies in the failure quarantine now. */
  readonly quarantined: readonly QuarantinedPolicy[];
}

/** GET /routes as one worker sees it (request counts are that worker's). */
export interface RoutesView {
  readonly source: string;
  readonly routes: readonly { readonly name: string; readonly requests: number }[];
  readonly unmatched: { readonly requests: number };
  readonly [key: string]: unknown;
}
