/**
 * Streamed bodies. A policy whose definition sets `requestBodyMode: STREAM` (or
 * `responseBodyMode: STREAM`) sees the body chunk by chunk, as Envoy forwards it, instead of
 * buffered whole: `onRequestChunk` / `onResponseChunk` run once per chunk and return what to
 * forward. Header handlers (`onRequest` / `onResponse`) still run first, on the headers.
 *
 * ```ts
 * import { Chunk, type PolicyFactory } from "@tollgate/sdk";
 *
 * // Upper-cases every line of a streamed response (the definition asks for
 * // `streaming: { accumulate: line }`, so each chunk holds whole lines).
 * export const getPolicy: PolicyFactory = () => ({
 *   onResponseChunk: (_ctx, chunk) => Chunk.replace(new TextDecoder().decode(chunk).toUpperCase()),
 * });
 * ```
 *
 * @module
 */
import type { BodyInput, ImmediateResponseInit } from "./actions.ts";
import type { ConnectionInfo, SharedContext } from "./context.ts";
import type { ReadonlyHeaders } from "./headers.ts";

/** Forward `data` instead of the chunk that was handed over (see {@link Chunk.replace}). */
export class ChunkReplacement {
  readonly kind = "chunk-replace" as const;
  constructor(readonly data: BodyInput) {}
}

/** End the exchange (see {@link Chunk.end}). */
export class ChunkEnd {
  readonly kind = "chunk-end" as const;
  constructor(readonly response?: ImmediateResponseInit) {}
}

/** The results a chunk handler can return (see {@link Chunk}). */
export interface ChunkResults {
  replace(data: BodyInput): ChunkReplacement;
  end(response?: ImmediateResponseInit): ChunkEnd;
}

/** The results a chunk handler can return. */
export const Chunk: ChunkResults = {
  /**
   * Forwards `data` (bytes, or a string sent as UTF-8) in place of the chunk. An empty
   * replacement holds the chunk back; a later replacement may send it (changed) with more.
   *
   * @example Strip a marker from every chunk
   * ```ts
   * onRequestChunk: (_ctx, chunk) =>
   *   Chunk.replace(new TextDecoder().decode(chunk).replaceAll("SECRET", "******")),
   * ```
   */
  replace(data: BodyInput): ChunkReplacement {
    return new ChunkReplacement(data);
  },
  /**
   * Ends the exchange. Before the response headers went out (every request chunk) the client
   * gets `response` as an immediate response (a 400 with a JSON body when none is given) and
   * the rest of the body is never forwarded; on a response chunk the headers are already on
   * their way, so the response stream is terminated (the client sees it cut short).
   *
   * @example Refuse an upload once it mentions a forbidden word
   * ```ts
   * onRequestChunk: (_ctx, chunk) =>
   *   new TextDecoder().decode(chunk).includes("DROP TABLE")
   *     ? Chunk.end({ statusCode: 403, body: "refused" })
   *     : undefined,
   * ```
   */
  end(response?: ImmediateResponseInit): ChunkEnd {
    return new ChunkEnd(response);
  },
};

/** What a chunk handler may return: nothing forwards the chunk as it was handed over. */
export type ChunkAction = ChunkReplacement | ChunkEnd | undefined | null | void;

/** What a chunk handler sees besides the chunk (live: it reflects earlier policies' changes). */
export interface ChunkContext extends ConnectionInfo {
  /** The same shared context (and metadata, read and write) as the header handlers see. */
  readonly shared: SharedContext;
  /** True for the last chunk of the body (possibly empty): the last chance to send held data. */
  readonly endOfStream: boolean;
  /** 0 for the first chunk handed to this policy, then 1, 2, ... */
  readonly chunkIndex: number;
  readonly requestHeaders: ReadonlyHeaders;
  readonly requestPath: string;
  readonly requestMethod: string;
}

/** What `onRequestChunk` sees. */
export type RequestChunkContext = ChunkContext;

/** What `onResponseChunk` sees: the response's status and headers as well. */
export interface ResponseChunkContext extends ChunkContext {
  readonly responseStatus: number;
  readonly responseHeaders: ReadonlyHeaders;
}

/**
 * How the engine cuts the stream before a policy sees it, from the definition's `streaming`
 * block. `none`: chunks as Envoy forwards them; `line`: only whole lines (up to and including
 * `\n`); `sse-event`: only whole server-sent events (up to and including the blank line).
 * A policy may receive several units in one chunk. Once `maxAccumulatedBytes` are held, or
 * at the end of the body, it gets what has accumulated, complete or not.
 */
export interface StreamingOptions {
  readonly accumulate: "none" | "line" | "sse-event";
  readonly maxAccumulatedBytes: number;
}

/** The streaming options of a definition without a `streaming` block. */
export const DEFAULT_STREAMING: StreamingOptions = Object.freeze({
  accumulate: "none",
  maxAccumulatedBytes: 65536,
});
