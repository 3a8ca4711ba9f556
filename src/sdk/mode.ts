/**
 * What a policy needs from Envoy, as its policy-definition.yaml declares it under
 * `processingMode` (the only place that decides it, for TypeScript and Python policies). The
 * engine combines the modes of a route's policies into the smallest ext_proc processing
 * mode, once per chain: a body is buffered only if some policy reads it, and the response
 * phase is skipped if no policy takes part in it.
 *
 * @module
 */

/** The values `processingMode`'s header fields accept in policy-definition.yaml. */
export const HEADER_PROCESSING_MODES = ["SKIP", "PROCESS"] as const;
/** The values `processingMode`'s body fields accept in policy-definition.yaml. */
export const BODY_PROCESSING_MODES = ["SKIP", "BUFFER", "STREAM"] as const;

/** Whether a policy takes part in a header phase. */
export type HeaderProcessingMode = typeof HEADER_PROCESSING_MODES[number];

/**
 * Whether a policy reads a body: `BUFFER` hands it the whole body in its header handler;
 * `STREAM` hands it the body chunk by chunk (`onRequestChunk` / `onResponseChunk`).
 */
export type BodyProcessingMode = typeof BODY_PROCESSING_MODES[number];

/** The phases a policy instance takes part in (its definition's `processingMode`, resolved). */
export interface ProcessingMode {
  /** Run `onRequest` (default `PROCESS`). */
  readonly requestHeaderMode: HeaderProcessingMode;
  /** Run `onRequest` with the whole request body, or `onRequestChunk` per chunk (default `SKIP`). */
  readonly requestBodyMode: BodyProcessingMode;
  /** Run `onResponse` (default `SKIP`). */
  readonly responseHeaderMode: HeaderProcessingMode;
  /** Run `onResponse` with the whole response body, or `onResponseChunk` per chunk (default `SKIP`). */
  readonly responseBodyMode: BodyProcessingMode;
}

/** Headers-only request processing: the default for the fields a definition leaves out. */
export const DEFAULT_PROCESSING_MODE: ProcessingMode = Object.freeze({
  requestHeaderMode: "PROCESS",
  requestBodyMode: "SKIP",
  responseHeaderMode: "SKIP",
  responseBodyMode: "SKIP",
});

/** Fills the unset fields of a partial mode with {@link DEFAULT_PROCESSING_MODE}. */
export function processingMode(partial: Partial<ProcessingMode> = {}): ProcessingMode {
  return Object.freeze({ ...DEFAULT_PROCESSING_MODE, ...partial });
}
