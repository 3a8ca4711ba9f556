/**
 * The policy contract. A policy module exports a {@link PolicyFactory} named `getPolicy`;
 * the engine calls it once per route when it builds the route's chain, with the policy's
 * parameters already merged, validated against its schema and given their defaults.
 *
 * @module
 */
import type { RequestAction, ResponseAction } from "./actions.ts";
import type { ChunkAction, RequestChunkContext, ResponseChunkContext } from "./chunk.ts";
import type { PolicyMetadata, RequestContext, ResponseContext } from "./context.ts";

/** Validated policy parameters (user parameters merged over system parameters). */
export type Params = Readonly<Record<string, unknown>>;

/** A result that may be computed synchronously or asynchronously. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * A policy instance, bound to one route. Which phases it runs in is not up to the instance:
 * `processingMode` in the policy's policy-definition.yaml decides (a field may depend on a
 * parameter), so the engine knows what Envoy must send before any policy code runs.
 */
export interface Policy<P extends object = Params> {
  /** Runs in the request phase, in chain order. */
  onRequest?(ctx: RequestContext, params: P): MaybePromise<RequestAction>;
  /** Runs in the response phase, in reverse chain order. */
  onResponse?(ctx: ResponseContext, params: P): MaybePromise<ResponseAction>;
  /**
   * Runs for each chunk of a streamed request body (`requestBodyMode: STREAM`), in chain
   * order, after every request header handler. Returns what to forward.
   *
   * @example Count the bytes of an upload in the shared metadata
   * ```ts
   * onRequestChunk: (ctx, chunk) => {
   *   const seen = Number(ctx.shared.metadata.uploaded ?? 0) + chunk.byteLength;
   *   ctx.shared.metadata.uploaded = seen;
   *   return seen > 10_000_000 ? Chunk.end({ statusCode: 413 }) : undefined;
   * },
   * ```
   */
  onRequestChunk?(ctx: RequestChunkContext, chunk: Uint8Array, params: P): MaybePromise<ChunkAction>;
  /**
   * Runs for each chunk of a streamed response body (`responseBodyMode: STREAM`), in reverse
   * chain order like `onResponse`. A compressed response arrives decompressed (docs/policies.md).
   *
   * @example Rewrite each server-sent event (with `streaming: { accumulate: sse-event }`)
   * ```ts
   * onResponseChunk: (_ctx, chunk) =>
   *   Chunk.replace(new TextDecoder().decode(chunk).replaceAll("gpt-4", "model")),
   * ```
   */
  onResponseChunk?(ctx: ResponseChunkContext, chunk: Uint8Array, params: P): MaybePromise<ChunkAction>;
  /**
   * Releases what the instance holds (timers, connections, caches). Called once when a
   * config reload or the shutdown drops the chain, after every request that was using the
   * chain has finished. Per-instance state lives in the closure `getPolicy` creates, so it
   * lasts exactly as long as the chain. Errors are logged, never fatal.
   */
  close?(): void | Promise<void>;
  /**
   * The standard form of {@link Policy.close} (what `await using` calls), for instances
   * built from disposable resources. Called instead of `close()` when both exist, so one
   * may simply call the other.
   */
  [Symbol.asyncDispose]?(): PromiseLike<void>;
}

/**
 * Creates a policy instance for a route. Throwing (or rejecting) fails the chain build with
 * a message naming the route and policy, and the engine keeps its previous configuration.
 */
export type PolicyFactory<P extends object = Params> = (
  metadata: PolicyMetadata,
  params: P,
) => MaybePromise<Policy<P>>;
