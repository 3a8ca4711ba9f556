/**
 * The build's policies by registry key, definitions only: what the control plane needs (which
 * policies exist, whether one runs in Python, their definitions for /policies and messages)
 * without loading a policy module or compiling a parameter schema. It is filled from the
 * generated src/gen/definitions.ts; the data-plane workers build a PolicyRegistry
 * (registry.ts) over the same entries with their modules.
 */
import { type Problem, ProblemsError } from "../config/problem.ts";
import { type PolicyDefinition, registryKey } from "./definition.ts";

/** One entry of the generated definitions module. */
export interface PolicyEntry {
  readonly definition: PolicyDefinition;
  /** Where the policy came from, for messages (e.g. `policies/set-headers`). */
  readonly source: string;
}

/** An entry under its registry key (`name:vMAJOR`). */
export interface CatalogedPolicy extends PolicyEntry {
  readonly key: string;
}

/** The entries by key, and a problem for each key that repeats (the later entry is left out). */
export function indexPolicies<T extends PolicyEntry>(
  entries: readonly T[],
): { byKey: Map<string, T & { key: string }>; problems: Problem[] } {
  const byKey = new Map<string, T & { key: string }>();
  const problems: Problem[] = [];
  for (const entry of entries) {
    const key = registryKey(entry.definition.name, entry.definition.version);
    const existing = byKey.get(key);
    if (existing) {
      problems.push({
        file: entry.source,
        path: "",
        message: `duplicate policy ${key} (also ${existing.source})`,
      });
      continue;
    }
    byKey.set(key, { ...entry, key });
  }
  return { byKey, problems };
}

export class PolicyCatalog {
  readonly #policies: readonly CatalogedPolicy[];

  /** Throws ProblemsError on a duplicate key. */
  constructor(entries: readonly PolicyEntry[]) {
    const { byKey, problems } = indexPolicies(entries);
    if (problems.length > 0) throw new ProblemsError("invalid policy registry", problems);
    this.#policies = [...byKey.values()].map(({ key, definition, source }) => ({ key, definition, source }));
  }

  list(): readonly CatalogedPolicy[] {
    return this.#policies;
  }

  /** Whether any policy runs in the Python executor. */
  hasPythonPolicies(): boolean {
    return this.#policies.some((p) => p.definition.runtime === "python");
  }
}
