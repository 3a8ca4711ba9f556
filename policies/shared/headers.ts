/** Helpers shared by the built-in header policies. */
import type {
  HeaderRecord,
  Policy,
  UpstreamRequestModifications,
  UpstreamResponseModifications,
} from "@tollgate/sdk";

/** A `{name, value}` entry as the WSO2-shaped parameters list headers. */
export interface NamedValue {
  readonly name: string;
  readonly value: string;
}

/**
 * Groups a `{name, value}` list by lower-cased name, keeping every value in order (a name
 * listed twice gives two field lines). Undefined for an absent or empty list.
 */
export function groupHeaders(list: readonly NamedValue[] | undefined): HeaderRecord | undefined {
  if (!list || list.length === 0) return undefined;
  const grouped: Record<string, string[]> = {};
  for (const { name, value } of list) (grouped[name.toLowerCase()] ??= []).push(value);
  return grouped;
}

/**
 * A policy answering with the same actions every time (built once per route, so a request
 * costs no allocation), taking part only in the phases it has an action for.
 */
export function fixedActions(
  onRequest: UpstreamRequestModifications | undefined,
  onResponse: UpstreamResponseModifications | undefined,
): Policy {
  return {
    onRequest: () => onRequest,
    onResponse: () => onResponse,
  };
}
