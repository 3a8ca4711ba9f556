/** Applying a policy's {@link QueryChanges} to a request path. */
import { type QueryChanges, type QueryValues, splitPath } from "../sdk/query.ts";

const list = (values: QueryValues): readonly string[] => typeof values === "string" ? [values] : values;

/** `path` with `changes` applied to its query; the part before `?` is kept byte for byte. */
export function withQueryChanges(path: string, changes: QueryChanges): string {
  const parts = splitPath(path);
  const params = new URLSearchParams(parts.search);
  for (const name of changes.remove ?? []) params.delete(name);
  for (const [name, values] of Object.entries(changes.set ?? {})) {
    // set() keeps the first pair's position, so a replaced parameter stays where it was.
    const [first, ...rest] = list(values);
    if (first === undefined) params.delete(name);
    else params.set(name, first);
    for (const value of rest) params.append(name, value);
  }
  for (const [name, values] of Object.entries(changes.add ?? {})) {
    for (const value of list(values)) params.append(name, value);
  }
  const search = params.toString();
  return search ? `${parts.path}?${search}` : parts.path;
}
