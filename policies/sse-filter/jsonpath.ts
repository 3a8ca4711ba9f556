/**
 * The JSON path subset sse-filter supports: `$` followed by `.name`, `['name']` (or
 * `["name"]`) and `[index]` steps. No wildcards, filters or recursive descent: a path names
 * one place, so dropping and removing stay predictable (docs.md).
 */
export type PathStep = string | number;

const STEP = /^(?:\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\["((?:[^"\\]|\\.)*)"\])/;

/** Parses a path; throws an Error naming what is wrong. */
export function parsePath(path: string): PathStep[] {
  if (!path.startsWith("$")) throw new Error(`JSON path ${JSON.stringify(path)} must start with $`);
  const steps: PathStep[] = [];
  let rest = path.slice(1);
  while (rest.length > 0) {
    const m = STEP.exec(rest);
    if (!m) {
      throw new Error(
        `JSON path ${JSON.stringify(path)}: unsupported step at ${JSON.stringify(rest)} ` +
          "(supported: .name, ['name'], [index])",
      );
    }
    steps.push(m[2] !== undefined ? Number(m[2]) : (m[1] ?? m[3] ?? m[4]).replace(/\\(.)/g, "$1"));
    rest = rest.slice(m[0].length);
  }
  return steps;
}

type Found = { readonly found: true; readonly value: unknown } | { readonly found: false };

function child(value: unknown, step: PathStep): Found {
  if (typeof step === "number") {
    return Array.isArray(value) && step < value.length
      ? { found: true, value: value[step] }
      : { found: false };
  }
  if (value !== null && typeof value === "object" && !Array.isArray(value) && Object.hasOwn(value, step)) {
    return { found: true, value: (value as Record<string, unknown>)[step] };
  }
  return { found: false };
}

/** The value at `steps` in `root`. */
export function lookup(root: unknown, steps: readonly PathStep[]): Found {
  let current: Found = { found: true, value: root };
  for (const step of steps) {
    if (!current.found) return current;
    current = child(current.value, step);
  }
  return current;
}

/** Removes the value at `steps` (not the root); returns whether something was removed. */
export function remove(root: unknown, steps: readonly PathStep[]): boolean {
  if (steps.length === 0) return false;
  const parent = lookup(root, steps.slice(0, -1));
  if (!parent.found) return false;
  const last = steps[steps.length - 1];
  const container = parent.value;
  if (typeof last === "number") {
    if (!Array.isArray(container) || last >= container.length) return false;
    container.splice(last, 1);
    return true;
  }
  if (container === null || typeof container !== "object" || Array.isArray(container)) return false;
  if (!Object.hasOwn(container, last)) return false;
  delete (container as Record<string, unknown>)[last];
  return true;
}

/** Deep equality of JSON values. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length &&
    ka.every((k) => jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
