/**
 * Whether every Python policy of a build can be loaded, asked of the interpreter that would
 * run them (`python -m executor.check`, which imports them as the executor does), and the
 * problems to report for those that cannot: a policy that fails to load is an error of
 * `validate` and of `serve`'s startup, never a policy that silently answers 500.
 */
import type { Problem } from "../config/problem.ts";
import type { PolicyCatalog } from "../registry/catalog.ts";
import { executorEnvironment } from "./environment.ts";

export interface PolicyCheckOptions {
  readonly interpreter: string;
  /** The directory holding python/ (executor and SDK). */
  readonly home: string;
  /** The registry: a generated policy_registry.py, or a .json file of the same mapping. */
  readonly registry: string;
  /** What the registry's policy paths are relative to. */
  readonly policyRoot: string;
}

/** Registry key → why that policy cannot be loaded (empty when all load). */
export async function pythonLoadFailures(options: PolicyCheckOptions): Promise<Map<string, string>> {
  const output = await new Deno.Command(options.interpreter, {
    args: ["-m", "executor.check", "--registry", options.registry, "--policy-root", options.policyRoot],
    env: executorEnvironment(options.home),
    stdin: "null",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr).trim();
  if (!output.success) {
    throw new Error(`${options.interpreter} -m executor.check failed (exit ${output.code}): ${stderr}`);
  }
  return new Map(
    Object.entries(JSON.parse(new TextDecoder().decode(output.stdout)) as Record<string, string>),
  );
}

/** The reason, with what to do when it is a missing requirement. */
export function explainLoadFailure(reason: string): string {
  return reason.startsWith("ModuleNotFoundError")
    ? `${reason} (a missing requirement? list it in the policy's requirements.txt, then run the build and install)`
    : reason;
}

/** One problem per policy the executor could not load, at the policy's source. */
export function loadFailureProblems(
  catalog: Pick<PolicyCatalog, "list">,
  failed: ReadonlyMap<string, string>,
): Problem[] {
  const sources = new Map(catalog.list().map((p) => [p.key, p.source]));
  return [...failed].map(([key, reason]) => ({
    file: sources.get(key) ?? "python executor",
    path: "",
    message: `Python policy ${key} failed to load: ${explainLoadFailure(reason)}`,
  }));
}
