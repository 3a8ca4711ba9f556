/**
 * The Tollgate TypeScript policy SDK.
 *
 * A policy is a directory with a `policy-definition.yaml` (its name, version, parameter
 * schema and `processingMode`: which phases it takes part in) and a `mod.ts` that exports
 * `getPolicy`. `deno task build` generates the parameter type from the schema:
 *
 * ```ts
 * import { type PolicyFactory, UpstreamRequestModifications } from "@tollgate/sdk";
 * import type { AddTeamParams } from "../../src/gen/params.ts";
 *
 * export const getPolicy: PolicyFactory<AddTeamParams> = (_metadata, params) => ({
 *   onRequest: () => new UpstreamRequestModifications({ setHeaders: { "x-team": params.team } }),
 * });
 * ```
 *
 * @module
 */
export {
  type BodyInput,
  DEFAULT_IMMEDIATE_STATUS,
  type HeaderChanges,
  type HeaderRecord,
  ImmediateResponse,
  type ImmediateResponseInit,
  type RequestAction,
  type ResponseAction,
  UpstreamRequestModifications,
  type UpstreamRequestModificationsInit,
  UpstreamResponseModifications,
  type UpstreamResponseModificationsInit,
} from "./actions.ts";
export {
  type AuditPolicy,
  type AuditPolicyFactory,
  type AuditRecord,
  type DecisionEntry,
  type DecisionOutcome,
} from "./audit.ts";
export {
  Chunk,
  type ChunkAction,
  type ChunkContext,
  type RequestChunkContext,
  type ResponseChunkContext,
  type StreamingOptions,
} from "./chunk.ts";
export {
  type ApiInfo,
  Body,
  type CallInfo,
  type ConnectionInfo,
  type PolicyMetadata,
  type RequestContext,
  type ResponseContext,
  type RouteInfo,
  type SharedContext,
} from "./context.ts";
export { HeaderMap, type HeaderValues, type ReadonlyHeaders } from "./headers.ts";
export { type BodyProcessingMode, type HeaderProcessingMode, type ProcessingMode } from "./mode.ts";
export { type MaybePromise, type Params, type Policy, type PolicyFactory } from "./policy.ts";
export { type QueryChanges, queryOf, type QueryValues, type ReadonlyQuery } from "./query.ts";
