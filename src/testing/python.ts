/**
 * A real Python executor for the harness: the engine's supervisor starts `python -m
 * executor` on a socket in a temporary directory and the engine's bridge calls it, so a
 * Python policy runs exactly as it would behind Envoy. Only started when a chain has
 * Python policies; stopped with the harness.
 * @module
 */
import { join, relative } from "node:path";
import { ProblemsError } from "../config/problem.ts";
import type { PythonConfig } from "../config/types.ts";
import { PythonBridge } from "../python/bridge.ts";
import { loadFailureProblems } from "../python/check.ts";
import { ExecutorClient } from "../python/client.ts";
import { PythonSupervisor } from "../python/supervisor.ts";
import type { PolicyRegistry } from "../registry/registry.ts";

const MAX_MESSAGE_BYTES = 8 << 20;

/** Where the executor's code is and how to run it. */
export interface HarnessPythonOptions {
  /** The interpreter (with the executor's packages installed). */
  readonly interpreter: string;
  /** The directory holding `python/` and `src/gen/python/` (the repository root in a checkout). */
  readonly home: string;
  /** Per-call deadline of a Python policy without its own `timeout`. */
  readonly timeoutMs: number;
}

/** A Python policy the build's registry does not list (loaded from its directory). */
export interface ExtraPythonPolicy {
  readonly key: string;
  readonly name: string;
  readonly version: string;
  readonly dir: string;
  readonly blocking: boolean;
}

export class HarnessPython {
  private constructor(
    readonly bridge: PythonBridge,
    private readonly supervisor: PythonSupervisor,
    private readonly dir: string,
  ) {}

  /**
   * Starts an executor serving the build's Python registry (`registryFile`, relative to
   * `home`) plus `extra` policies; throws if it cannot start or one of `needed` (registry
   * keys) fails to load.
   */
  static async start(
    options: HarnessPythonOptions,
    registryFile: string | undefined,
    extra: readonly ExtraPythonPolicy[],
    needed: readonly string[],
    registry: PolicyRegistry,
  ): Promise<HarnessPython> {
    const dir = await Deno.makeTempDir({ prefix: "tollgate-harness-" });
    const registryPath = join(dir, "policy_registry.py");
    await Deno.writeTextFile(registryPath, registrySource(options.home, registryFile, extra));
    const python: PythonConfig = {
      socket: join(dir, "python.sock"),
      workers: 4,
      timeoutMs: options.timeoutMs,
      interpreter: options.interpreter,
      home: options.home,
      maxInFlight: 256,
      processes: 1,
    };
    const client = new ExecutorClient({
      socket: python.socket,
      maxInFlight: 256,
      maxMessageBytes: MAX_MESSAGE_BYTES,
    });
    const supervisor = new PythonSupervisor({
      python,
      // The supervisor joins it to python.home.
      registryFile: relative(options.home, registryPath),
      logLevel: "warning",
      maxMessageBytes: MAX_MESSAGE_BYTES,
      connect: () => client,
    });
    try {
      await supervisor.start();
    } catch (error) {
      await Deno.remove(dir, { recursive: true });
      throw error;
    }
    const failed = new Map([...supervisor.failedPolicies].filter(([key]) => needed.includes(key)));
    const harness = new HarnessPython(
      new PythonBridge(() => supervisor.client, options.timeoutMs),
      supervisor,
      dir,
    );
    if (failed.size > 0) {
      await harness.stop();
      throw new ProblemsError("Python policies cannot be loaded", loadFailureProblems(registry, failed));
    }
    return harness;
  }

  async stop(): Promise<void> {
    await this.supervisor.stop(2000);
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/**
 * A registry module: the build's `PYTHON_POLICIES` (paths relative to the policy root,
 * `home`) with the extra policies added by absolute path.
 */
function registrySource(
  home: string,
  registryFile: string | undefined,
  extra: readonly ExtraPythonPolicy[],
): string {
  const lines = ["# Written by the Tollgate test harness.", "import runpy", ""];
  lines.push(
    registryFile === undefined
      ? "PYTHON_POLICIES: dict[str, dict[str, str | bool]] = {}"
      : `PYTHON_POLICIES = dict(runpy.run_path(${
        JSON.stringify(join(home, registryFile))
      })["PYTHON_POLICIES"])`,
  );
  for (const policy of extra) {
    const entry = { name: policy.name, version: policy.version, path: policy.dir };
    lines.push(
      `PYTHON_POLICIES[${JSON.stringify(policy.key)}] = {**${JSON.stringify(entry)}, "blocking": ${
        policy.blocking ? "True" : "False"
      }}`,
    );
  }
  return lines.join("\n") + "\n";
}
