/**
 * Runs a slice of a chain for one phase: request policies in chain order, response policies
 * in reverse order, each seeing the changes of the ones before. An immediate response stops
 * the chain; a failure follows the policy's rule (deny, continue, skipRemaining).
 */
import { Body } from "../sdk/context.ts";
import {
  applyRequestModifications,
  applyResponseModifications,
  checkActionFields,
  InvalidActionError,
} from "./apply.ts";
import type { AnyAction, ChainEntry, PolicyOutcome } from "./chain.ts";
import { ChunkPipeline } from "./chunks.ts";
import { PolicyFailure } from "./failure.ts";
import {
  decide,
  type ImmediateOutcome,
  NEXT,
  NOT_RUN,
  type Phase,
  type PolicyGuard,
  type RunObserver,
  settleFailure,
  type Step,
  type Stop,
  type Timing,
  toImmediate,
  type Verdict,
} from "./outcome.ts";
import { type ExchangeState, PolicyCall } from "./state.ts";
import { withTimeout } from "./timeout.ts";

export type { ImmediateOutcome, Phase, PolicyGuard, RunObserver } from "./outcome.ts";

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === "function";
}

/**
 * Calls one policy. A policy that answers synchronously gets its outcome back synchronously:
 * most policies never wait, and a promise per call is a microtask and a few allocations on
 * every request.
 */
function invoke(
  entry: ChainEntry,
  phase: Phase,
  state: ExchangeState,
  defaultTimeoutMs: number | undefined,
  guard: PolicyGuard | undefined,
): PolicyOutcome | Promise<PolicyOutcome> {
  let result: AnyAction | Promise<AnyAction>;
  let call: PolicyCall;
  try {
    const refused = guard?.enter(entry.label);
    if (refused !== undefined) return { error: new PolicyFailure("unavailable", refused) };
    call = new PolicyCall(state);
    try {
      result = phase === "request"
        ? entry.policy.onRequest?.(state.requestViewFor(call), entry.params)
        : entry.policy.onResponse?.(state.responseViewFor(call), entry.params);
    } finally {
      guard?.leave();
    }
  } catch (error) {
    return { error };
  }
  if (!isPromise(result)) return { action: result };
  const ms = entry.timeoutMs ?? defaultTimeoutMs;
  return withTimeout(result, ms, entry.label, (message) => call.timedOut(message)).then(
    (action): PolicyOutcome => ({ action }),
    (error): PolicyOutcome => ({ error }),
  );
}

function applyAction(entry: ChainEntry, phase: Phase, action: AnyAction, state: ExchangeState) {
  if (action === undefined || action === null) return undefined;
  checkActionFields(action, action.kind);
  if (action.kind === "immediate-response") return toImmediate(action, entry.label);
  if (phase === "request" && action.kind === "upstream-request") {
    return applyRequestModifications(state, action);
  }
  if (phase === "response" && action.kind === "upstream-response") {
    return applyResponseModifications(state, action);
  }
  throw new InvalidActionError(
    `returned a ${(action as { kind?: string }).kind ?? typeof action} action in the ${phase} phase`,
  );
}

/** The end of the batch starting at `i`: adjacent entries of the same runner without conditions. */
function batchEnd(entries: readonly ChainEntry[], i: number, to: number): number {
  let end = i + 1;
  while (end < to && entries[end].batch === entries[i].batch && !entries[end].condition) end++;
  return end;
}

function settle(
  entry: ChainEntry,
  outcome: PolicyOutcome,
  phase: Phase,
  state: ExchangeState,
  timing: Timing,
  observer: RunObserver | undefined,
): Step {
  let immediate: ImmediateOutcome | undefined;
  let action: AnyAction | undefined;
  try {
    if ("error" in outcome) throw outcome.error;
    action = outcome.action;
    immediate = applyAction(entry, phase, action, state) ?? undefined;
  } catch (error) {
    return settleFailure(entry, error, phase, state, timing, observer);
  }
  const verdict: Verdict = immediate
    ? { outcome: "denied", reason: String(immediate.statusCode) }
    : { outcome: modifies(action) ? "modified" : "passed" };
  decide(entry, phase, state, verdict, observer, timing);
  return immediate ? { stop: true, cause: "short_circuit", immediate } : NEXT;
}

/** A field of a modifications object that asks for nothing: an empty list or an empty record. */
function asksNothing(value: unknown): boolean {
  if (value === undefined) return true;
  if (Array.isArray(value)) return value.length === 0;
  // Bytes are a body, even an empty one (it clears the body).
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return false;
  return Object.keys(value).length === 0;
}

/**
 * Whether an action asks for a change to the exchange (what the trace calls `modified`, and
 * what makes audit-log keep only hashes): analytics values alone, or a modifications object
 * with nothing in it, leave it as it was.
 */
function modifies(action: AnyAction | undefined): boolean {
  if (action === undefined || action === null) return false;
  return Object.entries(action).some(([key, value]) =>
    key !== "kind" && key !== "analyticsMetadata" && !asksNothing(value)
  );
}

/** Records the entries a stop left out as skipped, with what stopped the chain. */
function skipRest(
  entries: readonly ChainEntry[],
  from: number,
  to: number,
  phase: Phase,
  state: ExchangeState,
  reason: string,
  observer: RunObserver | undefined,
): void {
  for (let k = from; k < to; k++) decide(entries[k], phase, state, { outcome: "skipped", reason }, observer);
}

const streams = (entry: ChainEntry, phase: Phase) =>
  (phase === "request" ? entry.mode.requestBodyMode : entry.mode.responseBodyMode) === "STREAM";

/**
 * A streaming policy in a buffered direction (its chain mixes BUFFER and STREAM policies)
 * gets the whole body as its one and last chunk, right after its header handler.
 */
function wholeBodyChunk(
  entry: ChainEntry,
  phase: Phase,
  state: ExchangeState,
  observer: RunObserver | undefined,
  defaultTimeoutMs: number | undefined,
): Step | Promise<Step> {
  const body = phase === "request" ? state.requestBody : state.responseBody;
  if (!body || !streams(entry, phase)) return NEXT;
  return wholeBodyChunkOf(entry, body, phase, state, observer, defaultTimeoutMs);
}

async function wholeBodyChunkOf(
  entry: ChainEntry,
  body: Body,
  phase: Phase,
  state: ExchangeState,
  observer: RunObserver | undefined,
  defaultTimeoutMs: number | undefined,
): Promise<Step> {
  const limits = { maxAccumulatedBytes: Infinity, defaultTimeoutMs };
  const step = await new ChunkPipeline([entry], phase, state, limits, observer).push(body.content, true);
  if ("end" in step) return { stop: true, cause: "short_circuit", immediate: step.end };
  if (step.data !== body.content) {
    const replaced = new Body(step.data, body.endOfStream);
    if (phase === "request") state.requestBody = replaced;
    else state.responseBody = replaced;
    state.changes.body = true;
  }
  return NEXT;
}

/** Whether the entry's condition (if any) lets it run, or the error evaluating it failed with. */
function conditionHolds(entry: ChainEntry, phase: Phase, state: ExchangeState): boolean | { error: unknown } {
  if (!entry.condition) return true;
  try {
    return entry.condition(state, phase);
  } catch (error) {
    return { error };
  }
}

/**
 * Runs `entries[from, to)` for `phase`. Returns the immediate response that stopped the
 * chain, if any; otherwise the state holds the policies' changes. An asynchronous policy
 * without its own timeout gets `defaultTimeoutMs` (`limits.policyTimeout`); a synchronous
 * one cannot be interrupted (docs/architecture.md, known limitations).
 *
 * Adjacent entries sharing a batch runner (Python policies) go to it in one call; it
 * returns one outcome per policy, which are settled here exactly as if each policy had run
 * alone, so batching never changes results.
 *
 * Synchronous as long as no policy (or batch) returns a promise: only a policy that waits
 * makes the rest of the chain wait.
 */
export function runPolicies(
  entries: readonly ChainEntry[],
  from: number,
  to: number,
  phase: Phase,
  state: ExchangeState,
  observer?: RunObserver,
  defaultTimeoutMs?: number,
): ImmediateOutcome | undefined | Promise<ImmediateOutcome | undefined> {
  return new ChainRun(entries, to, phase, state, observer, defaultTimeoutMs).from(from);
}

/** A batch's outcomes, or one policy's. */
type Ran = readonly PolicyOutcome[] | PolicyOutcome;

/** What a run (or the rest of one) ends in: now when nothing waited, else later. */
type Result = ImmediateOutcome | undefined | Promise<ImmediateOutcome | undefined>;

/** One call's outcomes for `entries[from, end)` and its timing. */
interface SettledCall {
  readonly from: number;
  readonly end: number;
  readonly outcomes: readonly PolicyOutcome[];
  readonly started: number;
  /** Each policy's share of the call's time. */
  readonly share: number;
}

/** One run of `entries[…, to)`, resumed after each call that waited. */
class ChainRun {
  constructor(
    private readonly entries: readonly ChainEntry[],
    private readonly to: number,
    private readonly phase: Phase,
    private readonly state: ExchangeState,
    private readonly observer: RunObserver | undefined,
    private readonly defaultTimeoutMs: number | undefined,
  ) {}

  /** Runs from entry `i` on; a promise only from the first call that returned one. */
  from(i: number): Result {
    const { entries, to, phase, state, observer } = this;
    for (; i < to; i++) {
      const entry = entries[i];
      const runs = conditionHolds(entry, phase, state);
      if (runs === true) {
        const end = entry.batch ? batchEnd(entries, i, to) : i + 1;
        const started = performance.now();
        const ran: Ran | Promise<Ran> = entry.batch
          ? entry.batch.run(entries.slice(i, end), phase, state)
          : invoke(entry, phase, state, this.defaultTimeoutMs, observer?.guard);
        const at = i;
        return isPromise(ran)
          ? ran.then((outcomes) => this.#settled(at, end, outcomes, started))
          : this.#settled(at, end, ran, started);
      }
      // A condition that cannot be evaluated is a failure of its policy, never a skip.
      if (runs === false) {
        decide(entry, phase, state, { outcome: "skipped", reason: "condition_false" }, observer);
      } else {
        const step = settle(entry, runs, phase, state, NOT_RUN, observer);
        if (step.stop) return this.#finish(step, i);
      }
    }
    return undefined;
  }

  /** Settles the outcomes of `entries[from, end)`, which ran as one call started at `started`. */
  #settled(from: number, end: number, ran: Ran, started: number): Result {
    const outcomes = Array.isArray(ran) ? ran as readonly PolicyOutcome[] : [ran as PolicyOutcome];
    // A batch's time is shared evenly by the policies that ran in it.
    const share = (performance.now() - started) / Math.max(outcomes.length, 1);
    return this.#settleFrom({ from, end, outcomes, started, share }, from);
  }

  /** Settles the call's outcomes from entry `k` on (where a whole-body chunk that waited resumes), then the rest. */
  #settleFrom(call: SettledCall, k: number): Result {
    const { entries, phase, state, observer } = this;
    const { from, end, outcomes, started, share } = call;
    const batched = !!entries[from].batch;
    for (; k < end; k++) {
      const outcome = outcomes[k - from] ??
        { error: new PolicyFailure("error", "the runtime returned no result") };
      const timing = { startedMs: started + (k - from) * share, durationMs: share, batched };
      const step = settle(entries[k], outcome, phase, state, timing, observer);
      if (step.stop) return this.#finish(step, k);
      const chunkStep = wholeBodyChunk(entries[k], phase, state, observer, this.defaultTimeoutMs);
      if (isPromise(chunkStep)) {
        const at = k;
        return chunkStep.then((step) => step.stop ? this.#finish(step, at) : this.#settleFrom(call, at + 1));
      }
      if (chunkStep.stop) return this.#finish(chunkStep, k);
    }
    return this.from(end);
  }

  /** After an immediate response Envoy sends nothing more: the rest of the phase never runs. */
  #finish(step: Stop, at: number): ImmediateOutcome | undefined {
    const { entries, to, phase, state, observer } = this;
    skipRest(entries, at + 1, step.immediate ? entries.length : to, phase, state, step.cause, observer);
    return step.immediate;
  }
}
