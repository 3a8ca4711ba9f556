/**
 * Running auditing policies (`kind: audit`): once an exchange is over, every auditing
 * policy of its chain gets a frozen record of it (the request as the client sent it, the
 * status, the decision trace). Each policy instance has a bounded queue and runs one record
 * at a time, off the request path: a slow or failing audit never delays or changes a
 * response; when its queue is full the record is dropped and counted.
 */
import { getLogger } from "@logtape/logtape";
import { overallDecision } from "../observe/decision_trace.ts";
import { scrubSecrets } from "../observe/scrub.ts";
import type { AuditPolicy, AuditRecord } from "../sdk/audit.ts";
import type { Params } from "../sdk/policy.ts";
import { withTimeout } from "./timeout.ts";
import type { ExchangeState } from "./state.ts";

const log = getLogger(["tollgate", "audit"]);

/** At most one "queue full" line per policy instance this often. */
const DROP_LOG_INTERVAL_MS = 10_000;

/** Runs jobs one at a time; holds at most `capacity` waiting. */
export class AuditQueue {
  readonly #jobs: (() => Promise<void>)[] = [];
  #running: Promise<void> | undefined;

  constructor(readonly capacity: number) {}

  /** Queues `job`; false (and nothing queued) when the queue is full. */
  offer(job: () => Promise<void>): boolean {
    if (this.#jobs.length >= this.capacity) return false;
    this.#jobs.push(job);
    this.#running ??= this.#pump();
    return true;
  }

  async #pump(): Promise<void> {
    // Never on the caller's turn: the exchange finishes before any audit starts.
    await Promise.resolve();
    for (let job = this.#jobs.shift(); job; job = this.#jobs.shift()) await job();
    this.#running = undefined;
  }

  /** Resolves once the queue is empty, or after `maxMs` (a stuck audit must not hold a shutdown). */
  async drain(maxMs: number): Promise<void> {
    if (!this.#running) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => timer = setTimeout(resolve, maxMs));
    await Promise.race([this.#running, late]);
    clearTimeout(timer);
  }
}

/** One auditing policy of a chain. */
export interface AuditEntry {
  /** `name:vMAJOR`. */
  readonly label: string;
  readonly policy: AuditPolicy;
  readonly params: Params;
  /** Secret parameter values, scrubbed from its logged errors. */
  readonly secrets: readonly string[];
  /** Deadline of one call; a call past it is abandoned (logged) and the queue goes on. */
  readonly timeoutMs: number | undefined;
  readonly queue: AuditQueue;
}

/** Counts records an auditing policy's full queue refused (`tollgate_audit_dropped_total`). */
export interface AuditObserver {
  auditDropped(label: string): void;
}

const lastDropLog = new WeakMap<AuditEntry, number>();

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !ArrayBuffer.isView(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** The record of a finished exchange, frozen, without its body (each policy gets its own copy). */
function recordOf(state: ExchangeState, now: number): Omit<AuditRecord, "body"> {
  const received = state.received;
  const trace = state.trace.map((entry) => ({ ...entry }));
  return deepFreeze({
    requestId: state.shared.requestId,
    route: state.shared.route.name,
    method: state.method,
    path: received?.path ?? state.path,
    authority: state.authority,
    clientAddress: state.clientAddress,
    status: state.finalStatus,
    decision: overallDecision(trace),
    headers: received?.headers.map(([name, value]) => [name, value] as const) ?? [],
    trace,
    startedAt: received?.at ?? now,
    durationMs: received ? now - received.at : 0,
  });
}

async function runAudit(
  entry: AuditEntry,
  record: AuditRecord,
  defaultTimeoutMs: number | undefined,
): Promise<void> {
  try {
    const result: unknown = await withTimeout(
      Promise.resolve().then(() => entry.policy.audit(record, entry.params)),
      entry.timeoutMs ?? defaultTimeoutMs,
      entry.label,
    );
    if (result !== undefined) {
      log.warn(
        "auditing policy {policy} returned a value: auditing policies cannot change traffic; ignored",
        {
          policy: entry.label,
          requestId: record.requestId,
          route: record.route,
        },
      );
    }
  } catch (error) {
    log.warn("auditing policy {policy} failed: {reason}", {
      policy: entry.label,
      reason: scrubSecrets(String((error as Error)?.message ?? error), entry.secrets),
      requestId: record.requestId,
      route: record.route,
    });
  }
}

/**
 * Hands the finished exchange to each auditing policy's queue. Never throws and never
 * waits: it runs as the exchange ends.
 */
export function dispatchAudits(
  audits: readonly AuditEntry[],
  state: ExchangeState,
  observer: AuditObserver | undefined,
  defaultTimeoutMs: number | undefined,
): void {
  const now = Date.now();
  const shared = recordOf(state, now);
  const body = state.received?.body;
  for (const entry of audits) {
    const record: AuditRecord = Object.freeze({ ...shared, body: body && body.slice() });
    if (entry.queue.offer(() => runAudit(entry, record, defaultTimeoutMs))) continue;
    observer?.auditDropped(entry.label);
    if (now - (lastDropLog.get(entry) ?? -Infinity) >= DROP_LOG_INTERVAL_MS) {
      lastDropLog.set(entry, now);
      log.warn("auditing policy {policy} is behind: its queue of {capacity} is full, records are dropped", {
        policy: entry.label,
        capacity: entry.queue.capacity,
        route: shared.route,
      });
    }
  }
}
