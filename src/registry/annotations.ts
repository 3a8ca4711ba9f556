/**
 * Reading the engine's schema annotations (src/config/ajv.ts) against a parameter value:
 * which values are secrets (to redact them) and which name a host or file the permission
 * scope must allow. The schema and the value are walked together through `properties`,
 * `patternProperties`, `additionalProperties`, `items` and the `allOf`/`anyOf`/`oneOf`/
 * `if`/`then`/`else` branches (a value matched by several subschemas gets every annotation).
 */
import { ACCESS_KEYWORD, REDACTED, SECRET_KEYWORD } from "../config/ajv.ts";
import type { PathSegments } from "../config/problem.ts";

type Schema = Record<string, unknown>;

const isSchema = (value: unknown): value is Schema =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/** The schema and every branch schema that applies to the same value. */
function withBranches(schemas: readonly Schema[]): Schema[] {
  const out: Schema[] = [];
  const add = (schema: unknown) => {
    if (!isSchema(schema) || out.includes(schema)) return;
    out.push(schema);
    for (const key of ["allOf", "anyOf", "oneOf"]) {
      if (Array.isArray(schema[key])) (schema[key] as unknown[]).forEach(add);
    }
    for (const key of ["if", "then", "else"]) add(schema[key]);
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

/** A string parameter value the permission scope must allow. */
export interface AccessNeed {
  readonly kind: "net" | "read";
  /** Path of the value from the parameters object. */
  readonly segments: PathSegments;
  /** A URL (`net`) or a file path (`read`). */
  readonly value: string;
}

/** Every non-empty string value of `value` marked `x-tollgate-access` by its schema (empty means unset). */
export function accessNeeds(schema: unknown, value: unknown): AccessNeed[] {
  const needs: AccessNeed[] = [];
  const walk = (schemas: Schema[], node: unknown, segments: (string | number)[]) => {
    const all = withBranches(schemas);
    const kind = annotation(all, ACCESS_KEYWORD);
    if (kind === "net" || kind === "read") {
      if (typeof node === "string" && node !== "") needs.push({ kind, segments, value: node });
    } else if (Array.isArray(node)) {
      node.forEach((item, i) => walk(itemSchemas(all, i), item, [...segments, i]));
    } else if (isSchema(node)) {
      for (const [key, child] of Object.entries(node)) {
        walk(propertySchemas(all, key), child, [...segments, key]);
      }
    }
  };
  walk(isSchema(schema) ? [schema] : [], value, []);
  return needs;
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
