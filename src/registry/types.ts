/**
 * Types the registry's modules share, kept apart so that no two of them import each other.
 * @module
 */

/** A JSON Schema document, as read from a policy definition. */
export type JsonSchema = Readonly<Record<string, unknown>>;
