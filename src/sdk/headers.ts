/**
 * Multi-valued HTTP header maps. Names are lower-case (as Envoy sends them); every field
 * line is kept, in order, so two `set-cookie` headers stay two.
 *
 * @module
 */

/** A read-only view of HTTP headers, as policies see them. */
export interface ReadonlyHeaders extends Iterable<[name: string, value: string]> {
  /**
   * The header's values joined with `", "` (RFC 9110 §5.3, like the Fetch API's
   * `Headers.get`), or `undefined` if absent. Use {@link ReadonlyHeaders.getAll} for
   * `set-cookie` and other headers that must not be joined.
   */
  get(name: string): string | undefined;
  /** Every value of the header, in order (empty if absent). */
  getAll(name: string): readonly string[];
  /** Whether the header is present. */
  has(name: string): boolean;
  /** Distinct header names, in first-seen order. */
  names(): IterableIterator<string>;
  /** Number of distinct header names. */
  readonly size: number;
  /** A plain object of name → values, for logging and JSON. */
  toJSON(): Record<string, string[]>;
}

/** Header values as policies write them: one value, or several field lines. */
export type HeaderValues = string | readonly string[];

/** A header map that can be changed; the engine owns these, policies see {@link ReadonlyHeaders}. */
export class HeaderMap implements ReadonlyHeaders {
  readonly #fields = new Map<string, string[]>();

  /** Builds a map from `[name, value]` pairs (names are lower-cased; repeats are kept). */
  constructor(pairs?: Iterable<readonly [string, string]>) {
    if (pairs) { for (const [name, value] of pairs) this.append(name, value); }
  }

  get(name: string): string | undefined {
    const values = this.#fields.get(name.toLowerCase());
    return values === undefined ? undefined : values.length === 1 ? values[0] : values.join(", ");
  }

  getAll(name: string): readonly string[] {
    return this.#fields.get(name.toLowerCase()) ?? [];
  }

  has(name: string): boolean {
    return this.#fields.has(name.toLowerCase());
  }

  names(): IterableIterator<string> {
    return this.#fields.keys();
  }

  get size(): number {
    return this.#fields.size;
  }

  /** Replaces every value of `name` (an empty list removes it). */
  set(name: string, values: HeaderValues): void {
    const list = typeof values === "string" ? [values] : [...values];
    if (list.length === 0) this.#fields.delete(name.toLowerCase());
    else this.#fields.set(name.toLowerCase(), list);
  }

  /** Adds one field line for `name`, after any existing ones. */
  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const existing = this.#fields.get(key);
    if (existing) existing.push(value);
    else this.#fields.set(key, [value]);
  }

  /** Removes every value of `name`. */
  delete(name: string): boolean {
    return this.#fields.delete(name.toLowerCase());
  }

  *[Symbol.iterator](): IterableIterator<[string, string]> {
    for (const [name, values] of this.#fields) {
      for (const value of values) yield [name, value];
    }
  }

  toJSON(): Record<string, string[]> {
    return Object.fromEntries(Array.from(this.#fields, ([name, values]) => [name, [...values]]));
  }
}
