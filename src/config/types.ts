import type { PathSegments, Problem } from "./problem.ts";

/**
 * The engine configuration after loading: validated, defaults filled in, durations in
 * milliseconds. Field names follow the user's YAML (see docs/configuration.md).
 */

/** What to do when a policy throws, times out, or its runtime is unavailable. */
export type FailureRule = "deny" | "continue" | "skipRemaining";

export interface PolicyRef {
  readonly name: string;
  /** `v1` (any v1.x.y) or a full `v1.2.3` that must match the registered definition. */
  readonly version: string;
  readonly parameters: Readonly<Record<string, unknown>>;
  readonly onFailure: FailureRule;
  /** Per-call deadline; undefined means the runtime's default (none for TypeScript). */
  readonly timeoutMs: number | undefined;
  readonly executionCondition: string | undefined;
  readonly enabled: boolean;
}

export interface ApiConfig {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly context: string;
}

export interface RouteConfig {
  readonly name: string;
  readonly api: ApiConfig | undefined;
  readonly policies: readonly PolicyRef[];
}

/** The ext_proc server implementation: the lean `node:http2` one, or grpc-js (the reference). */
export type ListenTransport = "lean" | "grpc-js";

export type ListenConfig =
  & (
    | { readonly kind: "unix"; readonly socket: string; readonly socketMode: number }
    | { readonly kind: "tcp"; readonly address: string }
  )
  & { readonly transport: ListenTransport };

export interface PythonConfig {
  readonly socket: string;
  readonly workers: number;
  readonly timeoutMs: number;
  /** The interpreter the engine starts the executor with. */
  readonly interpreter: string;
  /**
   * Where the executor's files are: `<home>/python` (executor and SDK), `<home>/src/gen/python`
   * (generated code and the Python policy registry) and the policies the registry names,
   * relative to it. The repository root in a checkout; /opt/tollgate in the image.
   */
  readonly home: string;
  /** Calls to the executor allowed in flight at once; more fail fast as unavailable. */
  readonly maxInFlight: number;
}

export interface EngineConfig {
  /** Where the config came from: a file path, or `<embedded default>`. */
  readonly source: string;
  /** Builds a problem at a path of this config, with its line and column. */
  readonly locate: (segments: PathSegments, message: string) => Problem;
  readonly listen: ListenConfig;
  readonly admin: { readonly address: string | undefined };
  readonly python: PythonConfig;
  readonly limits: { readonly maxBodyBytes: number };
  readonly shutdown: { readonly gracePeriodMs: number };
  readonly log: { readonly level: LogLevel; readonly format: "json" | "text" };
  readonly policyConfig: Readonly<Record<string, unknown>>;
  readonly routes: readonly RouteConfig[];
}

export type LogLevel = "debug" | "info" | "warning" | "error";
