/**
 * Reading the engine's schema annotations (src/config/ajv.ts) against a parameter value:
 * which values are secrets (to redact them), which name a host, server or file the
 * permission scope must allow, and which name a header the policy will change. The schema
 * and the value are walked together through `properties`, `patternProperties`,
 * `additionalProperties`, `items` and the `allOf`/`anyOf`/`oneOf`/`if`/`then`/`else`
 * branches (a value matched by several subschemas gets every annotation). For secrets both
 * `then` and `else` count; for access and header names only the branch the value's `if`
 * selects, so a server is needed only where the parameters use it.
 */
import { Ajv, type ValidateFunction } from "ajv";
import { ACCESS_KEYWORD, HEADER_NAME_KEYWORD, REDACTED, SECRET_KEYWORD } from "../config/ajv.ts";
import type { PathSegments } from "../config/problem.ts";

type Schema = Record<string, unknown>;

const isSchema = (value: unknown): value is Schema =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/** Evaluates `if` subschemas (fragments of an already checked schema, so not strict). */
const conditionAjv = new Ajv({ strict: false });
const conditions = new WeakMap<Schema, ValidateFunction>();

function holds(condition: Schema, value: unknown): boolean {
  let validate = conditions.get(condition);
  if (validate === undefined) conditions.set(condition, validate = conditionAjv.compile(condition));
  return validate(value) === true;
}

/**
 * The schema and every branch schema that applies to the same value. With `value`, only the
 * `then` or `else` branch its `if` selects; without, both (redaction errs on the safe side).
 */
function withBranches(schemas: readonly Schema[], value?: { readonly node: unknown }): Schema[] {
  const out: Schema[] = [];
  const add = (schema: unknown) => {
    if (!isSchema(schema) || out.includes(schema)) return;
    out.push(schema);
    for (const key of ["allOf", "anyOf", "oneOf"]) {
      if (Array.isArray(schema[key])) (schema[key] as unknown[]).forEach(add);
    }
    if (value === undefined) {
      for (const key of ["if", "then", "else"]) add(schema[key]);
    } else if (isSchema(schema.if)) {
      add(holds(schema.if, value.node) ? schema.then : schema.else);
    }
  };
  schemas.forEach(add);
  return out;
}

function propertySchemas(schemas: readonly Schema[], key: string): Schema[] {
  return schemas.flatMap((schema) => {
    const found: unknown[] = [];
    const properties = schema.properties;
    if (isSchema(properties) && Object.hasOwn(properties, key)) found.push(properties[key]);
    const patterns = schema.patternProperties;
    if (isSchema(patterns)) {
      for (const [pattern, sub] of Object.entries(patterns)) {
        if (new RegExp(pattern, "u").test(key)) found.push(sub);
      }
    }
    if (found.length === 0 && isSchema(schema.additionalProperties)) found.push(schema.additionalProperties);
    return found.filter(isSchema);
  });
}

function itemSchemas(schemas: readonly Schema[], index: number): Schema[] {
  return schemas.flatMap((schema) => {
    const items = schema.items;
    if (Array.isArray(items)) return [index < items.length ? items[index] : schema.additionalItems];
    return [items];
  }).filter(isSchema);
}

function annotation(schemas: readonly Schema[], keyword: string): unknown {
  return schemas.find((schema) => schema[keyword] !== undefined)?.[keyword];
}

/**
 * A copy of `value` with every value its schema marks `x-tollgate-secret: true` replaced by
 * `"<redacted>"` (a whole object or array marked secret is replaced as one).
 */
export function redactSecrets(schema: unknown, value: unknown): unknown {
  const walk = (schemas: Schema[], node: unknown): unknown => {
    const all = withBranches(schemas);
    if (annotation(all, SECRET_KEYWORD) === true) return REDACTED;
    if (Array.isArray(node)) return node.map((item, i) => walk(itemSchemas(all, i), item));
    if (isSchema(node)) {
      return Object.fromEntries(
        Object.entries(node).map(([key, child]) => [key, walk(propertySchemas(all, key), child)]),
      );
    }
    return node;
  };
  return walk(isSchema(schema) ? [schema] : [], value);
}

/** A parameter value the permission scope must allow. */
export interface AccessNeed {
  readonly kind: "net" | "read" | "write" | "tcp";
  /** Path of the value from the parameters object. */
  readonly segments: PathSegments;
  /** A URL (`net`), a file path (`read`, `write`) or a server's `host:port` (`tcp`). */
  readonly value: string;
}

/** `host:port` of a `tcp` value (`{ host, port }`); undefined when either is missing. */
function tcpAddress(node: unknown): string | undefined {
  if (!isSchema(node) || typeof node.host !== "string" || node.host === "") return undefined;
  if (typeof node.port !== "number") return undefined;
  return `${node.host.includes(":") ? `[${node.host}]` : node.host}:${node.port}`;
}

/**
 * Walks `value` with its schema (conditions evaluated), calling `visit` with the schemas that
 * apply to each node; `visit` returns true when it has taken the node (its children are
 * then not walked).
 */
function walkApplied(
  schema: unknown,
  value: unknown,
  visit: (schemas: readonly Schema[], node: unknown, segments: (string | number)[]) => boolean,
): void {
  const walk = (schemas: Schema[], node: unknown, segments: (string | number)[]) => {
    const all = withBranches(schemas, { node });
    if (visit(all, node, segments)) return;
    if (Array.isArray(node)) node.forEach((item, i) => walk(itemSchemas(all, i), item, [...segments, i]));
    else if (isSchema(node)) {
      for (const [key, child] of Object.entries(node)) {
        walk(propertySchemas(all, key), child, [...segments, key]);
      }
    }
  };
  walk(isSchema(schema) ? [schema] : [], value, []);
}

/**
 * Every value of `value` marked `x-tollgate-access` by its schema: non-empty strings for `net`,
 * `read` and `write` (empty means unset), objects with a host and port for `tcp`.
 */
export function accessNeeds(schema: unknown, value: unknown): AccessNeed[] {
  const needs: AccessNeed[] = [];
  walkApplied(schema, value, (schemas, node, segments) => {
    const kind = annotation(schemas, ACCESS_KEYWORD);
    if (kind === "net" || kind === "read" || kind === "write") {
      if (typeof node === "string" && node !== "") needs.push({ kind, segments, value: node });
    } else if (kind === "tcp") {
      const address = tcpAddress(node);
      if (address !== undefined) needs.push({ kind, segments, value: address });
    } else return false;
    return true;
  });
  return needs;
}

/** A parameter value naming a header the policy will change. */
export interface HeaderNameValue {
  /** Path of the value from the parameters object. */
  readonly segments: PathSegments;
  readonly value: string;
}

/** Every string value of `value` its schema marks `x-tollgate-header-name: true`. */
export function headerNames(schema: unknown, value: unknown): HeaderNameValue[] {
  const names: HeaderNameValue[] = [];
  walkApplied(schema, value, (schemas, node, segments) => {
    if (annotation(schemas, HEADER_NAME_KEYWORD) !== true || typeof node !== "string") return false;
    names.push({ segments, value: node });
    return true;
  });
  return names;
}

/** Every string inside the values `value`'s schema marks secret (for scrubbing messages). */
export function secretStrings(schema: unknown, value: unknown): string[] {
  const found: string[] = [];
  const collect = (node: unknown): void => {
    if (typeof node === "string") found.push(node);
    else if (node !== null && typeof node === "object") Object.values(node).forEach(collect);
  };
  const walk = (schemas: Schema[], node: unknown): void => {
    const all = withBranches(schemas);
    if (annotation(all, SECRET_KEYWORD) === true) collect(node);
    else if (Array.isArray(node)) node.forEach((item, i) => walk(itemSchemas(all, i), item));
    else if (isSchema(node)) {
      for (const [key, child] of Object.entries(node)) walk(propertySchemas(all, key), child);
    }
  };
  walk(isSchema(schema) ? [schema] : [], value);
  return found;
}
