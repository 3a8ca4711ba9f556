/**
 * Auditing policies: a policy whose definition says `kind: audit` observes requests without
 * taking part in them. Once an exchange is over (the client has its response), the engine
 * hands each auditing policy of the route a frozen {@link AuditRecord}; what the policy
 * returns is ignored, it has no way to change or block anything, and its failures and
 * slowness never reach the request path (it runs from a bounded queue; see docs/policies.md).
 *
 * ```ts
 * import type { AuditPolicyFactory } from "@tollgate/sdk";
 *
 * export const getPolicy: AuditPolicyFactory = () => ({
 *   audit: (record) => console.log(record.requestId, record.decision),
 * });
 * ```
 *
 * @module
 */
import type { DecisionEntry } from "../observe/decision_trace.ts";
import type { PolicyMetadata } from "./context.ts";
import type { MaybePromise, Params } from "./policy.ts";

export type { DecisionEntry, DecisionOutcome } from "../observe/decision_trace.ts";

/** What an auditing policy learns about one exchange. Frozen: nothing in it can be changed. */
export interface AuditRecord {
  readonly requestId: string;
  /** The route name Envoy sent. */
  readonly route: string;
  readonly method: string;
  /** The path as the client sent it, query included. */
  readonly path: string;
  readonly authority: string;
  /** The downstream IP (Envoy's `source.address` attribute), when Envoy sent it. */
  readonly clientAddress: string | undefined;
  /** The status the client got; 0 when the exchange ended before a response (a reset). */
  readonly status: number;
  /**
   * The overall result: `denied` when a policy (or a failure under `deny`) answered the
   * request, `failed` when a policy failed under another rule, `modified` when a policy
   * changed the request or response, else `passed`.
   */
  readonly decision: "passed" | "modified" | "denied" | "failed";
  /** The request headers as the client sent them (lower-case names, in order, repeated names repeated). */
  readonly headers: readonly (readonly [string, string])[];
  /**
   * The request body as the client sent it, when the route's chain buffered it (undefined
   * otherwise). Each auditing policy gets its own copy.
   */
  readonly body: Uint8Array | undefined;
  /** What each policy of the chain did, in order. */
  readonly trace: readonly DecisionEntry[];
  /** When the request headers reached Tollgate, in milliseconds since the Unix epoch. */
  readonly startedAt: number;
  /** From the request headers to the end of the exchange, in milliseconds. */
  readonly durationMs: number;
}

/** An auditing policy instance, bound to one route. */
export interface AuditPolicy<P extends Params = Params> {
  /** Sees one finished exchange. The result is ignored; a rejection is logged. */
  audit(record: AuditRecord, params: P): MaybePromise<void>;
  /** Releases what the instance holds (files, connections), as for other policies. */
  close?(): void | Promise<void>;
}

/** Creates an auditing policy instance for a route (export it as `getPolicy`). */
export type AuditPolicyFactory<P extends Params = Params> = (
  metadata: PolicyMetadata,
  params: P,
) => MaybePromise<AuditPolicy<P>>;
