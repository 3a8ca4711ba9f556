/**
 * The permission layout of an engine started from this checkout (`deno task dev`, the
 * benchmark): derived from the config it will run, so the permission flags name exactly
 * the sockets and address that config uses.
 */
import { dirname, resolve } from "node:path";
import { configDefaults } from "../../src/cli.ts";
import { readConfigEnv } from "../../src/config/load.ts";
import { loadEngineConfig } from "../../src/engine.ts";
import type { PermissionLayout } from "./permissions.ts";
import { venvPython } from "./venv.ts";

const DEFAULT_ADMIN = "127.0.0.1:9002";

/** Layout for running `configPath` (or the embedded default) with the .venv interpreter. */
export async function layoutForConfig(configPath: string | undefined): Promise<PermissionLayout> {
  const config = await loadEngineConfig({
    configPath,
    env: { ...readConfigEnv(), TOLLGATE_PYTHON: venvPython },
    defaults: configDefaults(),
  });
  const sockets = [config.listen.kind === "unix" ? config.listen.socket : undefined, config.python.socket];
  return {
    runtimeDirs: [
      ...new Set(sockets.filter((s): s is string => s !== undefined).map((s) => dirname(resolve(s)))),
    ],
    extprocSocket: config.listen.kind === "unix" ? resolve(config.listen.socket) : undefined,
    extprocAddress: config.listen.kind === "tcp" ? config.listen.address : undefined,
    pythonSocket: resolve(config.python.socket),
    adminAddress: config.admin.address ?? DEFAULT_ADMIN,
    configDir: configPath ? dirname(resolve(configPath)) : undefined,
    python: venvPython,
  };
}
