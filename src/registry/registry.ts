/**
 * The policy registry: every policy compiled into this build, keyed `name:vMAJOR`. It is
 * filled only from the generated module src/gen/registry.ts (see scripts/build.ts), so a
 * compiled binary embeds exactly the policies of its build manifest. The data-plane workers,
 * `validate` and `run` build one; the control plane needs only the definitions (catalog.ts).
 */
import { ProblemsError } from "../config/problem.ts";
import { didYouMean } from "../config/suggest.ts";
import type { PolicyFactory } from "../sdk/policy.ts";
import { type CatalogedPolicy, indexPolicies, type PolicyEntry } from "./catalog.ts";
import { registryKey } from "./definition.ts";
import { compileParameters, type ParameterResolver } from "./params.ts";

/** One entry of the generated registry module: a definitions entry and its module. */
export interface GeneratedPolicy extends PolicyEntry {
  /** The TypeScript module (absent for Python policies). */
  readonly module?: Readonly<Record<string, unknown>>;
}

export interface RegisteredPolicy extends CatalogedPolicy {
  readonly parameters: ParameterResolver;
  /** The module's `getPolicy` (TypeScript policies only). */
  readonly factory: PolicyFactory | undefined;
}

export type Lookup = { ok: true; policy: RegisteredPolicy } | { ok: false; message: string };

export class PolicyRegistry {
  readonly #byKey = new Map<string, RegisteredPolicy>();

  /** Builds the registry; duplicate keys and TypeScript modules without `getPolicy` are errors. */
  constructor(generated: readonly GeneratedPolicy[]) {
    const { byKey, problems } = indexPolicies(generated);
    for (const { key, definition, source, module } of byKey.values()) {
      const factory = module?.getPolicy;
      if (definition.runtime === "typescript" && typeof factory !== "function") {
        problems.push({
          file: source,
          path: "",
          message: "TypeScript policy module does not export getPolicy()",
        });
        continue;
      }
      this.#byKey.set(key, {
        key,
        definition,
        source,
        parameters: compileParameters(definition),
        factory: factory as PolicyFactory | undefined,
      });
    }
    if (problems.length > 0) throw new ProblemsError("invalid policy registry", problems);
  }

  /** Finds a policy by name and `vN` or `vN.N.N` version. */
  find(name: string, version: string): Lookup {
    const policy = this.#byKey.get(registryKey(name, version));
    if (!policy) {
      const versions = this.list().filter((p) => p.definition.name === name).map((p) => p.definition.version);
      return {
        ok: false,
        message: versions.length > 0
          ? `policy ${name} has no version ${version} in this build (available: ${versions.join(", ")})`
          : `unknown policy ${name} (not in this build's registry)${
            didYouMean(name, new Set(this.list().map((p) => p.definition.name)))
          }`,
      };
    }
    if (version.includes(".") && policy.definition.version !== version) {
      return {
        ok: false,
        message: `policy ${name} ${version} is not in this build (it has ${policy.definition.version})`,
      };
    }
    return { ok: true, policy };
  }

  list(): RegisteredPolicy[] {
    return [...this.#byKey.values()];
  }

  /** Whether any registered policy runs in the Python executor. */
  hasPythonPolicies(): boolean {
    return this.list().some((p) => p.definition.runtime === "python");
  }
}
