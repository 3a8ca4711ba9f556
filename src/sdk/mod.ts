/**
 * The Tollgate TypeScript policy SDK.
 *
 * A policy is a directory with a `policy-definition.yaml` and a `mod.ts` that exports
 * `getPolicy`:
 *
 * ```ts
 * import { type PolicyFactory, UpstreamRequestModifications } from "@tollgate/sdk";
 *
 * export const getPolicy: PolicyFactory<{ team: string }> = (_metadata, params) => ({
 *   mode: () => ({ requestHeaderMode: "PROCESS" }),
 *   onRequest: () => new UpstreamRequestModifications({ setHeaders: { "x-team": params.team } }),
 * });
 * ```
 *
 * @module
 */
export * from "./actions.ts";
export * from "./audit.ts";
export * from "./chunk.ts";
export * from "./context.ts";
export * from "./headers.ts";
export * from "./mode.ts";
export * from "./policy.ts";
export { type QueryChanges, queryOf, type QueryValues, type ReadonlyQuery } from "./query.ts";
