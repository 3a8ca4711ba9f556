/**
 * Query parameters of a request path: read them with {@link ReadonlyQuery}, change them
 * with the `query` field of `UpstreamRequestModifications` ({@link QueryChanges}).
 *
 * Names and values are percent-decoded as `URLSearchParams` decodes them (`+` is a space);
 * pairs keep their order and repeats.
 *
 * @module
 */

/** The query parameters of a request, read-only. */
export interface ReadonlyQuery extends Iterable<[name: string, value: string]> {
  /** The first value of `name`, or `undefined` if absent. */
  get(name: string): string | undefined;
  /** Every value of `name`, in order (empty if absent). */
  getAll(name: string): readonly string[];
  /** Whether `name` is present (even with an empty value). */
  has(name: string): boolean;
  /** Number of `name=value` pairs. */
  readonly size: number;
}

/** Query values as policies write them: one value, or several pairs of the same name. */
export type QueryValues = string | readonly string[];

/**
 * Changes to a request's query parameters, applied in this order: `remove`, `set`, `add`.
 *
 * @example Remove an API key from the query and pin a parameter
 * ```ts
 * import { UpstreamRequestModifications } from "@tollgate/sdk";
 *
 * new UpstreamRequestModifications({
 *   query: { remove: ["api_key"], set: { version: "2" } },
 * });
 * ```
 */
export interface QueryChanges {
  /** Remove every pair with these names. */
  readonly remove?: readonly string[];
  /** Replace every pair of these names with the given value(s). */
  readonly set?: Readonly<Record<string, QueryValues>>;
  /** Add these pairs after any existing ones. */
  readonly add?: Readonly<Record<string, QueryValues>>;
}

const EMPTY: readonly string[] = Object.freeze([]);

/** A path's query, parsed once. */
class PathQuery implements ReadonlyQuery {
  readonly #params: URLSearchParams;

  constructor(search: string) {
    this.#params = new URLSearchParams(search);
  }

  get(name: string): string | undefined {
    return this.#params.get(name) ?? undefined;
  }

  getAll(name: string): readonly string[] {
    const values = this.#params.getAll(name);
    return values.length === 0 ? EMPTY : values;
  }

  has(name: string): boolean {
    return this.#params.has(name);
  }

  get size(): number {
    return this.#params.size;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.#params.entries();
  }
}

/** Splits a `:path` into the path and the query string (without `?`). */
export function splitPath(path: string): { readonly path: string; readonly search: string } {
  const mark = path.indexOf("?");
  return mark === -1 ? { path, search: "" } : { path: path.slice(0, mark), search: path.slice(mark + 1) };
}

/**
 * The query of a `:path` value.
 *
 * @example
 * ```ts
 * import { queryOf } from "@tollgate/sdk";
 *
 * const query = queryOf("/search?q=tollgate&tag=a&tag=b");
 * query.get("q"); // "tollgate"
 * query.getAll("tag"); // ["a", "b"]
 * ```
 */
export function queryOf(path: string): ReadonlyQuery {
  return new PathQuery(splitPath(path).search);
}
