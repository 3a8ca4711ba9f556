/**
 * The per-route and per-policy metric families. Their series are created, at zero, when a
 * route table is taken into service ({@link RouteMetrics.track}: every configured route ×
 * outcome, every route × policy × phase), and removed for routes and policies a new table
 * no longer has, so alerts see every series from the start and label values only ever come
 * from the config. A request only adds to cells bound then (./cells.ts).
 */
import type { Registry } from "prom-client";
import type { Chain, ChainEntry } from "../chain/chain.ts";
import type { FailureKind } from "../chain/failure.ts";
import type { Phase } from "../chain/run.ts";
import type { ExchangeSummary, RequestOutcome } from "../extproc/stream.ts";
import type { RouteTable } from "../kernel/routes.ts";
import { type CounterCell, CounterFamily, type HistogramCell, HistogramFamily } from "./cells.ts";
import type { DecisionEntry, DecisionOutcome } from "./decision_trace.ts";

/** The `route` label of requests whose route has no chain (config route names are never empty). */
export const UNMATCHED_ROUTE = "";

const REQUEST_OUTCOMES: readonly RequestOutcome[] = ["passed", "denied", "failed"];
const POLICY_OUTCOMES: readonly DecisionOutcome[] = ["passed", "modified", "denied", "failed", "skipped"];
const FAILURE_KINDS: readonly FailureKind[] = ["error", "timeout", "unavailable"];

const REQUEST_BUCKETS = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  5,
];
const POLICY_BUCKETS = [
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.5,
  1,
];
const PYTHON_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5, 30];

interface RouteCells {
  readonly requests: Record<RequestOutcome, CounterCell>;
  readonly duration: HistogramCell;
}

interface PhaseCells {
  readonly executions: Record<DecisionOutcome, CounterCell>;
  readonly duration: HistogramCell;
}

/** An entry's cells, and the route it is configured on (`(default)` for the default chain). */
export interface EntryCells {
  readonly route: string;
  readonly phases: Partial<Record<Phase, PhaseCells>>;
  readonly failures: Record<FailureKind, CounterCell>;
}

/** A route × policy the current table has: what `tollgate_policy_quarantined` reports on. */
export interface TrackedPolicy {
  readonly route: string;
  /** The policy's name (the metric label). */
  readonly policy: string;
  /** `name:vMAJOR`, as the watchdog names it. */
  readonly label: string;
}

const record = <K extends string, V>(keys: readonly K[], value: (key: K) => V) =>
  Object.fromEntries(keys.map((key) => [key, value(key)])) as Record<K, V>;

export class RouteMetrics {
  readonly #requests: CounterFamily;
  readonly #requestDuration: HistogramFamily;
  readonly #executions: CounterFamily;
  readonly #policyDuration: HistogramFamily;
  readonly #failures: CounterFamily;
  readonly #pythonBatches: HistogramFamily;

  #routes = new WeakMap<Chain, RouteCells>();
  #entries = new WeakMap<ChainEntry, EntryCells>();
  #unmatched: RouteCells;
  #pythonCells = new Map<string, HistogramCell>();
  #tracked: readonly TrackedPolicy[] = [];

  constructor(registry: Registry) {
    this.#requests = new CounterFamily(
      "tollgate_requests_total",
      "Requests by route and outcome (passed, denied by a policy or a limit, failed: a policy failure " +
        'decided the response, unmatched: the route has no chain, with route="")',
      ["route", "outcome"],
      registry,
    );
    this.#requestDuration = new HistogramFamily(
      "tollgate_request_duration_seconds",
      "Time spent in Tollgate per request, every phase of the exchange summed, by route",
      ["route"],
      REQUEST_BUCKETS,
      registry,
    );
    this.#executions = new CounterFamily(
      "tollgate_policy_executions_total",
      "Policy executions by route, policy, version, phase and outcome (passed, modified, denied, failed, skipped)",
      ["route", "policy", "version", "phase", "outcome"],
      registry,
    );
    this.#policyDuration = new HistogramFamily(
      "tollgate_policy_duration_seconds",
      "Time spent in one policy call (a batch of Python policies shares its round trip's time evenly)",
      ["route", "policy", "version", "phase"],
      POLICY_BUCKETS,
      registry,
    );
    this.#failures = new CounterFamily(
      "tollgate_policy_failures_total",
      "Policy failures by route, policy, version and kind (error, timeout, unavailable), whatever the onFailure rule",
      ["route", "policy", "version", "kind"],
      registry,
    );
    this.#pythonBatches = new HistogramFamily(
      "tollgate_python_batch_duration_seconds",
      "Time of one call to the Python executor (a batch of adjacent Python policies), by route and phase",
      ["route", "phase"],
      PYTHON_BUCKETS,
      registry,
    );
    this.#unmatched = this.#routeCells(UNMATCHED_ROUTE);
  }

  #routeCells(route: string): RouteCells {
    return {
      requests: route === UNMATCHED_ROUTE
        ? {
          ...record(REQUEST_OUTCOMES, () => ({ value: 0 })),
          unmatched: this.#requests.cell({ route, outcome: "unmatched" }),
        }
        : {
          ...record(REQUEST_OUTCOMES, (outcome) => this.#requests.cell({ route, outcome })),
          unmatched: { value: 0 },
        },
      duration: this.#requestDuration.cell({ route }),
    };
  }

  #entryCells(route: string, entry: ChainEntry, phases: readonly Phase[]): EntryCells {
    const labels = { route, policy: entry.name, version: entry.version };
    return {
      route,
      phases: Object.fromEntries(phases.map((phase) => [phase, {
        executions: record(
          POLICY_OUTCOMES,
          (outcome) => this.#executions.cell({ ...labels, phase, outcome }),
        ),
        duration: this.#policyDuration.cell({ ...labels, phase }),
      }])),
      failures: record(FAILURE_KINDS, (kind) => this.#failures.cell({ ...labels, kind })),
    };
  }

  /** Takes `table` into service: creates its series and removes those of what it no longer has. */
  track(table: RouteTable): void {
    const routes = new Set<string>([UNMATCHED_ROUTE]);
    const policies = new Set<string>();
    const python = new Set<string>();
    const tracked: TrackedPolicy[] = [];
    const routeCells = new WeakMap<Chain, RouteCells>();
    const entryCells = new WeakMap<ChainEntry, EntryCells>();
    for (const chain of table.allChains()) {
      const route = chain.route.name;
      if (chain !== table.defaultChain) {
        routes.add(route);
        routeCells.set(chain, this.#routeCells(route));
      }
      for (const entry of chain.entries) {
        const phases = (["request", "response"] as const).filter((phase) => chain[phase].includes(entry));
        entryCells.set(entry, this.#entryCells(route, entry, phases));
        policies.add(`${route}\0${entry.name}\0${entry.version}`);
        tracked.push({ route, policy: entry.name, label: entry.label });
        if (entry.batch) { for (const phase of phases) python.add(`${route}\0${phase}`); }
      }
    }
    const routeGone = (labels: Readonly<Record<string, string>>) => !routes.has(labels.route);
    this.#requests.removeWhere(routeGone);
    this.#requestDuration.removeWhere(routeGone);
    const policyGone = (l: Readonly<Record<string, string>>) =>
      !policies.has(`${l.route}\0${l.policy}\0${l.version}`);
    this.#executions.removeWhere(policyGone);
    this.#policyDuration.removeWhere(policyGone);
    this.#failures.removeWhere(policyGone);
    this.#pythonBatches.removeWhere((l) => !python.has(`${l.route}\0${l.phase}`));
    this.#pythonCells = new Map(
      [...python].map((key) => {
        const [route, phase] = key.split("\0");
        return [key, this.#pythonBatches.cell({ route, phase })];
      }),
    );
    this.#routes = routeCells;
    this.#entries = entryCells;
    this.#tracked = tracked;
  }

  /** Every route × policy of the table in service. */
  get tracked(): readonly TrackedPolicy[] {
    return this.#tracked;
  }

  /** The cells of an entry of the table in service (undefined for one never tracked). */
  entry(entry: ChainEntry): EntryCells | undefined {
    return this.#entries.get(entry);
  }

  policyDecided(cells: EntryCells, decision: DecisionEntry): void {
    const phase = cells.phases[decision.phase];
    if (phase) {
      phase.executions[decision.outcome].value++;
      if (decision.outcome !== "skipped") phase.duration.observe(decision.durationMs / 1000);
    }
    if (decision.outcome === "failed") {
      const failure = cells.failures[decision.reason as FailureKind];
      if (failure) failure.value++;
    }
  }

  exchangeDone(summary: ExchangeSummary): void {
    const cells = summary.outcome === "unmatched"
      ? this.#unmatched
      : summary.chain && this.#routes.get(summary.chain);
    // A chain of a table already replaced: its series may be gone; nothing is recreated for it.
    if (!cells) return;
    cells.requests[summary.outcome].value++;
    cells.duration.observe(summary.seconds);
  }

  /** One call to the Python executor for a batch of `route`'s policies. */
  pythonBatch(route: string, phase: Phase, seconds: number): void {
    this.#pythonCells.get(`${route}\0${phase}`)?.observe(seconds);
  }
}
