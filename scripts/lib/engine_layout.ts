/**
 * The permission layout of an engine started from this checkout (`deno task dev`, the
 * benchmark): derived from the config it will run, so the permission flags name exactly
 * the sockets and address that config uses, the hosts, servers and files its policies'
 * parameters name (`x-tollgate-access`), and its OTLP collector.
 */
import { dirname, join, resolve } from "node:path";
import { configDefaults } from "../../src/cli_build.ts";
import { readConfigEnv } from "../../src/config/load.ts";
import { accessHost, urlHost, writeDirOf } from "../../src/config/scope.ts";
import type { EngineConfig } from "../../src/config/types.ts";
import { loadEngineConfig } from "../../src/engine.ts";
import type { AccessNeed } from "../../src/registry/annotations.ts";
import { PolicyRegistry } from "../../src/registry/registry.ts";
import type { PermissionLayout } from "./permissions.ts";
import { repoRoot, venvPython } from "./venv.ts";

const DEFAULT_ADMIN = "127.0.0.1:9002";

/** Layout for running `configPath` (or the embedded default) with the .venv interpreter. */
export async function layoutForConfig(configPath: string | undefined): Promise<PermissionLayout> {
  const config = await loadEngineConfig({
    configPath,
    env: { ...readConfigEnv(), TOLLGATE_PYTHON: venvPython },
    defaults: configDefaults(),
  });
  const needs = await policyAccess(config);
  const sockets = [config.listen.kind === "unix" ? config.listen.socket : undefined, config.python.socket];
  return {
    runtimeDirs: [
      ...new Set(sockets.filter((s): s is string => s !== undefined).map((s) => dirname(resolve(s)))),
    ],
    extprocSocket: config.listen.kind === "unix" ? resolve(config.listen.socket) : undefined,
    extprocAddress: config.listen.kind === "tcp" ? config.listen.address : undefined,
    extprocWorkers: config.dataPlane.workers,
    pythonSocket: resolve(config.python.socket),
    adminAddress: config.admin.address ?? DEFAULT_ADMIN,
    configDir: configPath ? dirname(resolve(configPath)) : undefined,
    python: venvPython,
    policyHosts: [...new Set(needs.flatMap((n) => accessHost(n) ?? []))],
    policyFiles: [...new Set(needs.filter((n) => n.kind === "read").map((n) => n.value))],
    policyWriteDirs: [...new Set(needs.filter((n) => n.kind === "write").map((n) => writeDirOf(n.value)))],
    tracingHost: config.tracing && urlHost(config.tracing.endpoint),
    moduleDirs: checkoutModuleDirs(),
  };
}

/** Where an engine run from this checkout loads its modules (src/ and the built-in policies). */
export function checkoutModuleDirs(): string[] {
  return [join(repoRoot, "src"), join(repoRoot, "policies")];
}

/**
 * The hosts and files the config's policies name. A parameter that does not resolve is left
 * out: the engine reports it when it builds the chain.
 */
async function policyAccess(config: EngineConfig): Promise<AccessNeed[]> {
  // Imported late: `deno task dev` regenerates the registry just before it asks for a layout.
  const { generatedPolicies } = await import("../../src/gen/registry.ts");
  const registry = new PolicyRegistry(generatedPolicies);
  return config.routes.flatMap((route) =>
    route.policies.flatMap((ref) => {
      const found = registry.find(ref.name, ref.version);
      const resolved = found.ok && found.policy.parameters.resolve(ref.parameters, config.policyConfig);
      return resolved && resolved.ok
        ? resolved.access.filter((n) =>
          n.kind === "read" || n.kind === "write" || accessHost(n) !== undefined
        )
        : [];
    })
  );
}
