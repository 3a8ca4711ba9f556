/**
 * Parameters of a policy instance: system parameters (with `${config}` references resolved)
 * merged under the user's parameters, each validated against its schema with defaults
 * applied. Validators are compiled once per definition.
 */
import type { ValidateFunction } from "ajv";
import { createAjv } from "../config/ajv.ts";
import type { PathSegments } from "../config/problem.ts";
import { schemaViolations } from "../config/schema_errors.ts";
import type { Params } from "../sdk/policy.ts";
import {
  type AccessNeed,
  accessNeeds,
  headerNames,
  type HeaderNameValue,
  redactSecrets,
  secretStrings,
} from "./annotations.ts";
import { type ConfigReference, resolveTemplate, stripConfigReferences } from "./config_refs.ts";
import type { PolicyDefinition } from "./definition.ts";

/** A parameter problem: path from the policy entry (`parameters.x` / `systemParameters.y`). */
export interface ParameterProblem {
  readonly segments: PathSegments;
  readonly message: string;
}

/** Parameters ready for a policy instance, and what the engine may show and must allow of them. */
export interface ResolvedParameters {
  readonly ok: true;
  readonly params: Params;
  /** The parameters with every secret redacted: what /routes and logs may show. */
  readonly shown: Params;
  /** Hosts and files the parameters name; segments from the policy entry, as problems' are. */
  readonly access: readonly AccessNeed[];
  /** Header names the parameters give the policy to change; segments as `access`'s. */
  readonly headerNames: readonly HeaderNameValue[];
  /** The secret values (strings), to scrub from messages that might quote them. */
  readonly secrets: readonly string[];
}

export type ParameterResult = ResolvedParameters | { ok: false; problems: ParameterProblem[] };

/** Resolves and validates parameters for one policy definition. */
export interface ParameterResolver {
  resolve(
    userParams: Readonly<Record<string, unknown>>,
    policyConfig: Readonly<Record<string, unknown>>,
  ): ParameterResult;
}

const ajv = createAjv();

function setAt(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (node[key] === null || typeof node[key] !== "object") node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function check(validate: ValidateFunction, value: unknown, root: string, problems: ParameterProblem[]): void {
  if (validate(value)) return;
  for (const v of schemaViolations(validate.errors)) {
    problems.push({ segments: [root, ...v.segments], message: v.message });
  }
}

function rooted<T extends { readonly segments: PathSegments }>(root: string, found: T[]): T[] {
  return found.map((item) => ({ ...item, segments: [root, ...item.segments] }));
}

/** Compiles the validators of a definition (throws if a schema is invalid; `validate` reports that earlier). */
export function compileParameters(definition: PolicyDefinition): ParameterResolver {
  const userSchema = stripConfigReferences(definition.parameters).schema;
  const user = ajv.compile(userSchema);
  const stripped = stripConfigReferences(definition.systemParameters);
  const system = ajv.compile(stripped.schema);
  const references: readonly ConfigReference[] = stripped.references;
  return {
    resolve(userParams, policyConfig) {
      const problems: ParameterProblem[] = [];
      const systemParams: Record<string, unknown> = {};
      for (const ref of references) {
        const resolution = resolveTemplate(ref.template, policyConfig);
        if (resolution.ok) setAt(systemParams, ref.path, structuredClone(resolution.value));
        else if (ref.fallback !== undefined) setAt(systemParams, ref.path, structuredClone(ref.fallback));
        else {
          problems.push({
            segments: ["systemParameters", ...ref.path],
            message: `\${${resolution.missing}} is not set in policyConfig and the schema has no default`,
          });
        }
      }
      check(system, systemParams, "systemParameters", problems);
      const ownParams = structuredClone(userParams) as Record<string, unknown>;
      check(user, ownParams, "parameters", problems);
      if (problems.length > 0) return { ok: false, problems };
      const shown = {
        ...redactSecrets(stripped.schema, systemParams) as Params,
        ...redactSecrets(userSchema, ownParams) as Params,
      };
      const access = [
        ...rooted("systemParameters", accessNeeds(stripped.schema, systemParams)),
        ...rooted("parameters", accessNeeds(userSchema, ownParams)),
      ];
      const names = [
        ...rooted("systemParameters", headerNames(stripped.schema, systemParams)),
        ...rooted("parameters", headerNames(userSchema, ownParams)),
      ];
      const secrets = [
        ...secretStrings(stripped.schema, systemParams),
        ...secretStrings(userSchema, ownParams),
      ];
      return {
        ok: true,
        params: deepFreeze({ ...systemParams, ...ownParams }),
        shown: deepFreeze(shown),
        access,
        headerNames: names,
        secrets,
      };
    },
  };
}
