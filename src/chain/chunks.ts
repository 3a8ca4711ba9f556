/**
 * Runs a streamed body through a direction's chunk policies: request policies in chain
 * order, response policies in reverse order, each on the previous one's output, exactly
 * like the buffered path. Each stage (one TypeScript policy, or adjacent Python policies with
 * the same `streaming` settings run as one batch) has its own accumulator, so it sees only
 * the units it asked for. One Envoy chunk in, one chunk out (possibly empty: held back).
 */
import type { ImmediateResponseInit } from "../sdk/actions.ts";
import { type ChunkAction, ChunkEnd, ChunkReplacement } from "../sdk/chunk.ts";
import type { RequestChunkContext, ResponseChunkContext } from "../sdk/chunk.ts";
import { Accumulator } from "./accumulate.ts";
import { bodyBytes, InvalidActionError } from "./apply.ts";
import {
  type ChainEntry,
  type ChunkBatchResult,
  type ChunkBatchRunner,
  type ChunkOutcome,
  chunkRunnerOf,
} from "./chain.ts";
import {
  decide,
  type ImmediateOutcome,
  type Phase,
  type RunObserver,
  settleFailure,
  type Timing,
  toImmediate,
} from "./outcome.ts";
import { withTimeout } from "./timeout.ts";
import { PolicyFailure } from "./failure.ts";
import type { ExchangeState } from "./state.ts";

/** What to do with one Envoy chunk: forward `data`, or end the exchange. */
export type ChunkStep =
  | { readonly data: Uint8Array }
  | { readonly end: ImmediateOutcome };

/** Limits a pipeline runs under (from the engine config). */
export interface ChunkLimits {
  /** The most any stage accumulates, whatever its definition asks. */
  readonly maxAccumulatedBytes: number;
  readonly defaultTimeoutMs?: number;
}

interface Stage {
  readonly entries: readonly ChainEntry[];
  /** Set for a Python batch. */
  readonly runner: ChunkBatchRunner | undefined;
  readonly accumulator: Accumulator;
  /** Chunks handed to this stage so far (its policies' `chunkIndex`). */
  calls: number;
}

const sameStreaming = (a: ChainEntry, b: ChainEntry) =>
  a.streaming.accumulate === b.streaming.accumulate &&
  a.streaming.maxAccumulatedBytes === b.streaming.maxAccumulatedBytes;

function stagesOf(entries: readonly ChainEntry[], maxAccumulatedBytes: number): Stage[] {
  const stages: Stage[] = [];
  for (let i = 0; i < entries.length;) {
    const runner = chunkRunnerOf(entries[i].batch);
    let end = i + 1;
    while (
      runner && end < entries.length && entries[end].batch === entries[i].batch && !entries[end].condition &&
      !entries[i].condition && sameStreaming(entries[i], entries[end])
    ) end++;
    const cap = Math.min(entries[i].streaming.maxAccumulatedBytes, maxAccumulatedBytes);
    stages.push({
      entries: entries.slice(i, end),
      runner,
      accumulator: new Accumulator(entries[i].streaming, cap),
      calls: 0,
    });
    i = end;
  }
  return stages;
}

/** The default answer to `Chunk.end()` without a response, before the response started. */
function streamEnded(policy: string): ImmediateResponseInit {
  return {
    statusCode: 400,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ error: "stream_ended", policy }),
  };
}

function chunkContext(
  state: ExchangeState,
  phase: Phase,
  endOfStream: boolean,
  chunkIndex: number,
): RequestChunkContext | ResponseChunkContext {
  const base: RequestChunkContext = {
    shared: state.shared,
    endOfStream,
    chunkIndex,
    requestHeaders: state.requestHeaders,
    requestPath: state.path,
    requestMethod: state.method,
    clientAddress: state.clientAddress,
    attributes: state.attributes,
  };
  if (phase === "request") return base;
  return { ...base, responseStatus: state.status, responseHeaders: state.responseHeaders };
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | undefined)?.then === "function";
}

/** One TypeScript policy's chunk handler, as a chunk outcome and its output. */
async function invokeChunk(
  entry: ChainEntry,
  phase: Phase,
  state: ExchangeState,
  chunk: Uint8Array,
  endOfStream: boolean,
  chunkIndex: number,
  limits: ChunkLimits,
  observer: RunObserver | undefined,
): Promise<{ outcome: ChunkOutcome; data: Uint8Array }> {
  try {
    if (entry.condition && !entry.condition(state, phase)) {
      return { outcome: { kind: "forwarded" }, data: chunk };
    }
    const guard = observer?.guard;
    const refused = guard?.enter(entry.label);
    if (refused !== undefined) throw new PolicyFailure("unavailable", refused);
    const ctx = chunkContext(state, phase, endOfStream, chunkIndex);
    let result: ChunkAction | Promise<ChunkAction>;
    try {
      result = phase === "request"
        ? entry.policy.onRequestChunk?.(ctx, chunk, entry.params)
        : entry.policy.onResponseChunk?.(ctx as ResponseChunkContext, chunk, entry.params);
    } finally {
      guard?.leave();
    }
    const action = isPromise(result)
      ? await withTimeout(result, entry.timeoutMs ?? limits.defaultTimeoutMs, entry.label)
      : result;
    if (action === undefined || action === null) return { outcome: { kind: "forwarded" }, data: chunk };
    if (action instanceof ChunkReplacement) {
      return { outcome: { kind: "replaced" }, data: bodyBytes(action.data) };
    }
    if (action instanceof ChunkEnd) {
      return { outcome: { kind: "ended", response: action.response }, data: chunk };
    }
    throw new InvalidActionError(
      `returned a ${(action as { kind?: string }).kind ?? typeof action} from a chunk handler; ` +
        "return Chunk.replace(...), Chunk.end(...) or nothing",
    );
  } catch (error) {
    return { outcome: { error }, data: chunk };
  }
}

export class ChunkPipeline {
  readonly #stages: Stage[];
  /** Stages from this index on are bypassed for the rest of the body (`skipRemaining`). */
  #bypassFrom = Infinity;

  constructor(
    entries: readonly ChainEntry[],
    private readonly phase: Phase,
    private readonly state: ExchangeState,
    private readonly limits: ChunkLimits,
    private readonly observer?: RunObserver,
  ) {
    this.#stages = stagesOf(entries, limits.maxAccumulatedBytes);
  }

  /** Bytes held back by the stages' accumulators. */
  get held(): number {
    return this.#stages.reduce((sum, stage) => sum + stage.accumulator.held, 0);
  }

  /** Runs one Envoy chunk through every stage. */
  async push(chunk: Uint8Array, endOfStream: boolean): Promise<ChunkStep> {
    let data = chunk;
    for (let s = 0; s < this.#stages.length && s < this.#bypassFrom; s++) {
      const stage = this.#stages[s];
      const ready = stage.accumulator.take(data, endOfStream);
      // Nothing complete yet: the stage holds it; later stages see nothing this time.
      if (ready.length === 0 && !endOfStream) {
        data = ready;
        continue;
      }
      const index = stage.calls++;
      const started = performance.now();
      const ran = await this.#runStage(stage, ready, endOfStream, index);
      const timing: Timing = {
        startedMs: started,
        durationMs: (performance.now() - started) / Math.max(ran.outcomes.length, 1),
        batched: stage.runner !== undefined,
      };
      const settled = this.#settle(stage, ran.outcomes, timing);
      if (settled.kind === "end") return { end: settled.immediate };
      if (settled.kind === "next") {
        data = ran.data;
        continue;
      }
      // skipRemaining: this stage and later ones are bypassed from now on. What they held
      // goes out now, in stream order: the later stages' (older) bytes first.
      this.#bypassFrom = s;
      const parts = this.#stages.slice(s + 1).reverse().map((later) => later.accumulator.drain());
      data = concatAll([...parts, ready, stage.accumulator.drain()]);
    }
    return { data };
  }

  async #runStage(
    stage: Stage,
    chunk: Uint8Array,
    endOfStream: boolean,
    index: number,
  ): Promise<ChunkBatchResult> {
    if (!stage.runner) {
      const { outcome, data } = await invokeChunk(
        stage.entries[0],
        this.phase,
        this.state,
        chunk,
        endOfStream,
        index,
        this.limits,
        this.observer,
      );
      return { outcomes: [outcome], data };
    }
    try {
      return await stage.runner.runChunk(stage.entries, this.phase, chunk, endOfStream, index, this.state);
    } catch (error) {
      return { outcomes: [{ error }], data: chunk };
    }
  }

  /**
   * Records each policy's failure or end of the exchange (a chunk that goes on is not a
   * decision: the trace would grow by one entry per chunk); says how the stage ends.
   */
  #settle(stage: Stage, outcomes: readonly ChunkOutcome[], timing: Timing): Settled {
    for (let k = 0; k < outcomes.length; k++) {
      const entry = stage.entries[k];
      const outcome = outcomes[k];
      if ("error" in outcome) {
        const step = settleFailure(entry, outcome.error, this.phase, this.state, timing, this.observer);
        if (!step.stop) continue;
        return step.immediate ? { kind: "end", immediate: step.immediate } : { kind: "bypass" };
      }
      if (outcome.kind === "ended") {
        let immediate: ImmediateOutcome;
        try {
          immediate = toImmediate(outcome.response ?? streamEnded(entry.label), entry.label);
        } catch (error) {
          // An unusable response (e.g. a bad status) is the policy's failure; it still ends.
          const step = settleFailure(entry, error, this.phase, this.state, timing, this.observer);
          return {
            kind: "end",
            immediate: (step.stop && step.immediate) || toImmediate(streamEnded(entry.label), entry.label),
          };
        }
        const verdict = { outcome: "denied" as const, reason: String(immediate.statusCode) };
        decide(entry, this.phase, this.state, verdict, this.observer, timing);
        return { kind: "end", immediate };
      }
    }
    return { kind: "next" };
  }
}

/** How a stage ended for one chunk. */
type Settled =
  | { readonly kind: "next" }
  | { readonly kind: "bypass" }
  | { readonly kind: "end"; readonly immediate: ImmediateOutcome };

function concatAll(parts: readonly Uint8Array[]): Uint8Array {
  const filled = parts.filter((p) => p.length > 0);
  if (filled.length === 1) return filled[0];
  const out = new Uint8Array(filled.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of filled) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
